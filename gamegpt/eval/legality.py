"""Legal-move rate by move number: how often a model's first sampled move is legal.

For held-out games (records or a PGN file), the model is asked for a move at the positions just before
move number n (n = 1, 2, 10, 20, 40, 50, 60 by default; both White's and Black's n-th move), with the
`raw` policy at a given temperature; the share of legal first samples is reported per move number.

Each illegal chess sample is also sorted by why it is illegal (`illegal_reason`), which tells a model that
has lost track of the board (no piece of its own on the from-square) from one that knows where its pieces
are but not how they move, or that its king is in check.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import chess
from tqdm import tqdm

from gamegpt.engine.model_player import ModelPlayer
from gamegpt.errors import RecordsError
from gamegpt.arena.play import derive_seed
from gamegpt.eval.plots import pyplot, save_figure
from gamegpt.games.base import Game, IllegalMoveError, InvalidMove
from gamegpt.games.chess import ChessGame
from gamegpt.arena.records import GameRecord

DEFAULT_MOVE_NUMBERS = (1, 2, 10, 20, 40, 50, 60)


@dataclass
class LegalityResult:
    """Counts of legal first samples per move number for one model."""

    model: str
    temperature: float
    positions: dict[int, int] = field(default_factory=dict)
    legal: dict[int, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    reasons: dict[int, Counter[str]] = field(default_factory=dict)
    """Per move number: the illegal samples by `illegal_reason`."""

    def rate(self, move_number: int) -> float | None:
        """Share of legal first samples before move `move_number`, or None if no game was that long."""
        total = self.positions.get(move_number, 0)
        return self.legal.get(move_number, 0) / total if total else None

    def overall(self) -> float | None:
        total = sum(self.positions.values())
        return sum(self.legal.values()) / total if total else None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.temperature, "overall": self.overall(),
                "by_move_number": {str(n): {"positions": self.positions[n], "legal": self.legal.get(n, 0),
                                            "rate": self.rate(n)} for n in sorted(self.positions)},
                "illegal_examples": self.examples[:20],
                "illegal_by_reason": {str(n): dict(self.reasons[n]) for n in sorted(self.reasons) if self.reasons[n]}}


def legal_move_rate(
    player: ModelPlayer,
    records: Sequence[GameRecord],
    *,
    move_numbers: Iterable[int] = DEFAULT_MOVE_NUMBERS,
    seed: int = 0,
    label: str | None = None,
    progress: bool = True,
) -> LegalityResult:
    """Ask `player` (policy raw) for a move before each chosen move number of each game; count legal ones."""
    wanted = set(move_numbers)
    result = LegalityResult(label or player.label, player.temperature,
                            positions={n: 0 for n in sorted(wanted)}, legal={n: 0 for n in sorted(wanted)},
                            reasons={n: Counter() for n in sorted(wanted)})
    for number, record in enumerate(tqdm(records, disable=not progress, desc=f"legality {result.model}", unit="game")):
        game = player.codec.new_game(record.start)
        if record.game != game.name:
            raise RecordsError(f"game {number} is {record.game!r}, but the model plays {game.name!r}")
        player.reset(derive_seed(seed, number))
        for ply, text in enumerate(record.moves):
            move_number = ply // 2 + 1
            if move_number > max(wanted):
                break
            try:
                move = game.move_from_str(text)
            except ValueError as exc:
                raise RecordsError(f"game {number}, ply {ply}: {exc}") from None
            if move_number in wanted:
                choice = player.choose(game)
                ok = not isinstance(choice, InvalidMove) and game.is_legal(choice)
                result.positions[move_number] += 1
                result.legal[move_number] += int(ok)
                if not ok:
                    shown = choice.text if isinstance(choice, InvalidMove) else game.move_to_str(choice)
                    reason = illegal_reason(game, choice)
                    result.reasons[move_number][reason] += 1
                    if len(result.examples) < 20:
                        result.examples.append({"game": number, "ply": ply, "sampled": shown, "reason": reason})
            try:
                game.push(move)
            except IllegalMoveError as exc:
                raise RecordsError(f"game {number}, ply {ply}: {exc}") from None
    return result


NOT_A_MOVE = "not a move"
NO_OWN_PIECE = "no own piece there"
CAPTURES_OWN_PIECE = "captures own piece"
PIECE_IN_THE_WAY = "piece in the way"
NOT_HOW_IT_MOVES = "not how it moves"
CASTLING_NOT_ALLOWED = "castling not allowed"
KING_IN_CHECK = "king in check"
NO_SAN_MATCH = "no SAN match"
AMBIGUOUS_SAN = "ambiguous SAN"
GAME_OVER = "the game is over"
ILLEGAL = "illegal"


def illegal_reason(game: Game[Any], choice: object) -> str:
    """Why `choice` (a sampled move, or an InvalidMove with the sampled text) is not legal in `game`. Chess:
    `NOT_A_MOVE` (text that is no move), `NO_OWN_PIECE`, then for a move that is not even pseudo-legal:
    `CAPTURES_OWN_PIECE`, `CASTLING_NOT_ALLOWED` (a king's two-square move without the right, through pieces
    or check), `PIECE_IN_THE_WAY` (the piece moves so on an empty board), `NOT_HOW_IT_MOVES` (it does not,
    which includes a pawn's diagonal step onto an empty square); `KING_IN_CHECK` (pseudo-legal, but its own
    king would stand in check); for text in SAN (a PGN model) `NO_SAN_MATCH` or `AMBIGUOUS_SAN`; and
    `GAME_OVER`. Other games: `ILLEGAL` or `NOT_A_MOVE`."""
    if not isinstance(game, ChessGame):
        return NOT_A_MOVE if isinstance(choice, InvalidMove) else ILLEGAL
    board = game.board
    if game.outcome() is not None:
        return GAME_OVER
    move = choice
    if isinstance(choice, InvalidMove):
        text = choice.text.strip()
        try:
            move = chess.Move.from_uci(text)
        except ValueError:
            try:
                board.parse_san(text)
            except chess.AmbiguousMoveError:
                return AMBIGUOUS_SAN
            except chess.IllegalMoveError:
                return NO_SAN_MATCH
            except ValueError:
                return NOT_A_MOVE
            return ILLEGAL  # a legal SAN move that the codec could not read
    if not isinstance(move, chess.Move) or not move:
        return NOT_A_MOVE
    piece = board.piece_at(move.from_square)
    if piece is None or piece.color != board.turn:
        return NO_OWN_PIECE
    if board.is_pseudo_legal(move):
        return KING_IN_CHECK
    if piece.piece_type == chess.KING and chess.square_distance(move.from_square, move.to_square) == 2 \
            and chess.square_rank(move.from_square) == chess.square_rank(move.to_square):
        return CASTLING_NOT_ALLOWED
    if board.color_at(move.to_square) == board.turn:
        return CAPTURES_OWN_PIECE
    alone = chess.Board(None)
    alone.set_piece_at(move.from_square, piece)
    alone.turn = piece.color
    return PIECE_IN_THE_WAY if alone.is_pseudo_legal(move) else NOT_HOW_IT_MOVES


def format_reasons_table(result: LegalityResult) -> str:
    """Move numbers as rows: how many samples were illegal, and why (share of the illegal ones)."""
    found = Counter[str]()
    for counts in result.reasons.values():
        found.update(counts)
    names = [name for name, _ in found.most_common()]
    if not names:
        return "no illegal sample"
    lines = [f"{'move':>4} {'illegal':>8}  " + "  ".join(names)]
    for number in sorted(result.reasons):
        counts, illegal = result.reasons[number], sum(result.reasons[number].values())
        cells = "  ".join(f"{(f'{counts[name] / illegal:.0%}' if illegal else '-'):>{len(name)}}" for name in names)
        lines.append(f"{number:>4} {illegal:>8}  {cells}")
    return "\n".join(lines)


def format_legality_table(results: Sequence[LegalityResult]) -> str:
    """Models as rows, move numbers as columns: the legal-move rate (and the number of positions)."""
    numbers = sorted({n for r in results for n in r.positions})
    width = max([len(r.model) for r in results] + [5])
    lines = [f"{'model':<{width}} {'T':>5} " + " ".join(f"{'move ' + str(n):>10}" for n in numbers) + f" {'overall':>9}"]
    for r in results:
        cells = []
        for n in numbers:
            rate = r.rate(n)
            cells.append(f"{rate:>10.1%}" if rate is not None else f"{'-':>10}")
        overall = r.overall()
        lines.append(f"{r.model:<{width}} {r.temperature:>5g} " + " ".join(cells) + f" {overall if overall is None else f'{overall:.1%}':>9}")
    lines.append(f"{'positions':<{width}} {'':>5} " + " ".join(f"{results[0].positions.get(n, 0):>10}" for n in numbers))
    return "\n".join(lines)


def plot_legality(results: Sequence[LegalityResult], path: str | Path, title: str) -> Path:
    """One line per model: legal-move rate of the first sample against move number."""
    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    for r in results:
        numbers = [n for n in sorted(r.positions) if r.rate(n) is not None]
        ax.plot(numbers, [r.rate(n) for n in numbers], "-o", label=f"{r.model} (T={r.temperature:g})")
    ax.set_xlabel("move number")
    ax.set_ylabel("legal first samples")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save_figure(fig, path)
