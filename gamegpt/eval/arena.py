"""The arena: plays games between players and turns each finished game into a `GameRecord`."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np

from gamegpt.games.base import Game, InvalidMove
from gamegpt.players.base import Player
from gamegpt.records import GameRecord


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (base seed, game index, side...); stable across runs and platforms."""
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys]).generate_state(2, np.uint32)
               .astype(np.uint64).dot(np.array([1 << 31, 1], dtype=np.uint64)))


def play_game(
    game: Game[Any],
    players: Sequence[Player],
    *,
    seed: int,
    index: int | None = None,
    max_plies: int | None = None,
) -> GameRecord:
    """Play one game from `game`'s position to the end and return its record.

    `players[0]` moves for side 0 (the side that moves first). An illegal move or an `InvalidMove` loses
    the game on the spot (termination "illegal_move", with the offending text in `extra["illegal"]`).
    A game still running after `max_plies` plies is adjudicated a draw (termination "max_plies").
    """
    for side, player in enumerate(players):
        player.reset(derive_seed(seed, side))
    start = game.start
    moves: list[str] = []
    extra: dict[str, Any] = {}
    while True:
        outcome = game.outcome()
        if outcome is not None:
            result, termination = outcome.result, outcome.termination
            break
        if max_plies is not None and len(moves) >= max_plies:
            result, termination = "1/2-1/2", "max_plies"
            break
        side = game.to_move
        move = players[side].choose(game)
        if isinstance(move, InvalidMove) or not game.is_legal(move):
            text = move.text if isinstance(move, InvalidMove) else str(move)
            extra["illegal"] = {"side": side, "ply": len(moves), "text": text}
            result, termination = ("0-1" if side == 0 else "1-0"), "illegal_move"
            break
        moves.append(game.move_to_str(move))
        game.push(move)
    return GameRecord(
        game=game.name, moves=moves, players=[p.describe() for p in players], result=result,
        termination=termination, seed=seed, index=index, start=start, extra=extra,
    )


def play_games(
    new_game: Callable[[], Game[Any]],
    players: Sequence[Player],
    *,
    n_games: int,
    seed: int,
    first_index: int = 0,
    max_plies: int | None = None,
) -> Iterator[GameRecord]:
    """Games number `first_index` .. `n_games - 1`, each seeded by (seed, index) so that any game can be
    replayed alone and an interrupted run continues with exactly the games it had not played."""
    for index in range(first_index, n_games):
        yield play_game(new_game(), players, seed=derive_seed(seed, index), index=index, max_plies=max_plies)
