"""Chess game records as PGN, readable by any chess tool: `export_pgn(records, pgn)` rebuilds the whole file.

Headers: Event and Site "gamegpt self-play", Date (the run's start date from the summary JSON beside the
records, else "????.??.??"), Round (the game index), White and Black (the players as spec-like text, e.g.
`stockfish:skill=3,nodes=1000,noise=0.05`), Result, Termination (gamegpt's word: checkmate, max_plies,
illegal_move...), SetUp/FEN for a non-standard start, and custom GameSeed, WhiteNoise, BlackNoise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import chess
import chess.pgn

from gamegpt.atomic import atomic_path
from gamegpt.errors import RecordsError
from gamegpt.arena.records import GameRecord, iter_records
from gamegpt.arena.runs import summary_path_for

UNKNOWN_DATE = "????.??.??"


def pgn_path_for(records_path: Path) -> Path:
    """Where the PGN export of a records file lives (`games.jsonl` → `games.pgn`)."""
    return records_path.with_suffix(".pgn")


def player_label(description: dict[str, Any]) -> str:
    """A player description as spec-like text: `stockfish:skill=3,nodes=1000,noise=0.05`."""
    name = str(description.get("name", "?")).split("@", 1)[0]
    parts = []
    for key, value in description.items():
        if key in ("name", "engine"):
            continue
        if isinstance(value, list):
            value = "-".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return f"{name}:{','.join(parts)}" if parts else name


def record_to_pgn(record: GameRecord, date: str = UNKNOWN_DATE) -> chess.pgn.Game:
    """One chess record as a python-chess game. Raises RecordsError for a move that is not legal."""
    game = chess.pgn.Game()
    headers = game.headers
    headers["Event"] = "gamegpt self-play"
    headers["Site"] = "gamegpt self-play"
    headers["Date"] = date
    headers["Round"] = "?" if record.index is None else str(record.index)
    players = list(record.players) + [{}, {}]
    headers["White"] = player_label(players[0]) if players[0] else "?"
    headers["Black"] = player_label(players[1]) if players[1] else "?"
    headers["Result"] = record.result
    headers["Termination"] = record.termination or "?"
    if record.seed is not None:
        headers["GameSeed"] = str(record.seed)
    for side, player in zip(("White", "Black"), players[:2]):
        if "noise" in player:
            headers[f"{side}Noise"] = str(player["noise"])
    board = chess.Board(record.start) if record.start else chess.Board()
    if record.start:
        game.setup(board)
    node: chess.pgn.GameNode = game
    for ply, text in enumerate(record.moves):
        try:
            move = chess.Move.from_uci(text)
        except ValueError:
            move = None
        if move is None or not board.is_legal(move):
            raise RecordsError(f"game {record.index}: move {ply + 1} {text!r} is not legal")
        node = node.add_variation(move)
        board.push(move)
    illegal = record.extra.get("illegal")
    if isinstance(illegal, dict):
        side = "White" if illegal.get("side") == 0 else "Black"
        node.comment = f"{side} then played an illegal move: {illegal.get('text')!r}"
    return game


def run_date(records_path: Path) -> str:
    """The date the run started, from its summary JSON (`created`), in PGN form; else "????.??.??"."""
    try:
        created = json.loads(summary_path_for(records_path).read_text())["created"]
        return str(created)[:10].replace("-", ".")
    except (OSError, ValueError, KeyError, TypeError):
        return UNKNOWN_DATE


def export_pgn(records_path: str | Path, pgn_path: str | Path, *, date: str | None = None,
               edit: Callable[[GameRecord, chess.pgn.Game], None] | None = None) -> int:
    """Rebuild `pgn_path` from the chess records in `records_path`, games in index order, atomically
    (a temp file beside it, then rename). `edit` may change each game before it is written (other
    headers, comments). Returns the number of games. Raises RecordsError for a record that is not chess
    or holds an illegal move."""
    records_path, pgn_path = Path(records_path), Path(pgn_path)
    records = sorted(iter_records(records_path), key=lambda r: (r.index is None, r.index or 0))
    for record in records:
        if record.game != "chess":
            raise RecordsError(f"{records_path}: game {record.index} is {record.game}, not chess: no PGN")
    date = date or run_date(records_path)
    with atomic_path(pgn_path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        exporter = chess.pgn.FileExporter(handle)
        for record in records:
            try:
                pgn_game = record_to_pgn(record, date)
            except RecordsError as exc:
                raise RecordsError(f"{records_path}: {exc}") from None
            if edit is not None:
                edit(record, pgn_game)
            pgn_game.accept(exporter)
    return len(records)
