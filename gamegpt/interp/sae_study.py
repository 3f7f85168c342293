"""`gamegpt sae train` / `sae report`: an SAE on one site of a model, and what it found.

Report: L0, variance explained, dead latents (held-out games); loss recovered (the model's next-token loss on
held-out games with the reconstruction spliced in at the probe positions, between clean (1) and that site
zero-ablated there (0)); Karvonen's board metrics: coverage (mean over board features "piece p on square s" of
the best F1 any latent reaches as a detector of it, thresholds 0-0.5 of the latent's max) and board
reconstruction (latents that, on training games, fire only with a feature (precision >= 0.95) predict it on
held-out games; the share of squares right, and F1 of the predicted pieces); per latent the best-matching
feature and top-activating positions drawn as boards; t-SNE of the codes, expert vs random games; a latent
zeroed or clamped and the model's next move before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.games.chess_codecs import MoveTokenCodec
from gamegpt.interp.activations import ActivationCache, StudiedModel, _replay, logits_all, probe_positions
from gamegpt.interp.probe_study import split_masks
from gamegpt.interp.sae import SAE, encode_all, load_sae, reconstruction_metrics

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.5)


def board_features(cache: ActivationCache) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(N, F) booleans: "class c on square s" for every non-empty class, and the (square, class) of each column."""
    board = cache.labels["board"]
    spec = cache.board_spec
    columns = [(s, c) for s in range(spec.squares) for c in range(1, spec.n_classes)]
    features = np.stack([board[:, s] == c for s, c in columns], axis=1)
    return features, columns


def _f1(active: np.ndarray, features: np.ndarray) -> np.ndarray:
    """F1 of each latent (columns of `active`) against each feature: (latents, features)."""
    a = active.astype(np.float32)
    f = features.astype(np.float32)
    tp = a.T @ f
    precision = tp / np.maximum(a.sum(0)[:, None], 1)
    recall = tp / np.maximum(f.sum(0)[None, :], 1)
    return 2 * precision * recall / np.maximum(precision + recall, 1e-9)


def board_metrics(codes_train: np.ndarray, feats_train: np.ndarray, codes_test: np.ndarray, feats_test: np.ndarray,
                  board_test: np.ndarray, columns: list[tuple[int, int]]) -> dict[str, Any]:
    maxima = np.maximum(codes_train.max(0), 1e-9)
    best_f1 = np.zeros(feats_train.shape[1])
    best_latent = np.zeros(feats_train.shape[1], dtype=int)
    latent_f1 = np.zeros((codes_train.shape[1], feats_train.shape[1]))
    for threshold in THRESHOLDS:
        f1 = _f1(codes_test > threshold * maxima, feats_test)
        latent_f1 = np.maximum(latent_f1, f1)
        better = f1.max(0) > best_f1
        best_latent[better] = f1.argmax(0)[better]
        best_f1 = np.maximum(best_f1, f1.max(0))
    present = feats_test.any(0)
    coverage = float(best_f1[present].mean()) if present.any() else 0.0
    # board reconstruction: precise latents predict their features
    active_train = codes_train > 0
    counts = active_train.sum(0)
    precision = (active_train.astype(np.float32).T @ feats_train.astype(np.float32)) / np.maximum(counts[:, None], 1)
    predicts = (precision >= 0.95) & (counts[:, None] >= 5)
    predicted = (codes_test > 0).astype(np.float32) @ predicts.astype(np.float32) > 0
    tp = (predicted & feats_test).sum()
    f1 = float(2 * tp / max(1, predicted.sum() + feats_test.sum()))
    squares = board_test.shape[1]
    board_pred = np.zeros_like(board_test)
    for j, (s, c) in enumerate(columns):
        board_pred[predicted[:, j], s] = c
    return {"coverage": coverage, "board_reconstruction_f1": f1,
            "board_reconstruction_square_accuracy": float((board_pred == board_test).mean()),
            "all_empty_square_accuracy": float((board_test == 0).mean()),
            "precise_latents": int(predicts.any(1).sum()), "squares": squares,
            "best_feature_of_latent": latent_f1.argmax(1).tolist(), "best_f1_of_latent": latent_f1.max(1).tolist()}


