"""Editing the board the model sees: add a probe direction to the residual stream so that the probe reads one
square differently (a mark removed or put), then ask whether the model's moves follow the edited board.

For one position, square s, probe weights w (raw activations) at layer L, and the change of class a -> b:
direction d = w[:, s, b] - w[:, s, a]. The probe's margin m = logit_b - logit_a is negative on the real board;
the edit adds t * d with t = (scale * |m| - m) / |d|^2 at the probe position, so the probe then reads b by
`scale` times the margin it read a by (scale 1 mirrors it). Later layers and positions compute from the
edited stream. A control adds a random direction of the same norm.

Measured (codecs with one token per move, where the legal-move set is a set of tokens). Tic-tac-toe: every
square that can flip (a mark removed, or the mark of the side that just moved put on an empty cell); the
model's predicted legal set is its top-k move tokens with k the number of legal moves; it "follows the edited
board" when that set is the edited board's legal set, and "follows the real board" when it is the real one's.

Chess (`chess-uci-moves` models), Karvonen's test: remove the piece the model wanted to move (its top move, when
legal; not a king, and only where the board stays valid), then ask whether its new top move is legal on the
edited board, how much of its probability lies on the edited board's legal moves, and whether it still moves
from the emptied square. Before the edit its top move is illegal on the edited board by construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import chess
import numpy as np
import torch

from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.errors import UserError
from gamegpt.games.chess_codecs import MoveTokenCodec
from gamegpt.interp.activations import ActivationCache, StudiedModel, logits_all
from gamegpt.interp.figures import move_mass_by_square
from gamegpt.interp.probes import ProbeWeights


def _edit_at(position: int, vector: np.ndarray) -> Any:
    delta = torch.from_numpy(vector.astype(np.float32))

    def edit(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[:, position] += delta.to(x.device, x.dtype)
        return x
    return edit


def _game_at(cache: ActivationCache, index: int, studied: StudiedModel) -> Any:
    """The game of cache row `index`, at its probed position."""
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
    if studied.game == "chess" and not isinstance(studied.codec, MoveTokenCodec):
        raise UserError("chess interventions need a model with one token per move (chess-uci-moves): a move of "
                        f"{studied.codec.name} is several tokens")
    if not 0 <= layer <= studied.n_layer:
        raise UserError(f"layer {layer} is out of range: resid layers are 0-{studied.n_layer}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    measure = _tictactoe_rows if studied.game == "tictactoe" else _chess_rows
    rows, example = measure(studied, cache, probe, layer, positions, scales, rng)
    if not rows:
        raise UserError("no position to intervene on")
    rates = _rates(rows, scales) if studied.game == "tictactoe" else _chess_rates(rows, scales)
    summary = {"game": studied.game, "layer": layer, "scales": list(scales), "positions": len(positions),
               "interventions": len(rows), "rates": rates, "example": example, "model": studied.label}
    write_json_atomic(out / "intervention.json", {**summary, "rows": rows})
    write_text_atomic(out / "intervention-table.txt", format_intervention_table(summary) + "\n")
    plot_intervention(summary, out / "intervention.png")
    return summary


def _edit_vectors(probe: ProbeWeights, x: np.ndarray, square: int, old: int, new: int, scale: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The probe edit that makes the probe read `new` on `square` by `scale` times the margin it read `old` by,
    and a random direction of the same norm."""
    logits = probe.logits(x[None])[0]
    d = probe.weight[:, square, new] - probe.weight[:, square, old]
    margin = logits[square, new] - logits[square, old]
    vector = (scale * abs(margin) - margin) / float(d @ d) * d
    random_vector = rng.standard_normal(len(d))
    random_vector *= np.linalg.norm(vector) / np.linalg.norm(random_vector)
    return vector, random_vector


