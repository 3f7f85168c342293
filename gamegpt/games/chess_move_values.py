"""A table of Stockfish's value of the legal moves of chess positions: the teacher of distillation.

`gamegpt data move-values` (gamegpt.selfplay.move_values) writes the table as a directory of parts:

    settings.json     {"format": "gamegpt-move-values", "version": 1, "nodes", "max_moves", ...}
    part-00000.npz    keys   uint64 (n,)   the position's Polyglot Zobrist hash (pieces, side, castling, en passant)
                      moves  uint16 (n, K) up to K moves, best first; NO_MOVE pads a row
                      values int16  (n, K) centipawns for the side to move after each move (a mate in m: ±(10000 - m))

A position met in several parts keeps its first row. `MoveValueTable.load` reads every part (of one table, or of
several made by the same teacher) into memory (about 130 bytes a position with K = 32); `lookup` finds a board's
row by binary search.

The distillation target of a position is a distribution over its listed moves: each move's win probability
(Lichess's logistic curve of centipawns), divided by a temperature, through a softmax. Moves left out of a
row (beyond the K best) get probability 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import chess
import chess.polyglot
import numpy as np

from gamegpt.errors import UserError

FORMAT = "gamegpt-move-values"
VERSION = 1
SETTINGS_FILE = "settings.json"
PART_GLOB = "part-*.npz"
NO_MOVE = 0xFFFF
MATE_CENTIPAWNS = 10000
LICHESS_WIN_SLOPE = 0.00368208  # Lichess's centipawns -> win probability curve (its accuracy metric)


def encode_move(move: chess.Move) -> int:
    """A move as 16 bits: from square, to square << 6, promotion piece type << 12."""
    return move.from_square | move.to_square << 6 | (move.promotion or 0) << 12


def decode_move(code: int) -> chess.Move:
    """The inverse of `encode_move`."""
    return chess.Move(code & 63, (code >> 6) & 63, (code >> 12) or None)


def win_probability(centipawns: np.ndarray) -> np.ndarray:
    """Lichess's expected score of the side to move for an evaluation in centipawns (0.5 at 0)."""
    return 1.0 / (1.0 + np.exp(-LICHESS_WIN_SLOPE * np.asarray(centipawns, dtype=np.float64)))


@dataclass(frozen=True)
class MoveValueTable:
    """Stockfish's move values by position; see the module docstring for the format."""

    keys: np.ndarray  # uint64 (n,), sorted, unique
    moves: np.ndarray  # uint16 (n, K)
    values: np.ndarray  # int16 (n, K)
    settings: dict[str, Any]

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def load(cls, directories: str | Path | Sequence[str | Path]) -> "MoveValueTable":
        """Read every part of one table directory, or of several made by the same teacher (equal `nodes` and
        `max_moves`) as one table; a position in several keeps the row of the first. UserError (one line) if a
        path is not a table, a part is unreadable or the teachers differ."""
        roots = [Path(directories)] if isinstance(directories, (str, Path)) else [Path(d) for d in directories]
        if not roots:
            raise UserError("give at least one move-value table directory")
        settings = [_read_settings(root) for root in roots]
        for root, other in zip(roots[1:], settings[1:]):
            if any(other.get(name) != settings[0].get(name) for name in TEACHER_SETTINGS):
                raise UserError(f"{root}: made with other teacher settings than {roots[0]} "
                                f"({', '.join(TEACHER_SETTINGS)} must match)")
        keys, moves, values = [], [], []
        for root in roots:
            for part_keys, part_moves, part_values in _read_parts(root):
                keys.append(part_keys)
                moves.append(part_moves)
                values.append(part_values)
        width = max(m.shape[1] for m in moves)
        moves = [np.pad(m, ((0, 0), (0, width - m.shape[1])), constant_values=NO_MOVE) for m in moves]
        values = [np.pad(v, ((0, 0), (0, width - v.shape[1]))) for v in values]
        all_keys = np.concatenate(keys)
        unique_keys, first = np.unique(all_keys, return_index=True)  # the first row of each position
        merged = {**settings[0], "records": [r for s in settings for r in s.get("records", [])]}
        return cls(unique_keys, np.concatenate(moves)[first], np.concatenate(values)[first], merged)

    def lookup(self, board: chess.Board) -> tuple[list[chess.Move], np.ndarray] | None:
        """The listed moves of `board` (best first) and their values in centipawns, or None if it is not in the
        table."""
        key = np.uint64(chess.polyglot.zobrist_hash(board))
        at = int(np.searchsorted(self.keys, key))
        if at == len(self.keys) or self.keys[at] != key:
            return None
        codes = self.moves[at]
        listed = codes != NO_MOVE
        return [decode_move(int(code)) for code in codes[listed]], self.values[at][listed].astype(np.int64)

    def target(self, board: chess.Board, temperature: float) -> tuple[list[chess.Move], np.ndarray] | None:
        """The distillation target of `board`: its listed moves and their probabilities,
        softmax(win probability / temperature); None if the board is not in the table. (The moves are not
        checked for legality: two positions share a 64-bit key with odds of about n^2 / 2^65.)"""
        found = self.lookup(board)
        if found is None:
            return None
        moves, centipawns = found
        scores = win_probability(centipawns) / temperature
        weights = np.exp(scores - scores.max())
        return moves, weights / weights.sum()


TEACHER_SETTINGS = ("nodes", "max_moves")
"""The settings that make two tables the same teacher (and so mergeable)."""


def _read_settings(root: Path) -> dict[str, Any]:
    settings_path = root / SETTINGS_FILE
    try:
        settings = json.loads(settings_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{root}: not a move-value table (no {SETTINGS_FILE}; make one with "
                        "`gamegpt data move-values`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{settings_path}: not readable JSON ({e})") from None
    if not isinstance(settings, dict) or settings.get("format") != FORMAT:
        raise UserError(f"{settings_path}: not a {FORMAT} settings file")
    return settings


def _read_parts(root: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(keys, moves, values) of each part of a table directory, checked."""
    parts = sorted(root.glob(PART_GLOB))
    if not parts:
        raise UserError(f"{root}: the move-value table has no parts yet")
    arrays = []
    for part in parts:
        try:
            with np.load(part, allow_pickle=False) as data:
                part_keys, part_moves, part_values = data["keys"], data["moves"], data["values"]
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{part}: not a readable move-value part ({e})") from None
        if (part_keys.dtype != np.uint64 or part_moves.dtype != np.uint16 or part_values.dtype != np.int16
                or part_moves.shape != part_values.shape or part_moves.shape[:1] != part_keys.shape):
            raise UserError(f"{part}: malformed move-value part (keys uint64 (n,), moves uint16 and "
                            "values int16 (n, K))")
        arrays.append((part_keys, part_moves, part_values))
    return arrays
