"""Opening books for tournaments: a PGN file of short lines (e.g. Stockfish's 2moves_v2.pgn) or a TSV of
named openings (Lichess's chess-openings: columns eco, name, pgn).

`load_openings(path, count=N, seed=S)` picks N openings in a seeded random order (or the file's order),
parsing only the entries it needs; entries that are not legal standard chess are skipped. The pick is
prefix-stable: asking for more openings with the same seed keeps the first N and adds new ones, which is
what lets a tournament grow by openings without replaying a game.
"""

from __future__ import annotations

import csv
import io
import random
import re
from dataclasses import dataclass
from pathlib import Path
from functools import partial
from typing import Any, Callable, Iterator

import chess
import chess.pgn

from gamegpt.errors import UserError
from gamegpt.games.chess import ChessGame
from gamegpt.resources import OPENING_BOOK, data_file

ORDERS = ("random", "sequential")
_MOVE_NUMBER = re.compile(r"^\d+\.+(.*)$")
_RESULTS = {"1-0", "0-1", "1/2-1/2", "*"}


@dataclass(frozen=True)
class Opening:
    """A book line: `moves` (UCI, legal) from `fen` (None: the standard start), with a name and ECO code."""

    name: str
    moves: tuple[str, ...] = ()
    eco: str | None = None
    fen: str | None = None

    def new_game(self, *, claim_draws: bool = True) -> ChessGame:
        """A chess game with the opening's moves played (claimable draws end games, as in tournaments)."""
        return ChessGame.replay(self.fen, self.moves, claim_draws=claim_draws)

    def san(self) -> str:
        """The moves as PGN movetext (`1. e4 e5 2. Nf3`)."""
        board = chess.Board(self.fen) if self.fen else chess.Board()
        return board.variation_san([chess.Move.from_uci(m) for m in self.moves])

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"name": self.name, "moves": list(self.moves)}
        if self.eco:
            data["eco"] = self.eco
        if self.fen:
            data["fen"] = self.fen
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Opening":
        """The opening `to_dict` wrote."""
        eco, fen = data.get("eco"), data.get("fen")
        return cls(str(data["name"]), tuple(str(m) for m in data.get("moves") or ()), str(eco) if eco else None,
                   str(fen) if fen else None)


START_POSITION = Opening("start position")


def default_book() -> str | None:
    """Stockfish's openings/2moves_v2.pgn (CC0), shipped in the package (`gamegpt.resources`): always there."""
    return str(data_file(*OPENING_BOOK))


def openings_from_book(book: str | None, *, count: int | None = None, seed: int = 0, order: str = "random",
                       max_plies: int | None = None) -> list[Opening]:
    """The openings a tournament plays: from `book` as `load_openings` reads it, from the shipped book
    (`default_book()`) when `book` is None, or the start position alone when `book` is "none"."""
    if book is None:
        book = default_book()
    if book.lower() == "none":
        return [START_POSITION]
    return load_openings(book, count=count, seed=seed, order=order, max_plies=max_plies)


def load_openings(path: str | Path, *, count: int | None = None, seed: int = 0, order: str = "random",
                  max_plies: int | None = None) -> list[Opening]:
    """`count` openings (all if None) from a `.pgn` or `.tsv` book, in a random order seeded by `seed`
    or in the file's order (`order="sequential"`), each cut to its first `max_plies` plies if given.
    Raises UserError for a missing or unreadable file, an unknown format, or a book with no usable line;
    fewer than `count` usable lines gives all there are."""
    path = Path(path)
    if order not in ORDERS:
        raise UserError(f"opening order must be one of {', '.join(ORDERS)}, got {order!r}")
    if count is not None and count < 1:
        raise UserError(f"the opening count must be at least 1, got {count}")
    if max_plies is not None and max_plies < 0:
        raise UserError(f"opening plies must be >= 0, got {max_plies}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"opening book not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read opening book {path}: {exc}") from None
    suffix = path.suffix.lower()
    readers: list[Callable[[], Opening | None]]  # one per entry: parses it when called
    if suffix == ".pgn":
        readers = [partial(_parse_pgn_entry, chunk, k, path.stem) for k, chunk in enumerate(_pgn_chunks(text))]
    elif suffix in (".tsv", ".txt"):
        readers = [partial(_parse_tsv_entry, row, k, path.stem) for k, row in enumerate(_tsv_rows(text, path))]
    else:
        raise UserError(f"{path}: unknown opening book format (expected .pgn, or .tsv with columns eco, name, pgn)")
    positions = list(range(len(readers)))
    if order == "random":
        random.Random(seed).shuffle(positions)
    chosen: list[Opening] = []
    for position in positions:
        if count is not None and len(chosen) >= count:
            break
        opening = readers[position]()
        if opening is None:
            continue
        if max_plies is not None and len(opening.moves) > max_plies:
            opening = Opening(f"{opening.name} (first {max_plies} plies)", opening.moves[:max_plies], opening.eco,
                              opening.fen)
        chosen.append(opening)
    if not chosen:
        raise UserError(f"{path}: no usable opening (standard chess, legal moves) in {len(readers)} entries")
    return chosen


def _pgn_chunks(text: str) -> list[str]:
    """The text of each game of a PGN file: a game starts at a tag line that follows movetext (or the
    file's start). Cheap: games are parsed only when picked."""
    chunks: list[str] = []
    current: list[str] = []
    in_tags = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            if not in_tags and any(part.strip() for part in current):
                chunks.append("\n".join(current))
                current = []
            in_tags = True
        elif stripped:
            in_tags = False
        current.append(line)
    if any(part.strip() for part in current):
        chunks.append("\n".join(current))
    return chunks


def _parse_pgn_entry(chunk: str, position: int, stem: str) -> Opening | None:
    game = chess.pgn.read_game(io.StringIO(chunk))
    if game is None or game.errors:
        return None
    if game.headers.get("Variant", "Standard").lower() not in ("standard", "chess", "from position"):
        return None
    try:
        board = game.board()
    except ValueError:
        return None
    if not board.is_valid():
        return None
    fen = None if board.fen() == chess.STARTING_FEN else board.fen()
    moves = tuple(move.uci() for move in game.mainline_moves())
    headers = game.headers
    named = [headers.get(key, "?") for key in ("Opening", "Variation")]
    named = [part for part in named if part and part != "?"]
    name = ": ".join(named) if named else f"{stem} #{position + 1}"
    eco = headers.get("ECO")
    return Opening(name, moves, eco if eco and eco != "?" else None, fen)


def _tsv_rows(text: str, path: Path) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text), delimiter="\t")
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "pgn" not in fields:
        raise UserError(f"{path}: a TSV opening book needs a 'pgn' column (and 'name', 'eco'); got {fields}")
    return [{(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in reader]


def _parse_tsv_entry(row: dict[str, str], position: int, stem: str) -> Opening | None:
    board = chess.Board()
    moves: list[str] = []
    for token in _san_tokens(row.get("pgn", "")):
        try:
            move = board.parse_san(token)
        except ValueError:
            return None
        moves.append(move.uci())
        board.push(move)
    name = row.get("name", "").strip() or f"{stem} #{position + 1}"
    return Opening(name, tuple(moves), row.get("eco", "").strip() or None)


def _san_tokens(movetext: str) -> Iterator[str]:
    """SAN moves of simple movetext (`1. e4 e5 2. Nf3`, `1.e4 e5`, `3... Nc6`)."""
    for token in movetext.split():
        match = _MOVE_NUMBER.match(token)
        if match:
            token = match.group(1)
        if token and token not in _RESULTS:
            yield token
