"""The Player protocol: anything that picks a move for a game history."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any

from gamegpt.games.base import Game
from gamegpt.players.limits import SearchLimits


class Player(ABC):
    """Picks moves. An arena calls `reset(seed)` before each game, then `choose` on each of its turns.

    `choose` returns a legal move of `game`, or an `InvalidMove` (only players that can err, like a
    model sampled without a legality mask, do that). It must not change `game`.
    """

    name: str = "player"

    def reset(self, seed: int) -> None:
        """Start a new game; all randomness of the player for that game derives from `seed`."""

    @abstractmethod
    def choose(self, game: Game[Any]) -> Any:
        """The move to play in `game`."""

    def set_clock(self, clock: SearchLimits) -> None:
        """Called by a clocked arena right before each `choose` with the clocks (`time_ms`, `increment_ms`
        and the opponent's); `reset` forgets them. Players that manage their time (UCI engines) use it; by
        default it is ignored (the arena still enforces it)."""

    def close(self) -> None:
        """Release processes or files the player holds."""

    def describe(self) -> dict[str, Any]:
        """A JSON description for game records (at least the name)."""
        return {"name": self.name}


class RandomPlayer(Player):
    """Plays a uniformly random legal move."""

    name = "random"

    def __init__(self) -> None:
        self.rng = random.Random(0)

    def reset(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choose(self, game: Game[Any]) -> Any:
        return self.rng.choice(game.legal_moves())


class Noisy(Player):
    """With probability `noise` a uniformly random legal move, else the wrapped player's own move.

    The wrapped player is asked only when its move is used, so its own randomness is not consumed
    by noise moves.
    """

    def __init__(self, player: Player, noise: float) -> None:
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.player = player
        self.noise = noise
        self.rng = random.Random(0)
        self.name = f"{player.name}@noise={noise:g}"

    def reset(self, seed: int) -> None:
        self.rng = random.Random(seed ^ 0x5EED)
        self.player.reset(seed)

    def choose(self, game: Game[Any]) -> Any:
        if self.noise > 0 and self.rng.random() < self.noise:
            return self.rng.choice(game.legal_moves())
        return self.player.choose(game)

    def set_clock(self, clock: SearchLimits) -> None:
        self.player.set_clock(clock)

    def close(self) -> None:
        self.player.close()

    def describe(self) -> dict[str, Any]:
        return {**self.player.describe(), "name": self.name, "noise": self.noise}
