"""Finished Lichess games as PGN files, one per game (`<pgn_dir>/<game id>.pgn`), written atomically.

Headers follow Lichess's own exports: Event ("Rated Blitz game"), Site (the game's URL), Date, White,
Black, Result, WhiteElo/BlackElo, WhiteTitle/BlackTitle, TimeControl ("300+3", "-" without a clock),
Variant, Termination (Normal, Time forfeit, Abandoned), SetUp/FEN for a game from a position, and
LichessStatus (the API's status word: mate, resign, outoftime, aborted...).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import chess
import chess.pgn

from gamegpt.atomic import write_text_atomic

DRAW_STATUSES = {"draw", "stalemate", "insufficientMaterialClaim"}
TERMINATIONS = {"outoftime": "Time forfeit", "timeout": "Time forfeit", "aborted": "Abandoned",
                "noStart": "Abandoned", "cheat": "Rules infraction"}


def result_of(status: str, winner: str | None) -> str:
    """The PGN result for a Lichess status and winner ("white"/"black"/None)."""
    if winner == "white":
        return "1-0"
    if winner == "black":
        return "0-1"
    if status in DRAW_STATUSES or status in ("outoftime", "timeout"):  # no winner on time: a draw
        return "1/2-1/2"
    return "*"


def _player_name(player: dict[str, Any]) -> str:
    if player.get("aiLevel") is not None:
        return f"Stockfish level {player['aiLevel']}"
    return str(player.get("name") or player.get("id") or "?")


def _date(created: Any) -> str:
    if isinstance(created, datetime.datetime):
        return created.strftime("%Y.%m.%d")
    if isinstance(created, (int, float)):
        return datetime.datetime.fromtimestamp(created / 1000, datetime.timezone.utc).strftime("%Y.%m.%d")
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y.%m.%d")


def game_pgn(full: dict[str, Any], moves: list[str], status: str, winner: str | None, site: str) -> str:
    """The PGN text of a game from its gameFull event, its final UCI moves, status and winner."""
    game = chess.pgn.Game()
    h = game.headers
    speed = str(full.get("speed") or "?")
    h["Event"] = f"{'Rated' if full.get('rated') else 'Casual'} {speed} game"
    h["Site"] = f"{site.rstrip('/')}/{full.get('id', '?')}"
    h["Date"] = _date(full.get("createdAt"))
    h["Round"] = "-"
    for side in ("White", "Black"):
        player = full.get(side.lower()) or {}
        h[side] = _player_name(player)
        if player.get("rating") is not None:
            h[f"{side}Elo"] = str(player["rating"])
        if player.get("title"):
            h[f"{side}Title"] = str(player["title"])
    h["Result"] = result_of(status, winner)
    clock = full.get("clock") or {}
    h["TimeControl"] = (f"{int(clock.get('initial', 0)) // 1000}+{int(clock.get('increment', 0)) // 1000}"
                        if clock else "-")
    h["Variant"] = str((full.get("variant") or {}).get("name", "Standard"))
    h["Termination"] = TERMINATIONS.get(status, "Normal" if h["Result"] != "*" else "Unterminated")
    h["LichessStatus"] = status
    fen = full.get("initialFen")
    board = chess.Board()
    if fen and fen != "startpos":
        try:
            board = chess.Board(fen)
        except ValueError:
            board = chess.Board()
        else:
            if board.fen() != chess.STARTING_FEN:
                game.setup(board)
    node: chess.pgn.GameNode = game
    for uci in moves:
        try:
            move = board.parse_uci(uci)
        except ValueError:
            game.comment = f"unreadable or illegal move {uci!r} in the game record; moves stop here"
            break
        node = node.add_variation(move)
        board.push(move)
    return str(game) + "\n"


def save_pgn(directory: str | Path, game_id: str, text: str) -> Path:
    """Write `text` to `<directory>/<game_id>.pgn` atomically (temp file, then rename); the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    safe_id = "".join(ch for ch in game_id if ch.isalnum()) or "game"
    path = directory / f"{safe_id}.pgn"
    write_text_atomic(path, text)
    return path