def _chess_rows(studied: StudiedModel, cache: ActivationCache, probe: ProbeWeights, layer: int,
                positions: Sequence[int], scales: Sequence[float], rng: np.random.Generator
                ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    codec = studied.codec
    assert isinstance(codec, MoveTokenCodec)
    x_all = cache.site("resid", layer)
    rows: list[dict[str, Any]] = []
    example: dict[str, Any] | None = None

    def move_probs(tokens: list[int], edit: np.ndarray | None = None) -> np.ndarray:
        edits = None if edit is None else {("resid", layer): _edit_at(len(tokens) - 1, edit)}
        return torch.softmax(logits_all(studied.model, tokens, edits=edits)[-1, :codec.N_MOVES], -1).numpy()

    for index in positions:
        game = _game_at(cache, index, studied)
        if game.outcome() is not None:
            continue
        board: chess.Board = game.board
        tokens = codec.prefix_tokens(game)
        clean = move_probs(tokens)
        top = codec.token_move(int(np.argmax(clean)))
        if top is None or top not in board.legal_moves:
            continue
        square = top.from_square
        piece = board.piece_at(square)
        edited = board.copy(stack=False)
        edited.remove_piece_at(square)
        if piece is None or piece.piece_type == chess.KING or not edited.is_valid():
            continue
        edited_legal = np.array([codec.move_token(m) for m in edited.legal_moves], dtype=np.int64)
        real_legal = {codec.move_token(m) for m in board.legal_moves}
        old = int(cache.labels["board"][index][square])
        for scale in scales:
            vector, random_vector = _edit_vectors(probe, x_all[index], square, old, 0, scale, rng)
            row: dict[str, Any] = {"position": int(index), "square": chess.square_name(square), "piece": piece.symbol(),
                                   "scale": scale, "edit_norm": float(np.linalg.norm(vector)),
                                   "clean_mass_on_edited_legal": float(clean[edited_legal].sum())}
            for name, v in (("probe", vector), ("random", random_vector)):
                probs = move_probs(tokens, v)
                chosen = int(np.argmax(probs))
                row[f"{name}_chosen_legal_on_edited"] = bool(chosen in set(edited_legal.tolist()))
                row[f"{name}_chosen_legal_on_real"] = bool(chosen in real_legal)
                row[f"{name}_moves_removed_piece"] = codec.token_move(chosen).from_square == square  # type: ignore[union-attr]
                row[f"{name}_mass_on_edited_legal"] = float(probs[edited_legal].sum())
                if name == "probe" and example is None and scale == scales[-1] and row["probe_chosen_legal_on_edited"]:
                    example = {"board": [int(c) for c in cache.labels["board"][index]], "square": square,
                               "edited": [0 if s == square else int(c) for s, c in enumerate(cache.labels["board"][index])],
                               "clean": move_mass_by_square(clean), "after": move_mass_by_square(probs), "scale": scale,
                               "clean_move": top.uci(), "after_move": codec.token_move(chosen).uci()}  # type: ignore[union-attr]
            rows.append(row)
    return rows, example


def _chess_rates(rows: list[dict[str, Any]], scales: Sequence[float]) -> list[dict[str, Any]]:
    rates = []
    for scale in scales:
        chosen = [r for r in rows if r["scale"] == scale]
        mean = lambda key: float(np.mean([r[key] for r in chosen]))  # noqa: E731
        rates.append({"scale": scale, "edit": "remove", "n": len(chosen),
                      **{key: mean(key) for key in chosen[0] if key.startswith(("probe_", "random_", "clean_"))}})
    return rates


def _tictactoe_rows(studied: StudiedModel, cache: ActivationCache, probe: ProbeWeights, layer: int,
                    positions: Sequence[int], scales: Sequence[float], rng: np.random.Generator
                    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    x_all = cache.site("resid", layer)
    model = studied.model
    rows: list[dict[str, Any]] = []
    example: dict[str, Any] | None = None
    for index in positions:
        game = _game_at(cache, index, studied)
        if game.outcome() is not None:
            continue
        tokens = studied.codec.prefix_tokens(game)
        where = len(tokens) - 1
        board = [int(c) for c in cache.labels["board"][index]]
        side = game.to_move
        clean = torch.softmax(logits_all(model, tokens)[-1, :9], -1).numpy()
        for square in range(9):
            a = board[square]
            b = 0 if a else 2 - side  # remove a mark, or put the mark of the side that just moved
            edited = list(board)
            edited[square] = b
            if all(c != 0 for c in edited):
                continue
            real_legal = {c for c in range(9) if board[c] == 0}
            edited_legal = {c for c in range(9) if edited[c] == 0}
            for scale in scales:
                vector, random_vector = _edit_vectors(probe, x_all[index], square, a, b, scale, rng)
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
    return rows, example


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
    if summary.get("game") == "chess":
        return _format_chess_table(summary)
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


def _format_chess_table(summary: dict[str, Any]) -> str:
    head = (f"{'scale':>5} {'n':>5} | {'clean: P(legal)':>15} | {'probe: top legal':>16} {'P(legal)':>8} "
            f"{'same piece':>10} | {'random: top legal':>17} {'P(legal)':>8} {'same piece':>10}")
    lines = [f"{summary['model']}: the piece of the model's top move removed by a probe edit at resid layer "
             f"{summary['layer']}; is its new top move legal on the edited board?", head, "-" * len(head)]
    for r in summary["rates"]:
        lines.append(f"{r['scale']:>5g} {r['n']:>5} | {r['clean_mass_on_edited_legal']:>15.3f} | "
                     f"{r['probe_chosen_legal_on_edited']:>16.3f} {r['probe_mass_on_edited_legal']:>8.3f} "
                     f"{r['probe_moves_removed_piece']:>10.3f} | {r['random_chosen_legal_on_edited']:>17.3f} "
                     f"{r['random_mass_on_edited_legal']:>8.3f} {r['random_moves_removed_piece']:>10.3f}")
    return "\n".join(lines)


def plot_intervention(summary: dict[str, Any], path: Path) -> Path:
    from gamegpt.eval.plots import pyplot, save_figure
    from gamegpt.interp.figures import draw_board
    from gamegpt.interp.labels import BoardSpec

    chess_game = summary.get("game") == "chess"
    fig = pyplot().figure(figsize=(13, 3.8))
    ax = fig.add_subplot(1, 4, 1)
    rates = summary["rates"] if chess_game else [r for r in summary["rates"] if r["edit"] == "all"]
    xs = np.arange(len(rates))
    bars = (("probe_chosen_legal_on_edited", "probe edit: top move legal on edited"),
            ("probe_moves_removed_piece", "probe edit: still moves the removed piece"),
            ("random_chosen_legal_on_edited", "random edit: top move legal on edited")) if chess_game else (
            ("follows_edited", "probe edit: follows edited"), ("follows_real", "probe edit: follows real"),
            ("random_follows_edited", "random edit: follows edited"))
    for offset, (key, label) in zip((-0.27, 0.0, 0.27), bars):
        ax.bar(xs + offset, [r[key] for r in rates], 0.27, label=label)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"scale {r['scale']:g}" for r in rates])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of edits")
    ax.legend(fontsize=6)
    ax.set_title(f"{'top move' if chess_game else 'legal set'} after an edit (layer {summary['layer']})", fontsize=8)
    example = summary.get("example")
    if example:
        spec = BoardSpec(summary.get("game", "tictactoe"))
        moved = " from each square" if chess_game else ""
        clean_move = f" (top {example['clean_move']})" if chess_game else ""
        after_move = f" (top {example['after_move']})" if chess_game else ""
        draw_board(fig.add_subplot(1, 4, 2), spec, example["board"], title=f"real board; P(move{moved}){clean_move}",
                   shade=example["clean"], cmap="Blues", highlight=[example["square"]])
        draw_board(fig.add_subplot(1, 4, 3), spec, example["edited"], title="edited board (probe direction added)",
                   highlight=[example["square"]])
        draw_board(fig.add_subplot(1, 4, 4), spec, example["edited"],
                   title=f"after the edit, scale {example['scale']:g}{after_move}", shade=example["after"],
                   cmap="Blues", highlight=[example["square"]])
    what = "removing the piece of the top move" if chess_game else "flipping one square"
    fig.suptitle(f"{summary['model']}: {what} with the probe direction")
    fig.tight_layout()
    return save_figure(fig, path)
