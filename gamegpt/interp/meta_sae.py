"""Meta-SAE (Bussmann et al. 2024): a sparse autoencoder trained on another SAE's decoder directions, so each
meta-latent groups the SAE latents whose directions share a component (e.g. every latent about one square).

`run_meta_sae` reads a trained SAE (`gamegpt sae train`) and, when `gamegpt sae report` has run, the board
feature each latent matches best (names like `O@3`: a mark or piece, `@`, a square). It trains a TopK SAE on
the unit-norm decoder rows of the SAE's live latents, and reports, per meta-latent, its member latents (those
that use it) with their features, and how often the members share a square or a mark/piece (their
"purity"), against the same shares for random groups of the same sizes (the chance level, in the same run).
Written to `out`: meta/ (the meta-SAE's weights and state; a re-run continues it), meta-sae-report.json/.txt
and meta-sae-groups.png.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.errors import UserError
from gamegpt.eval.plots import pyplot, save_figure
from gamegpt.interp.sae import SAEConfig, encode_all, load_sae, reconstruction_metrics, train_sae


def _feature_parts(name: str | None) -> tuple[str | None, str | None]:
    """(mark or piece, square) of a feature name like `O@3` or `wN@f3`; (None, None) when unknown."""
    if not name or "@" not in name:
        return None, None
    mark, square = name.split("@", 1)
    return mark, square


def _purity(groups: Sequence[Sequence[int]], features: dict[int, str]) -> dict[str, float | None]:
    """Mean share of a group's members (groups of 2+ with known features) whose feature has the group's most
    common square, and the same for the mark/piece."""
    squares, marks = [], []
    for group in groups:
        parts = [_feature_parts(features.get(latent)) for latent in group]
        parts = [p for p in parts if p[0] is not None]
        if len(parts) < 2:
            continue
        squares.append(Counter(p[1] for p in parts).most_common(1)[0][1] / len(parts))
        marks.append(Counter(p[0] for p in parts).most_common(1)[0][1] / len(parts))
    mean = (lambda xs: float(np.mean(xs)) if xs else None)
    return {"same_square": mean(squares), "same_mark": mean(marks), "groups": len(squares)}


def run_meta_sae(sae_dir: str | Path, out: str | Path, *, meta_latents: int = 32, k: int = 2, steps: int = 2000,
                 seed: int = 0) -> dict[str, Any]:
    """Train (or continue) the meta-SAE of the SAE in `sae_dir` and write its report to `out`."""
    sae, state = load_sae(sae_dir)
    report_path = Path(sae_dir) / "sae-report.json"
    features: dict[int, str] = {}
    if report_path.is_file():
        try:
            features = {int(e["latent"]): str(e["best_feature"]) for e in json.loads(report_path.read_text())["latents"]}
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{report_path} is corrupt; re-run gamegpt sae report") from None
    directions = sae.W_dec.detach().numpy().astype(np.float32)
    live = sorted(features) if features else list(range(len(directions)))
    if len(live) < 2:
        raise UserError(f"the SAE in {sae_dir} has fewer than 2 live latents: nothing to group")
    if not 1 <= k <= meta_latents:
        raise UserError(f"meta-SAE: k must be in 1..{meta_latents}, got {k}")
    x = directions[live]
    config = SAEConfig(width=x.shape[1], latents=meta_latents, kind="topk", k=k, steps=steps,
                       batch_size=min(256, len(x)), seed=seed)
    out_path = Path(out)
    meta = train_sae(x, config, out_path / "meta", extra={"sae": str(sae_dir)})
    codes = encode_all(meta, x)
    groups: list[dict[str, Any]] = []
    for j in range(meta_latents):
        order = np.argsort(-codes[:, j])
        members = [int(live[i]) for i in order if codes[i, j] > 0]
        if members:
            groups.append({"meta_latent": j, "members": members,
                           "features": [features.get(m) for m in members]})
    groups.sort(key=lambda g: -len(g["members"]))
    rng = np.random.default_rng(seed)
    chance_groups = [list(rng.choice(live, size=len(g["members"]), replace=False)) for g in groups]
    report = {"sae": str(sae_dir), "site": state.get("site"), "config": {"meta_latents": meta_latents, "k": k,
                                                                        "steps": steps, "seed": seed},
              "live_latents": len(live), "metrics": reconstruction_metrics(meta, x),
              "purity": _purity([g["members"] for g in groups], features),
              "purity_random_groups": _purity(chance_groups, features), "groups": groups}
    write_json_atomic(out_path / "meta-sae-report.json", report)
    write_text_atomic(out_path / "meta-sae-report.txt", format_meta_sae_report(report) + "\n")
    plot_meta_groups(report, out_path / "meta-sae-groups.png")
    return report


def format_meta_sae_report(report: dict[str, Any], shown: int = 12) -> str:
    m, p, c = report["metrics"], report["purity"], report["purity_random_groups"]
    share = (lambda v: "-" if v is None else f"{v:.2f}")
    lines = [f"meta-SAE of {report['sae']}: {report['config']['meta_latents']} meta-latents, k={report['config']['k']}, "
             f"on {report['live_latents']} decoder directions",
             f"variance explained {m.get('variance_explained', float('nan')):.3f}, L0 {m.get('l0', float('nan')):.2f}",
             f"members sharing the group's square: {share(p['same_square'])} (random groups {share(c['same_square'])}); "
             f"its mark/piece: {share(p['same_mark'])} (random {share(c['same_mark'])}); {p['groups']} groups of 2+",
             "meta-latent  members  features of the members (best first)"]
    for group in report["groups"][:shown]:
        names = ", ".join(str(f) for f in group["features"][:10])
        lines.append(f"{group['meta_latent']:>11}  {len(group['members']):>7}  {names}")
    return "\n".join(lines)


def plot_meta_groups(report: dict[str, Any], path: Path, shown: int = 16) -> Path:
    """For the largest meta-latents: how many of their members match each board feature."""
    groups = report["groups"][:shown]
    names = sorted({str(f) for g in groups for f in g["features"] if f is not None})
    fig, ax = pyplot().subplots(figsize=(max(6, 0.35 * len(names) + 2), 0.4 * len(groups) + 1.5))
    if names:
        grid = np.zeros((len(groups), len(names)))
        for row, group in enumerate(groups):
            for feature in group["features"]:
                if feature is not None:
                    grid[row, names.index(str(feature))] += 1
        image = ax.imshow(grid, aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        fig.colorbar(image, ax=ax, label="member latents")
    ax.set_yticks(range(len(groups)), [f"meta {g['meta_latent']} ({len(g['members'])})" for g in groups], fontsize=7)
    ax.set_title("meta-SAE: the board features of each meta-latent's member latents", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
