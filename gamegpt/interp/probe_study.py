"""The probe study: board probes per layer for one or more models of one game, beside two controls measured in
the same run (a randomly initialised model of the same shape, and the majority class), plus the one-number
labels (side to move; check for chess; the perfect-play value for tic-tac-toe). Resumable: activations and
each model's results are cached under `out` and reused when they match."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from safetensors.numpy import save_file

from gamegpt.atomic import atomic_path, write_json_atomic, write_text_atomic
from gamegpt.errors import UserError
from gamegpt.interp.activations import ActivationCache, StudiedModel, build_cache, load_studied_model, random_init_like
from gamegpt.interp.labels import SCALAR_TARGETS, BoardSpec
from gamegpt.interp.probes import ProbeWeights, majority_baseline, probe_layer
from gamegpt.interp.sources import make_games, split_by_game

MAJORITY = "majority class"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "model"


def targets_of(spec: BoardSpec) -> dict[str, tuple[str, int]]:
    """target name -> (label key, classes)."""
    targets = {"board (white/black)": ("board", spec.n_classes), "board (mine/theirs)": ("board_relative", spec.n_classes)}
    for key, names in SCALAR_TARGETS[spec.game].items():
        targets[key.replace("_", " ")] = (key, len(names))
    return targets


def split_masks(cache: ActivationCache, seed: int) -> tuple[np.ndarray, np.ndarray]:
    train_games, _ = split_by_game(len(cache.games), seed)
    train = np.isin(cache.labels["game_index"], sorted(train_games))
    return train, ~train


def probe_cache(cache: ActivationCache, layers: Sequence[int], *, seed: int, steps: int,
                weights_dir: Path | None = None) -> dict[str, Any]:
    """Probe every target at each resid layer of `layers`: {target: {"accuracy": [...], ...}}."""
    train, test = split_masks(cache, seed)
    results: dict[str, Any] = {}
    for target, (key, n_classes) in targets_of(cache.board_spec).items():
        if key not in cache.labels:
            continue
        y = cache.labels[key]
        row: dict[str, Any] = {"accuracy": [], "train_accuracy": [], "layers": list(layers)}
        if len(np.unique(y[train])) < 2:
            row["constant"] = True  # e.g. side to move at Karvonen's '.': always White
        for layer in layers:
            x = cache.site("resid", layer)
            scores, probe = probe_layer(x[train], y[train], x[test], y[test], n_classes, seed=seed, steps=steps)
            row["accuracy"].append(scores["accuracy"])
            row["train_accuracy"].append(scores["train_accuracy"])
            if "boards_all_right" in scores:
                row.setdefault("boards_all_right", []).append(scores["boards_all_right"])
            if weights_dir is not None:
                with atomic_path(weights_dir / f"{key}-resid{layer}.safetensors") as tmp:
                    save_file(probe.to_tensors(), str(tmp))
        results[target] = row
    return results


def load_probe(weights_dir: str | Path, key: str, layer: int) -> ProbeWeights:
    from safetensors.numpy import load_file

    path = Path(weights_dir) / f"{key}-resid{layer}.safetensors"
    if not path.is_file():
        raise UserError(f"no probe at {path}: run `gamegpt probe` first")
    tensors = load_file(str(path))
    return ProbeWeights(tensors["weight"], tensors["bias"])


def _model_results(cache: ActivationCache, layers: list[int], seed: int, steps: int, out: Path,
                   save_weights: bool) -> dict[str, Any]:
    """One model's results, reused from out/<slug>/results.json when made from the same cache and settings."""
    folder = out / "probes" / slug(cache.meta["model"])
    path = folder / "results.json"
    key = {"cache": cache.meta["fingerprint"], "layers": layers, "seed": seed, "steps": steps}
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return dict(saved["results"])
    results = probe_cache(cache, layers, seed=seed, steps=steps, weights_dir=folder if save_weights else None)
    write_json_atomic(path, {"key": key, "results": results})
    return results