@torch.no_grad()
def loss_recovered(studied: StudiedModel, cache: ActivationCache, sae: SAE, site: tuple[str, int], test: np.ndarray,
                   max_games: int = 40) -> dict[str, float]:
    """Next-token loss on held-out games: clean, with the SAE's reconstruction spliced in at the probe
    positions, and with the site zero-ablated there; loss recovered = (zero - sae) / (zero - clean)."""
    games = sorted(set(cache.labels["game_index"][test].tolist()))[:max_games]
    totals = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    count = 0
    for g in games:
        game, moves = _replay(studied.codec, cache.games[g]["moves"])
        tokens, positions = probe_positions(studied.codec, game, moves, studied.model.config.block_size)
        where = torch.tensor([p[1] for p in positions])
        targets = torch.tensor(tokens[1:])

        def splice(x: torch.Tensor) -> torch.Tensor:
            x = x.clone()
            x[0, where] = sae.decode(sae.encode(x[0, where]))
            return x

        def zero(x: torch.Tensor) -> torch.Tensor:
            x = x.clone()
            x[0, where] = 0
            return x
        for name, edits in (("clean", None), ("sae", {site: splice}), ("zero", {site: zero})):
            logits = logits_all(studied.model, tokens, edits=edits)[:-1]
            totals[name] += float(F.cross_entropy(logits, targets, reduction="sum"))
        count += len(targets)
    losses = {k: v / max(1, count) for k, v in totals.items()}
    gap = losses["zero"] - losses["clean"]
    losses["loss_recovered"] = (losses["zero"] - losses["sae"]) / gap if abs(gap) > 1e-9 else float("nan")
    return losses


def run_sae_report(studied: StudiedModel, cache: ActivationCache, sae_dir: str | Path, *, seed: int = 0,
                   latents_shown: int = 6, tsne_points: int = 1000) -> dict[str, Any]:
    sae, state = load_sae(sae_dir)
    out = Path(sae_dir)
    site = (state["site"], int(state["layer"]))
    x = cache.site(*site)
    train, test = split_masks(cache, seed)
    metrics = reconstruction_metrics(sae, x[test])
    metrics.update(loss_recovered(studied, cache, sae, site, test))
    codes = encode_all(sae, x)
    features, columns = board_features(cache)
    board = board_metrics(codes[train], features[train], codes[test], features[test], cache.labels["board"][test], columns)
    spec = cache.board_spec
    best_feature = [spec.feature_name(*columns[j]) for j in board.pop("best_feature_of_latent")]
    best_f1 = board.pop("best_f1_of_latent")
    metrics.update(board)
    alive = np.flatnonzero((codes > 0).any(0))
    ranked = [int(i) for i in sorted(alive, key=lambda i: -best_f1[i])]
    latents = [{"latent": i, "best_feature": best_feature[i], "f1": best_f1[i], "frequency": float((codes[:, i] > 0).mean()),
                "top_positions": [int(p) for p in np.argsort(-codes[:, i])[:4]]} for i in ranked]
    shown = ranked[:latents_shown]
    plot_top_positions(cache, codes, shown, best_feature, best_f1, out / "sae-latents.png")
    tsne = plot_tsne(cache, codes, seed, tsne_points, out / "sae-tsne.png")
    clamp = clamp_latent(studied, cache, sae, site, codes, shown[0] if shown else 0, test, out / "sae-clamp.png")
    report = {"model": studied.label, "site": {"kind": site[0], "layer": site[1]}, "config": state["config"],
              "metrics": metrics, "latents": latents, "clamp": clamp, "tsne": tsne}
    write_json_atomic(out / "sae-report.json", report)
    write_text_atomic(out / "sae-report.txt", format_sae_report(report) + "\n")
    return report


