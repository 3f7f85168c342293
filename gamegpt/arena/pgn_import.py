"""PGN files → game records. Variants and broken games are skipped and counted, never fatal.

A game is imported when it is standard chess (no Variant header, or "Standard"/"From Position"), parses
without errors, and has at least one move; a FEN header (SetUp) becomes the record's start position.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import chess
import chess.pgn

from gamegpt.atomic import atomic_path
from gamegpt.errors import RecordsError
from gamegpt.games.chess import ChessGame
from gamegpt.arena.records import RESULTS, GameRecord, RecordWriter

STANDARD_VARIANTS = {"", "standard", "chess", "from position", "from_position"}


@dataclass
class ImportReport:
    """What an import read: games written, and games skipped by reason ("variant: Crazyhouse", ...)."""

    imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def read(self) -> int:
        return self.imported + sum(self.skipped.values())

    def describe(self) -> str:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))
        return f"{self.imported} of {self.read} games imported" + (f"; skipped: {reasons}" if reasons else "")


def _record_from_pgn(game: chess.pgn.Game, index: int) -> tuple[GameRecord | None, str | None]:
    """The record of one parsed PGN game, or (None, why it is skipped)."""
    variant = game.headers.get("Variant", "").strip()
    if variant.lower() not in STANDARD_VARIANTS:
        return None, f"variant: {variant}"
    if game.errors:
        return None, f"broken: {str(game.errors[0]).splitlines()[0][:60]}"
    fen = game.headers.get("FEN")
    try:
        board = ChessGame(fen)
    except ValueError:
        return None, "broken: bad FEN"
    moves = list(game.mainline_moves())
    if not moves:
        return None, "no moves"
    for move in moves:
        if not move:
            return None, "broken: null move"
        if not board.is_legal(move):
            return None, "broken: a move after the game ended"  # python-chess reports other illegal moves
        board.push(move)
    result = game.headers.get("Result", "*")
    if result not in RESULTS:
        result = "*"
    outcome = board.outcome()
    termination = outcome.termination if outcome else (game.headers.get("Termination") or "unknown").lower()
    players = []
    for side in ("White", "Black"):
        player: dict[str, object] = {"name": game.headers.get(side, "?")}
        if game.headers.get(f"{side}Elo", "").isdigit():
            player["elo"] = int(game.headers[f"{side}Elo"])
        players.append(player)
    extra = {k: game.headers[k] for k in ("Event", "Site", "Date", "Round") if game.headers.get(k, "?") not in ("?", "")}
    return GameRecord(game="chess", moves=[m.uci() for m in moves], players=players, result=result,
                      termination=termination, index=index, start=board.start, extra=extra), None


def import_pgn(pgn_paths: list[str | Path], out: str | Path) -> ImportReport:
    """Write the standard games of the PGN files as records to `out` (replaced atomically)."""
    report = ImportReport()
    with atomic_path(out) as tmp, RecordWriter(tmp) as writer:
        for pgn_path in pgn_paths:
            path = Path(pgn_path)
            try:
                text = path.read_text(encoding="utf-8-sig", errors="replace")
            except OSError as exc:
                raise RecordsError(f"cannot read PGN file {path}: {exc.strerror or exc}") from None
            handle = io.StringIO(text)
            while True:
                try:
                    game = chess.pgn.read_game(handle)
                except (ValueError, RuntimeError) as exc:  # defensive: python-chess normally records errors
                    report.skipped[f"broken: {exc}"[:70]] += 1
                    continue
                if game is None:
                    break
                record, why = _record_from_pgn(game, report.imported)
                if record is None:
                    report.skipped[why or "unknown"] += 1
                else:
                    writer.write(record)
                    report.imported += 1
    return report
