"""Editing the board the model sees: add a probe direction to the residual stream so that the probe reads one
square differently (a mark removed or put), then ask whether the model's moves follow the edited board.

For one position, square s, probe weights w (raw activations) at layer L, and the change of class a -> b:
direction d = w[:, s, b] - w[:, s, a]. The probe's margin m = logit_b - logit_a is negative on the real board;
the edit adds t * d with t = (scale * |m| - m) / |d|^2 at the probe position, so the probe then reads b by
`scale` times the margin it read a by (scale 1 mirrors it). Later layers and positions compute from the
edited stream. A control adds a random direction of the same norm.

Measured (codecs with one token per move, where the legal-move set is a set of tokens): the model's
predicted legal set is its top-k move tokens with k the number of legal moves; it "follows the edited
board" when that set is the edited board's legal set, and "follows the real board" when it is the real one's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.errors import UserError
from gamegpt.interp.activations import ActivationCache, StudiedModel, logits_all
from gamegpt.interp.probes import ProbeWeights


def _edit_at(position: int, vector: np.ndarray) -> Any:
    delta = torch.from_numpy(vector.astype(np.float32))

    def edit(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[:, position] += delta.to(x.device, x.dtype)
        return x
    return edit


def _tictactoe_game(cache: ActivationCache, index: int, studied: StudiedModel) -> Any:
    record = cache.games[int(cache.labels["game_index"][index])]
    game = studied.codec.new_game()
    for text in record["moves"][:int(cache.labels["ply"][index])]:
        game.push(game.move_from_str(text))
    return game


def run_intervention(studied: StudiedModel, cache: ActivationCache, probe: ProbeWeights, layer: int, out: str | Path,
                     *, positions: Sequence[int], scales: Sequence[float] = (1.0, 2.0, 4.0), seed: int = 0) -> dict[str, Any]:
    """Intervene at each of `positions` (cache rows) on every square that can be flipped (remove a mark / put
    the mark of the side that just moved on an empty cell); returns and writes intervention.json, the table
    and the figure."""
    if studied.game != "tictactoe":
        raise UserError("interventions are measured on tic-tac-toe (one token per move, a legal set of cells); "
                        "chess is not supported yet")
    if not 0 <= layer <= studied.n_layer:
        raise UserError(f"layer {layer} is out of range: resid layers are 0-{studied.n_layer}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    x_all = cache.site("resid", layer)
    model = studied.model
    rows: list[dict[str, Any]] = []
    example: dict[str, Any] | None = None
    for index in positions:
        game = _tictactoe_game(cache, index, studied)
        if game.outcome() is not None:
            continue
        tokens = studied.codec.prefix_tokens(game)
        where = len(tokens) - 1
        board = [int(c) for c in cache.labels["board"][index]]
        side = game.to_move
        clean = torch.softmax(logits_all(model, tokens)[-1, :9], -1).numpy()
        x = x_all[index]
        logits = probe.logits(x[None])[0]
        for square in range(9):
            a = board[square]
            b = 0 if a else 2 - side  # remove a mark, or put the mark of the side that just moved
            edited = list(board)
            edited[square] = b
            if all(c != 0 for c in edited):
                continue
            d = probe.weight[:, square, b] - probe.weight[:, square, a]
            margin = logits[square, b] - logits[square, a]
            real_legal = {c for c in range(9) if board[c] == 0}
            edited_legal = {c for c in range(9) if edited[c] == 0}
            for scale in scales:
                t = (scale * abs(margin) - margin) / float(d @ d)
                vector = t * d
                random_vector = rng.standard_normal(len(d))
                random_vector *= np.linalg.norm(vector) / np.linalg.norm(random_vector)
                results = {}
                for name, v in (("probe", vector), ("random", random_vector)):
                    probs = torch.softmax(logits_all(model, tokens, edits={("resid", layer): _edit_at(where, v)})[-1, :9],
                                          -1).numpy()
                    order = list(np.argsort(-probs))
                    results[name] = {
                        "follows_edited": set(order[:len(edited_legal)]) == edited_legal,
                        "follows_real": set(order[:len(real_legal)]) == real_legal,
                        "chosen_legal_on_edited": int(order[0]) in edited_legal,
                        "probability_on_square": float(probs[square]),
                        "probs": probs,
                    }
                row = {"position": int(index), "square": square, "edit": "remove" if a else "put", "scale": scale,
                       "clean_follows_real": set(np.argsort(-clean)[:len(real_legal)].tolist()) == real_legal,
                       "clean_probability_on_square": float(clean[square]), "edit_norm": float(np.linalg.norm(vector)),
                       **{f"{name}_{k}": v for name, r in results.items() for k, v in r.items() if k != "probs"}}
                rows.append(row)
                if example is None and scale == scales[-1] and row["probe_follows_edited"] and a == 0:
                    example = {"board": board, "edited": edited, "square": square, "clean": clean.tolist(),
                               "after": results["probe"]["probs"].tolist(), "scale": scale}
    if not rows:
        raise UserError("no position to intervene on")
    summary = {"layer": layer, "scales": list(scales), "positions": len(positions), "interventions": len(rows),
               "rates": _rates(rows, scales), "example": example, "model": studied.label}
    write_json_atomic(out / "intervention.json", {**summary, "rows": rows})
    write_text_atomic(out / "intervention-table.txt", format_intervention_table(summary) + "\n")
    plot_intervention(summary, out / "intervention.png")
    return summary


def _rates(rows: list[dict[str, Any]], scales: Sequence[float]) -> list[dict[str, Any]]:
    rates = []
    for scale in scales:
        for edit in ("remove", "put", "all"):
            chosen = [r for r in rows if r["scale"] == scale and (edit == "all" or r["edit"] == edit)]
            if not chosen:
                continue
            mean = lambda key: float(np.mean([r[key] for r in chosen]))  # noqa: E731
            rates.append({"scale": scale, "edit": edit, "n": len(chosen),
                          "clean_follows_real": mean("clean_follows_real"),
                          "follows_edited": mean("probe_follows_edited"), "follows_real": mean("probe_follows_real"),
                          "chosen_legal_on_edited": mean("probe_chosen_legal_on_edited"),
                          "random_follows_edited": mean("random_follows_edited"),
                          "random_follows_real": mean("random_follows_real"),
                          "probability_on_square_before": mean("clean_probability_on_square"),
                          "probability_on_square_after": mean("probe_probability_on_square")})
    return rates


def format_intervention_table(summary: dict[str, Any]) -> str:
    head = (f"{'scale':>5} {'edit':<6} {'n':>5} | {'clean: real':>11} | {'probe: edited':>13} {'real':>6} "
            f"{'move ok':>7} | {'random: edited':>14} {'real':>6} | {'P(square) before→after':>22}")
    lines = [f"{summary['model']}: probe edits at resid layer {summary['layer']}; share of edits after which the "
             "model's top-k moves are exactly the legal set of the edited / real board", head, "-" * len(head)]
    for r in summary["rates"]:
        lines.append(f"{r['scale']:>5g} {r['edit']:<6} {r['n']:>5} | {r['clean_follows_real']:>11.3f} | "
                     f"{r['follows_edited']:>13.3f} {r['follows_real']:>6.3f} {r['chosen_legal_on_edited']:>7.3f} | "
                     f"{r['random_follows_edited']:>14.3f} {r['random_follows_real']:>6.3f} | "
                     f"{r['probability_on_square_before']:>9.3f} → {r['probability_on_square_after']:.3f}")
    return "\n".join(lines)


def plot_intervention(summary: dict[str, Any], path: Path) -> Path:
    from gamegpt.eval.plots import pyplot, save_figure
    from gamegpt.interp.figures import draw_board
    from gamegpt.interp.labels import BoardSpec

    fig = pyplot().figure(figsize=(13, 3.8))
    ax = fig.add_subplot(1, 4, 1)
    rates = [r for r in summary["rates"] if r["edit"] == "all"]
    xs = np.arange(len(rates))
    ax.bar(xs - 0.27, [r["follows_edited"] for r in rates], 0.27, label="probe edit: follows edited")
    ax.bar(xs, [r["follows_real"] for r in rates], 0.27, label="probe edit: follows real")
    ax.bar(xs + 0.27, [r["random_follows_edited"] for r in rates], 0.27, label="random edit: follows edited")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"scale {r['scale']:g}" for r in rates])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of edits")
    ax.legend(fontsize=6)
    ax.set_title(f"legal set after an edit (layer {summary['layer']})", fontsize=8)
    example = summary.get("example")
    if example:
        spec = BoardSpec("tictactoe")
        draw_board(fig.add_subplot(1, 4, 2), spec, example["board"], title="real board; P(move) shaded",
                   shade=example["clean"], cmap="Blues", highlight=[example["square"]])
        draw_board(fig.add_subplot(1, 4, 3), spec, example["edited"], title="edited board (probe direction added)",
                   highlight=[example["square"]])
        draw_board(fig.add_subplot(1, 4, 4), spec, example["edited"],
                   title=f"P(move) after the edit (scale {example['scale']:g})", shade=example["after"], cmap="Blues",
                   highlight=[example["square"]])
    fig.suptitle(f"{summary['model']}: flipping one square with the probe direction")
    fig.tight_layout()
    return save_figure(fig, path)