def format_sae_report(report: dict[str, Any]) -> str:
    m = report["metrics"]
    c = report["config"]
    lines = [f"{report['model']}: {c['kind']} SAE ({c['latents']} latents"
             f"{', k=' + str(c['k']) if c['kind'] == 'topk' else ', L1=' + str(c['l1'])}) on "
             f"{report['site']['kind']} layer {report['site']['layer']}",
             f"  L0 {m['l0']:.2f}   variance explained {m['variance_explained']:.3f}   dead latents {m['dead_latents']}/"
             f"{m['latents']}",
             f"  next-token loss: clean {m['clean']:.4f}  SAE spliced {m['sae']:.4f}  zero-ablated {m['zero']:.4f}  "
             f"-> loss recovered {m['loss_recovered']:.3f}",
             f"  coverage {m['coverage']:.3f}   board reconstruction: F1 {m['board_reconstruction_f1']:.3f}, squares right "
             f"{m['board_reconstruction_square_accuracy']:.3f} (all-empty guess {m['all_empty_square_accuracy']:.3f}); "
             f"{m['precise_latents']} latents predict a feature",
             "  best-matching board feature of the top latents:"]
    for latent in report["latents"][:10]:
        lines.append(f"    latent {latent['latent']:>4}  {latent['best_feature']:<10} F1 {latent['f1']:.3f}  "
                     f"active on {latent['frequency']:.1%}")
    if report.get("clamp"):
        cl = report["clamp"]
        lines.append(f"  latent {cl['latent']} at position {cl['position']}: next move {cl['clean_move']} -> zeroed "
                     f"{cl['zeroed_move']}, clamped to {cl['clamp_value']:.2f}: {cl['clamped_move']}")
    if report.get("tsne"):
        lines.append(f"  t-SNE: {report['tsne']['points']} points; kNN (k=10) agreement of expert/random "
                     f"{report['tsne']['knn_agreement']:.3f} (chance {report['tsne']['chance']:.3f})")
    return "\n".join(lines)


def plot_top_positions(cache: ActivationCache, codes: np.ndarray, latents: list[int], names: list[str],
                       f1: list[float], path: Path) -> Path | None:
    from gamegpt.eval.plots import pyplot, save_figure
    from gamegpt.interp.figures import draw_board

    if not latents:
        return None
    top = 4
    fig, axes = pyplot().subplots(len(latents), top, figsize=(2.4 * top, 2.5 * len(latents)), squeeze=False)
    spec = cache.board_spec
    for row, latent in zip(axes, latents):
        for ax, index in zip(row, np.argsort(-codes[:, latent])[:top]):
            square, _ = _square_of(names[latent], spec)
            draw_board(ax, spec, cache.labels["board"][index], highlight=[square] if square is not None else [],
                       title=f"latent {latent} = {codes[index, latent]:.2f}")
        row[0].set_ylabel(f"{names[latent]}\nF1 {f1[latent]:.2f}", fontsize=8)
    fig.suptitle("top-activating positions per latent (red: the square of its best-matching feature)")
    fig.tight_layout()
    return save_figure(fig, path)


def _square_of(name: str, spec: Any) -> tuple[int | None, str]:
    piece, _, square = name.partition("@")
    for s in range(spec.squares):
        if spec.square_name(s) == square:
            return s, piece
    return None, piece


