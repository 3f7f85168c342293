"""The puzzle file: chess puzzles in Lichess's CSV format, read and checked into `Puzzle`s.

Written by Lichess (its puzzle database) and by `gamegpt puzzles make` (`gamegpt.selfplay.puzzle_maker`,
which adds the `History` column), scored by `gamegpt.eval.puzzles`.

A row (`PuzzleId,FEN,Moves,Rating,...`, Lichess's columns) holds the position *before* the opponent's
move; `Moves[0]` is that move, then the solver's moves alternate with the opponent's replies, the last
move being the solver's. An optional `History` column (SAN or UCI moves from the standard start,
space-separated; move numbers such as `1.` or `12...` are ignored) gives the game that led to the FEN.

Rating buckets: `<900` (every rating below 900), `900` (900-999), `1000`, `1100`, `1200`, `1300`
(each 100 wide), `1400+` (1400 and above), as in Karvonen's plot; `unrated` for an empty Rating (puzzles
from `gamegpt puzzles make`).

Rows that cannot be read (a bad FEN, an illegal solution move, a History that does not lead to the FEN,
...) are skipped and counted by reason, never fatal; a missing or unreadable file is a `PuzzleFileError`.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chess

from gamegpt.errors import UserError
from gamegpt.games.base import IllegalMoveError
from gamegpt.games.chess import ChessGame

LICHESS_COLUMNS = ("PuzzleId", "FEN", "Moves", "Rating", "RatingDeviation", "Popularity", "NbPlays", "Themes",
                   "GameUrl", "OpeningTags")
"""Lichess's puzzle columns, in their order."""
HISTORY_COLUMN = "History"
REQUIRED_COLUMNS = ("PuzzleId", "FEN", "Moves")

BUCKET_EDGES = (900, 1000, 1100, 1200, 1300, 1400)
"""Lower edges of the rated buckets after `<900`; the last one is open (`1400+`)."""
UNRATED = "unrated"
BUCKETS = ("<900", "900", "1000", "1100", "1200", "1300", "1400+", UNRATED)
"""Every bucket label, in plotting order."""

NO_HISTORY = "no History (the model reads games from move 1)"
"""The skip reason for a FEN-only puzzle and a model without start-position encoding."""

_MOVE_NUMBER = re.compile(r"^\d+\.+")


class PuzzleFileError(UserError):
    """A puzzle file is missing, unreadable, or not a Lichess-format CSV."""