def run_probe_study(models: Sequence[tuple[str, str | None]], game: str, out: str | Path, *, expert_games: int,
                    random_games: int, seed: int = 0, steps: int = 30, layers: Sequence[int] | None = None,
                    pgn: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Probe each (model path or name, label) and the controls; write probe.json, the table and the figures."""
    out = Path(out)
    if not models:
        raise UserError("give at least one model")
    studied: list[StudiedModel] = [load_studied_model(path, game, label) for path, label in models]
    labels = [s.label for s in studied]
    if len(set(labels)) != len(labels):
        raise UserError(f"two models have the same label ({', '.join(labels)}): give --label for each")
    n_layer = studied[0].n_layer
    if layers is None:
        layers = list(range(n_layer + 1))
    layers = list(layers)
    for s in studied:
        for layer in layers:
            if not 0 <= layer <= s.n_layer:
                raise UserError(f"layer {layer} is out of range: model {s.label} has resid layers 0-{s.n_layer}")
    games = make_games(game, expert_games, random_games, seed, pgn)
    rows: dict[str, Any] = {}
    caches: dict[str, ActivationCache] = {}
    controls: dict[str, StudiedModel] = {}
    for s in studied:
        shape = json.dumps(s.model.config.to_dict(), sort_keys=True)
        controls.setdefault(shape, random_init_like(s, seed))
    for s in [*studied, *controls.values()]:
        cache = build_cache(s, games, out / "activations" / slug(s.label), progress=progress)
        caches[s.label] = cache
        rows[s.label] = {"random_init": s.label.endswith("(random init)"),
                         "targets": _model_results(cache, layers, seed, steps, out, not s.label.endswith("(random init)"))}
    first = caches[studied[0].label]
    train, test = split_masks(first, seed)
    baseline = {}
    for target, (key, n_classes) in targets_of(first.board_spec).items():
        if key in first.labels:
            baseline[target] = majority_baseline(first.labels[key][train], first.labels[key][test], n_classes)
    summary = {"game": game, "layers": layers, "seed": seed, "steps": steps, "positions": len(first),
               "train_positions": int(train.sum()), "test_positions": int(test.sum()), "games": len(games),
               "models": rows, "majority_baseline": baseline}
    write_json_atomic(out / "probe.json", summary)
    table = format_probe_table(summary)
    write_text_atomic(out / "probe-table.txt", table + "\n")
    plot_accuracy_by_layer(summary, out / "probe-accuracy.png")
    plot_probed_position(first, out, studied[0].label, summary, seed, out / "probe-position.png")
    return summary


def format_probe_table(summary: dict[str, Any]) -> str:
    layers = summary["layers"]
    head = f"{'target':<22} {'model':<34} " + " ".join(f"{'L' + str(l):>6}" for l in layers)
    lines = [f"held-out accuracy by layer (resid; L0 = embeddings); {summary['test_positions']} test positions, "
             f"{summary['train_positions']} train", head, "-" * len(head)]
    targets = summary["majority_baseline"].keys()
    for target in targets:
        for label, row in summary["models"].items():
            cells = row["targets"].get(target)
            if cells is None:
                continue
            note = "  (constant here)" if cells.get("constant") else ""
            lines.append(f"{target:<22} {label[:34]:<34} " + " ".join(f"{a:>6.3f}" for a in cells["accuracy"]) + note)
        lines.append(f"{target:<22} {MAJORITY:<34} " + " ".join(f"{summary['majority_baseline'][target]:>6.3f}"
                                                               for _ in layers))
    return "\n".join(lines)


def plot_accuracy_by_layer(summary: dict[str, Any], path: Path) -> Path:
    from gamegpt.eval.plots import pyplot, save_figure

    targets = list(summary["majority_baseline"])
    fig, axes = pyplot().subplots(1, len(targets), figsize=(4.2 * len(targets), 3.8), squeeze=False)
    colours = pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    trained = [l for l, r in summary["models"].items() if not r["random_init"]]
    for ax, target in zip(axes[0], targets):
        for i, label in enumerate(trained):
            row = summary["models"][label]["targets"].get(target)
            if row:
                ax.plot(row["layers"], row["accuracy"], "-o", color=colours[i % len(colours)], label=label, markersize=4)
        for label, r in summary["models"].items():
            if r["random_init"] and target in r["targets"]:
                row = r["targets"][target]
                ax.plot(row["layers"], row["accuracy"], "--x", color="grey", label=label, markersize=4)
        ax.axhline(summary["majority_baseline"][target], color="black", linestyle=":", label=MAJORITY)
        ax.set_title(target)
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_ylabel("held-out accuracy")
        ax.set_xticks(summary["layers"])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{summary['game']}: linear probes on the residual stream, by layer")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_probed_position(cache: ActivationCache, out: Path, label: str, summary: dict[str, Any], seed: int,
                         path: Path) -> Path:
    """The study's picture for one held-out position: true board, probed board, the probe's confidence."""
    from gamegpt.eval.plots import pyplot, save_figure

    spec = cache.board_spec
    accuracy = summary["models"][label]["targets"]["board (white/black)"]["accuracy"]
    layer = summary["layers"][int(np.argmax(accuracy))]
    probe = load_probe(out / "probes" / slug(label), "board", layer)
    _, test = split_masks(cache, seed)
    plies = cache.labels["ply"]
    wanted = 5 if spec.game == "tictactoe" else 20
    candidates = np.flatnonzero(test)
    index = int(candidates[np.argmin(np.abs(plies[candidates] - wanted))])
    x = cache.site("resid", layer)[index:index + 1]
    probs = probe.probabilities(x)[0]
    predicted = probs.argmax(-1)
    true = cache.labels["board"][index]
    wrong = [s for s in range(spec.squares) if predicted[s] != true[s]]
    fig, axes = pyplot().subplots(1, 3, figsize=(11, 3.9))
    from gamegpt.interp.figures import draw_board

    draw_board(axes[0], spec, true, title=f"true board (game {cache.labels['game_index'][index]}, ply {plies[index]})")
    draw_board(axes[1], spec, predicted, title=f"probed board, layer {layer} ({len(wrong)} wrong, red)", highlight=wrong)
    draw_board(axes[2], spec, predicted, title="confidence in the probed class", shade=probs.max(-1), colorbar=True)
    fig.suptitle(f"{label}: what a linear probe reads from the residual stream")
    fig.tight_layout()
    return save_figure(fig, path)
