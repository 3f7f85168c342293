"""The games a model is looked at on, seeded: "expert" games and "random" games of each game.

  tic-tac-toe: expert = Newell–Simon self-play (perfect play, ties broken at random), random = uniformly
  random legal moves on both sides.
  chess: expert = the first games of a PGN file (default: the shared Fischer games, if there), random =
  uniformly random legal moves for at most `max_plies` plies.

A game is a dict `{"moves": [record strings], "kind": "expert" | "random"}` (moves as `Game.move_to_str`).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from gamegpt.arena.play import derive_seed
from gamegpt.errors import UserError
from gamegpt.games import ChessGame, TicTacToe
from gamegpt.games.base import Game
from gamegpt.players.base import RandomPlayer
from gamegpt.players.newell_simon import NewellSimonPlayer
from gamegpt.shared_data import shared_file

CHESS_RANDOM_MAX_PLIES = 60


def _self_play(game: Game[Any], player: Any, seed: int, max_plies: int | None) -> list[str]:
    player.reset(seed)
    moves = []
    while game.outcome() is None and game.legal_moves() and (max_plies is None or len(moves) < max_plies):
        move = player.choose(game)
        moves.append(game.move_to_str(move))
        game.push(move)
    return moves


def tictactoe_games(expert: int, random_games: int, seed: int) -> list[dict[str, Any]]:
    games = [{"moves": _self_play(TicTacToe(), NewellSimonPlayer(), derive_seed(seed, 1, i), None), "kind": "expert"}
             for i in range(expert)]
    games += [{"moves": _self_play(TicTacToe(), RandomPlayer(), derive_seed(seed, 2, i), None), "kind": "random"}
              for i in range(random_games)]
    return games


def default_chess_pgn() -> Path | None:
    return shared_file("games", "fischer.pgn")


def chess_games(expert: int, random_games: int, seed: int, pgn: str | Path | None = None,
                max_plies: int = CHESS_RANDOM_MAX_PLIES) -> list[dict[str, Any]]:
    """`expert` games from `pgn` (standard start, at least 10 plies; fewer if the file has fewer) and
    `random_games` random ones. UserError for a PGN that is missing or unreadable."""
    import chess.pgn

    games: list[dict[str, Any]] = []
    if expert:
        path = Path(pgn) if pgn is not None else default_chess_pgn()
        if path is None:
            raise UserError("no PGN of expert chess games: give --pgn (the shared fischer.pgn is not here)")
        if not path.is_file():
            raise UserError(f"PGN file not found: {path}")
        with open(path, encoding="utf-8", errors="replace") as handle:
            while len(games) < expert:
                try:
                    parsed = chess.pgn.read_game(handle)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise UserError(f"{path}: unreadable PGN: {exc}") from None
                if parsed is None:
                    break
                if parsed.headers.get("FEN") or parsed.errors or parsed.headers.get("Variant", "Standard") != "Standard":
                    continue
                moves = [move.uci() for move in parsed.mainline_moves()]
                if len(moves) >= 10:
                    games.append({"moves": moves, "kind": "expert"})
        if not games:
            raise UserError(f"{path}: no standard chess games in this PGN")
    for i in range(random_games):
        rng = random.Random(derive_seed(seed, 3, i))
        game = ChessGame()
        moves = []
        while len(moves) < max_plies and game.outcome() is None:
            move = rng.choice(game.legal_moves())
            moves.append(game.move_to_str(move))
            game.push(move)
        games.append({"moves": moves, "kind": "random"})
    return games


def make_games(game: str, expert: int, random_games: int, seed: int, pgn: str | None = None) -> list[dict[str, Any]]:
    if game == "tictactoe":
        return tictactoe_games(expert, random_games, seed)
    return chess_games(expert, random_games, seed, pgn)


def split_by_game(n_games: int, seed: int, test_fraction: float = 0.3) -> tuple[set[int], set[int]]:
    """Train and test game indices: a seeded shuffle, `test_fraction` of the games held out."""
    order = list(range(n_games))
    random.Random(seed).shuffle(order)
    n_test = max(1, int(round(n_games * test_fraction)))
    return set(order[n_test:]), set(order[:n_test])
