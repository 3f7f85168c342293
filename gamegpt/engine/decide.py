"""Choosing a move for a real opponent: what the UCI engine and the Lichess bot share.

`model_move` plays the model's move by its policy and, when that is not legal (`raw`/`retry`), the
fallback: masked decoding or a seeded random legal move, with notes that say so. `position_seed` makes
the sampling depend only on a seed and the position (start and moves), so a replayed game repeats.
`clock_budget` is the share of a clock a move may take before an emergency move is due.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from typing import TYPE_CHECKING, Sequence

import chess
import chess.polyglot

from gamegpt.games.base import InvalidMove
from gamegpt.games.chess import ChessGame

if TYPE_CHECKING:
    from gamegpt.engine.model_player import ModelPlayer

PIECE_VALUES = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9, chess.KING: 0}
"""Material in pawns, for `material_balance`."""

MOVES_TO_GO = 30
"""Moves assumed left in the game when the clock does not say (`movestogo`)."""


def position_seed(seed: int, game: ChessGame) -> int:
    """A sampling seed from `seed`, the start position and the moves played."""
    key = f"{seed}|{game.start}|{' '.join(move.uci() for move in game.history)}"
    return zlib.crc32(key.encode())


def clock_budget(remaining: float, increment: float, overhead: float, moves_to_go: int | None = None) -> float:
    """Seconds a move may take: `remaining / moves_to_go + 3/4 increment`, at most half the clock, less the
    overhead kept for lag (may be negative: the caller sets its floor)."""
    return min(remaining / (moves_to_go or MOVES_TO_GO) + 0.75 * increment, remaining / 2) - overhead


def material_balance(board: chess.Board) -> int:
    """The side to move's material less its opponent's, in pawns (P 1, N 3, B 3, R 5, Q 9)."""
    balance = 0
    for piece_type, value in PIECE_VALUES.items():
        balance += value * (len(board.pieces(piece_type, board.turn)) - len(board.pieces(piece_type, not board.turn)))
    return balance


def moves_avoiding_repetition(game: object) -> list[chess.Move] | None:
    """The legal moves that neither repeat an earlier position, nor let the opponent's reply make one occur a
    third time, nor stalemate the opponent, when the side to move has more material; None when nothing needs
    steering (not chess, not ahead, no legal move draws so, or every move does).

    A repeated position is one step from a threefold-repetition draw, which a model that is winning
    material but cannot yet mate walks into over and over (greedy decoding repeats itself), and which the
    opponent completes as often as the model does; a stalemate is the other draw such a model walks into
    against a bare king."""
    if not isinstance(game, ChessGame):
        return None
    board = game.board
    if material_balance(board) <= 0:
        return None
    seen = _position_counts(board)
    fresh = []
    legal = list(board.legal_moves)
    for move in legal:
        board.push(move)
        try:
            if not seen[chess.polyglot.zobrist_hash(board)] and not board.is_stalemate() \
                    and not _a_reply_repeats_thrice(board, seen):
                fresh.append(move)
        finally:
            board.pop()
    return fresh if fresh and len(fresh) < len(legal) else None


def _position_counts(board: chess.Board) -> Counter[int]:
    """How often each position (its Zobrist hash) has occurred in the game so far, the current one included."""
    replay = board.copy()
    counts = Counter([chess.polyglot.zobrist_hash(replay)])
    while replay.move_stack:
        replay.pop()
        counts[chess.polyglot.zobrist_hash(replay)] += 1
    return counts


def _a_reply_repeats_thrice(board: chess.Board, seen: Counter[int]) -> bool:
    """Whether the side to move has a move to a position that occurred twice before (a threefold repetition)."""
    for reply in board.legal_moves:
        board.push(reply)
        try:
            if seen[chess.polyglot.zobrist_hash(board)] >= 2:
                return True
        finally:
            board.pop()
    return False


def book_move(path: str, board: chess.Board, seed: int, *, best: bool = False) -> chess.Move | None:
    """A move for `board` from the Polyglot book at `path`: drawn by the book's weights with `seed` (or its
    best-weighted move), None when the book does not have the position. OSError or ValueError when the file
    cannot be read as a book."""
    try:
        with chess.polyglot.open_reader(path) as reader:
            entry = reader.find(board) if best else reader.weighted_choice(board, random=random.Random(seed))
    except IndexError:  # the position is not in the book
        return None
    return entry.move if entry.move in board.legal_moves else None


def random_move(seed: int, moves: Sequence[chess.Move]) -> chess.Move:
    """A legal move drawn from `moves` by `seed` alone: the same seed and moves give the same move."""
    return random.Random(seed).choice(list(moves))


def model_move(player: "ModelPlayer", game: ChessGame, seed: int, fallback: str = "mask",
               among: Sequence[chess.Move] | None = None) -> tuple[chess.Move, list[str]]:
    """The model's move in `game` (from `among` if given, by masked decoding) and notes on any fallback.

    `game` must have a legal move. The player is reseeded with `seed` first."""
    legal = list(game.board.legal_moves)
    if not legal:
        raise ValueError("no legal move")
    candidates = list(among) if among else legal
    player.reset(seed)
    move = player.choose(game, among=candidates) if len(candidates) < len(legal) else player.choose(game)
    notes = []
    if isinstance(move, InvalidMove):
        notes.append(f"model's {player.last_samples} sample(s) not legal ({move.text.strip()!r}); fallback {fallback}")
        move = player.choose_masked(game, candidates) if fallback == "mask" else random_move(seed, candidates)
    return move, notes