def plot_tsne(cache: ActivationCache, codes: np.ndarray, seed: int, points: int, path: Path) -> dict[str, Any]:
    from sklearn.manifold import TSNE
    from sklearn.neighbors import KNeighborsClassifier

    from gamegpt.eval.plots import pyplot, save_figure

    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(codes), size=min(points, len(codes)), replace=False))
    kinds = cache.kinds()[chosen]
    embedded = TSNE(n_components=2, random_state=seed, init="pca", perplexity=min(30, max(5, len(chosen) // 4))
                    ).fit_transform(codes[chosen])
    labels = (kinds == "expert").astype(int)
    knn = KNeighborsClassifier(n_neighbors=min(10, len(chosen) - 1)).fit(embedded, labels)
    agreement = float((knn.predict(embedded) == labels).mean())
    chance = float(max(labels.mean(), 1 - labels.mean()))
    fig, ax = pyplot().subplots(figsize=(5.5, 5))
    for kind, colour in (("expert", "tab:blue"), ("random", "tab:orange")):
        mask = kinds == kind
        ax.scatter(embedded[mask, 0], embedded[mask, 1], s=5, alpha=0.6, color=colour, label=f"{kind} games")
    ax.legend()
    ax.set_title(f"t-SNE of SAE codes ({len(chosen)} positions)")
    ax.set_xticks([])
    ax.set_yticks([])
    save_figure(fig, path)
    return {"points": int(len(chosen)), "knn_agreement": agreement, "chance": chance}


@torch.no_grad()
def clamp_latent(studied: StudiedModel, cache: ActivationCache, sae: SAE, site: tuple[str, int], codes: np.ndarray,
                 latent: int, test: np.ndarray, path: Path) -> dict[str, Any] | None:
    """Zero the latent where it fires strongest on held-out games, and clamp it to its maximum where it is
    silent; the change (decoded difference) is added to the site at that position; the next move before/after."""
    from gamegpt.eval.plots import pyplot, save_figure
    from gamegpt.interp.figures import draw_board, move_mass_by_square

    candidates = np.flatnonzero(test)
    on = candidates[np.argmax(codes[candidates, latent])]
    off_candidates = candidates[codes[candidates, latent] == 0]
    if len(off_candidates) == 0:
        return None
    off = off_candidates[0]
    peak = float(codes[:, latent].max())
    results: dict[str, Any] = {"latent": int(latent), "clamp_value": peak}
    panels = []
    for tag, index, value in (("zeroed", on, 0.0), ("clamped", off, peak)):
        game, moves = _replay(studied.codec, cache.games[int(cache.labels["game_index"][index])]["moves"])
        for move in moves[:int(cache.labels["ply"][index])]:
            game.push(move)
        tokens = studied.codec.prefix_tokens(game)
        where = len(tokens) - 1
        base = torch.from_numpy(codes[index:index + 1].copy())
        changed = base.clone()
        changed[0, latent] = value
        delta = (sae.decode(changed) - sae.decode(base))[0]

        def edit(x: torch.Tensor, delta: torch.Tensor = delta, where: int = where) -> torch.Tensor:
            x = x.clone()
            x[0, where] += delta
            return x
        before = torch.softmax(logits_all(studied.model, tokens)[-1], -1)
        after = torch.softmax(logits_all(studied.model, tokens, edits={site: edit})[-1], -1)
        text = studied.codec.tokens_to_text
        if tag == "zeroed":
            results["position"] = int(index)
            results["clean_move"] = text([int(before.argmax())])
        results[f"{tag}_move"] = text([int(after.argmax())])
        results[f"{tag}_before_move"] = text([int(before.argmax())])
        results[f"{tag}_position"] = int(index)
        panels.append((tag, index, before.numpy(), after.numpy()))
    one_token_moves = studied.game == "tictactoe" or isinstance(studied.codec, MoveTokenCodec)
    if one_token_moves:  # a move is a token: its probability can be drawn on its (from-)square
        def shade(probs: np.ndarray) -> list[float]:
            return probs[:9].tolist() if studied.game == "tictactoe" else move_mass_by_square(probs)

        what = "P(next move)" if studied.game == "tictactoe" else "P(move from square)"
        fig, axes = pyplot().subplots(len(panels), 2, figsize=(6, 3 * len(panels)), squeeze=False)
        spec = cache.board_spec
        for (tag, index, before, after), row in zip(panels, axes):
            board = cache.labels["board"][index]
            draw_board(row[0], spec, board, shade=shade(before), cmap="Blues",
                       title=f"{what}, clean: {results[f'{tag}_before_move']}")
            draw_board(row[1], spec, board, shade=shade(after), cmap="Blues",
                       title=f"latent {latent} {tag}" + (f" to {peak:.2f}" if tag == "clamped" else "")
                       + f": {results[f'{tag}_move']}")
        fig.suptitle(f"steering with SAE latent {latent}")
        fig.tight_layout()
        save_figure(fig, path)
    return results