class MalformedPuzzle(ValueError):
    """A row that is not a usable puzzle; `reason` is a short stable key, `detail` says more."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def rating_bucket(rating: int | None) -> str:
    """The bucket label of a puzzle rating (see the module docstring); `unrated` for None."""
    if rating is None:
        return UNRATED
    if rating < BUCKET_EDGES[0]:
        return BUCKETS[0]
    if rating >= BUCKET_EDGES[-1]:
        return f"{BUCKET_EDGES[-1]}+"
    return str(max(edge for edge in BUCKET_EDGES if edge <= rating))


@dataclass(frozen=True)
class Puzzle:
    """One puzzle. `moves[0]` is the opponent's move from `fen`; the solver plays `moves[1]`, `moves[3]`, ...
    `history` (or None) is the game from the standard start that reaches `fen`. `row` is the 1-based data
    row in its file, which seeds the players."""

    puzzle_id: str
    fen: str
    moves: tuple[chess.Move, ...]
    rating: int | None = None
    themes: tuple[str, ...] = ()
    history: tuple[chess.Move, ...] | None = None
    row: int = 0

    @property
    def bucket(self) -> str:
        return rating_bucket(self.rating)

    @property
    def solver_moves(self) -> tuple[chess.Move, ...]:
        return self.moves[1::2]

    def game(self, *, from_history: bool = True) -> ChessGame:
        """The game at the solver's first turn (the opponent's move played): from the standard start through
        `history` when there is one and `from_history` is set, else from the FEN."""
        if self.history is not None and from_history:
            game = ChessGame()
            for move in self.history:
                game.push(move)
        else:
            game = ChessGame(self.fen)
        game.push(self.moves[0])
        return game


@dataclass(frozen=True)
class SkippedPuzzle:
    """A puzzle (or row) left out, with a short `reason` (the key counts are grouped by) and a `detail`."""

    puzzle_id: str
    reason: str
    detail: str = ""
    row: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.puzzle_id, "row": self.row, "reason": self.reason, "detail": self.detail}


@dataclass
class PuzzleSet:
    """The puzzles of a file, and its rows that could not be read (`malformed`)."""

    source: str
    puzzles: list[Puzzle]
    malformed: list[SkippedPuzzle] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.puzzles) + len(self.malformed)

    def describe(self) -> str:
        text = f"{self.source}: {len(self.puzzles)} of {self.rows} rows read"
        if self.malformed:
            text += "; malformed: " + count_text(Counter(s.reason for s in self.malformed))
        return text


# ----------------------------------------------------------------------------------------------- reading


def parse_moves(text: str, board: chess.Board, what: str) -> list[chess.Move]:
    """Space-separated SAN or UCI moves (move numbers ignored), each legal in turn from `board` (which is
    played forward). MalformedPuzzle(`bad <what>`) names the first move that is unreadable or illegal."""
    moves: list[chess.Move] = []
    for word in text.split():
        word = _MOVE_NUMBER.sub("", word)
        if not word:
            continue
        move = _parse_move(board, word)
        if move is None:
            raise MalformedPuzzle(f"bad {what}", f"{word!r} is not a legal move at ply {len(moves) + 1} "
                                                 f"in {board.fen()}")
        moves.append(move)
        board.push(move)
    return moves


def _parse_move(board: chess.Board, word: str) -> chess.Move | None:
    """A legal move written in UCI or SAN, or None."""
    try:
        move = chess.Move.from_uci(word)
        if move and board.is_legal(move):
            return move
    except ValueError:
        pass
    try:
        move = board.parse_san(word)
    except ValueError:
        return None
    return move if move else None


def _same_position(a: chess.Board, b: chess.Board) -> bool:
    """Pieces, side to move, castling rights and a usable en-passant square agree (move counters may not)."""
    return a.epd() == b.epd()


def parse_puzzle(row: Mapping[str, str | None], number: int) -> Puzzle:
    """The puzzle of one CSV row (`number`: its 1-based data row); MalformedPuzzle if it is not one."""
    puzzle_id = (row.get("PuzzleId") or "").strip()
    if not puzzle_id:
        raise MalformedPuzzle("missing PuzzleId")
    fen = (row.get("FEN") or "").strip()
    if not fen:
        raise MalformedPuzzle("missing FEN")
    try:
        board = chess.Board(fen)
    except ValueError as exc:
        raise MalformedPuzzle("bad FEN", str(exc)) from None
    if not board.is_valid():
        raise MalformedPuzzle("bad FEN", f"not a legal position ({board.status()!r})")
    start = board.copy()
    moves = parse_moves(row.get("Moves") or "", board, "Moves")
    if len(moves) < 2 or len(moves) % 2:
        raise MalformedPuzzle("bad Moves", f"{len(moves)} moves: expected the opponent's move, then pairs "
                                           "ending with the solver's")
    rating_text = (row.get("Rating") or "").strip()
    try:
        rating = int(float(rating_text)) if rating_text else None
    except ValueError:
        raise MalformedPuzzle("bad Rating", repr(rating_text)) from None
    history = None
    history_text = (row.get(HISTORY_COLUMN) or "").strip()
    if history_text:
        reached = chess.Board()
        history = tuple(parse_moves(history_text, reached, "History"))
        if not _same_position(reached, start):
            raise MalformedPuzzle("History does not lead to the FEN", f"it reaches {reached.fen()}")
    puzzle = Puzzle(puzzle_id, start.fen(), tuple(moves), rating, tuple((row.get("Themes") or "").split()),
                    history, number)
    for from_history in (False, True) if history is not None else (False,):
        try:  # ChessGame also ends games by the 75-move and fivefold rules, which chess.Board.is_legal ignores
            game = puzzle.game(from_history=from_history)
            for move in moves[1:]:
                game.push(move)
        except IllegalMoveError:
            raise MalformedPuzzle("bad Moves", "the game is over before the solution ends") from None
    return puzzle


def read_puzzles(path: str | Path, *, limit: int | None = None) -> PuzzleSet:
    """The puzzles of a Lichess-format CSV (the first `limit` data rows if given). Malformed rows and
    repeated ids are skipped and counted; PuzzleFileError for a missing, unreadable or headerless file."""
    path = Path(path)
    if not path.is_file():
        raise PuzzleFileError(f"puzzle file not found: {path}")
    if limit is not None and limit < 1:
        raise UserError(f"the limit must be at least 1, got {limit}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise PuzzleFileError(f"{path}: not a text (UTF-8) CSV file") from None
    except OSError as exc:
        raise PuzzleFileError(f"cannot read puzzle file {path}: {exc.strerror or exc}") from None
    if "\0" in text:
        raise PuzzleFileError(f"{path}: not a text CSV file (it holds NUL bytes)")
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise PuzzleFileError(f"{path}: not a Lichess puzzle CSV: no column {', '.join(missing)} in the header "
                              f"(expected {','.join(LICHESS_COLUMNS)}[,{HISTORY_COLUMN}])")
    reader.fieldnames = header
    result = PuzzleSet(str(path), [])
    seen: set[str] = set()
    try:
        for number, row in enumerate(reader, start=1):
            if limit is not None and number > limit:
                break
            puzzle_id = (row.get("PuzzleId") or "").strip() or f"row {number}"
            if None in row:
                result.malformed.append(SkippedPuzzle(puzzle_id, "too many fields", "", number))
                continue
            try:
                puzzle = parse_puzzle(row, number)
            except MalformedPuzzle as exc:
                result.malformed.append(SkippedPuzzle(puzzle_id, exc.reason, exc.detail, number))
                continue
            if puzzle.puzzle_id in seen:
                result.malformed.append(SkippedPuzzle(puzzle_id, "repeated PuzzleId", "", number))
                continue
            seen.add(puzzle.puzzle_id)
            result.puzzles.append(puzzle)
    except csv.Error as exc:
        raise PuzzleFileError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    return result


def count_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in sorted(counts.items()))
