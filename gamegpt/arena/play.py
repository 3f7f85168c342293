"""The arena: plays games between players and turns each finished game into a `GameRecord`."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from gamegpt.errors import EngineError, UserError
from gamegpt.games.base import Game, InvalidMove
from gamegpt.players.base import Player
from gamegpt.players.limits import SearchLimits
from gamegpt.arena.records import GameRecord


@dataclass(frozen=True)
class TimeControl:
    """A clock per side: `base_ms` at the start, `increment_ms` added after each of the side's moves.
    Written (`str`) and parsed as PGN's TimeControl tag writes it, in seconds: `60+0.6`, `10`."""

    base_ms: int
    increment_ms: int = 0

    def __post_init__(self) -> None:
        if self.base_ms <= 0 or self.increment_ms < 0:
            raise ValueError(f"a time control needs base > 0 and increment >= 0, got {self.base_ms} ms + "
                             f"{self.increment_ms} ms")

    @classmethod
    def parse(cls, text: str) -> "TimeControl":
        """`BASE[+INC]` in seconds (`60+0.6`, `5+0.05`, `10`); ValueError when malformed."""
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:\+\s*(\d+(?:\.\d*)?|\.\d+)\s*)?", text)
        if not match:
            raise ValueError(f"bad time control {text!r}: expected BASE+INC in seconds, e.g. 60+0.6")
        return cls(round(float(match.group(1)) * 1000), round(float(match.group(2) or 0) * 1000))

    @classmethod
    def from_option(cls, text: str | None) -> "TimeControl | None":
        """The `--tc` option: None when not given; UserError (naming `--tc`) when malformed."""
        if not text:
            return None
        try:
            return cls.parse(text)
        except ValueError as exc:
            raise UserError(f"--tc: {exc}") from None

    def __str__(self) -> str:
        base = f"{self.base_ms / 1000:g}"
        return f"{base}+{self.increment_ms / 1000:g}" if self.increment_ms else base


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
    time_control: TimeControl | None = None,
    engine_failure_loses: bool = False,
) -> GameRecord:
    """Play one game from `game`'s position to the end and return its record.

    `players[0]` moves for side 0 (the side that moves first from the start position). Moves already on
    `game` (an opening) are kept in the record and count toward `max_plies`. An illegal move or an
    `InvalidMove` loses the game on the spot (termination "illegal_move", with the offending text in
    `extra["illegal"]`). A game still running after `max_plies` plies is adjudicated a draw (termination
    "max_plies"). With `engine_failure_loses` (tournaments, as cutechess scores it), a player whose engine
    fails while it chooses (`EngineError`: the process died, hung past its timeout or broke the protocol)
    loses on the spot (termination "engine_failure", the error in `extra["engine_failure"]`; a UCI player
    starts a fresh engine for its next game); without it (self-play, whose records are training data) the
    error propagates and no record is made.

    With a `time_control`, each side has a clock: the wall time of each `choose` call (as measured here)
    is taken off it, and the increment added after each move; each player sees its clock through
    `set_clock` right before `choose`. A side whose clock runs out loses (termination "time_forfeit"),
    unless its opponent could not win by any series of moves (`Game.can_win`): then the game is a draw.
    `extra["clock"]` keeps the time control, the final clocks and each move's time (ms).
    """
    for side, player in enumerate(players):
        player.reset(derive_seed(seed, side))
    start = game.start
    moves: list[str] = [game.move_to_str(move) for move in game.history]
    extra: dict[str, Any] = {}
    clocks = None if time_control is None else [float(time_control.base_ms)] * 2
    move_ms: list[int] = []
    while True:
        outcome = game.outcome()
        if outcome is not None:
            result, termination = outcome.result, outcome.termination
            break
        if max_plies is not None and len(moves) >= max_plies:
            result, termination = "1/2-1/2", "max_plies"
            break
        side = game.to_move
        if clocks is not None and time_control is not None:
            increment = time_control.increment_ms
            players[side].set_clock(SearchLimits(time_ms=max(1, int(clocks[side])), increment_ms=increment,
                                                 opponent_time_ms=max(1, int(clocks[1 - side])),
                                                 opponent_increment_ms=increment))
        started = time.monotonic()
        try:
            move = players[side].choose(game)
        except EngineError as exc:
            if not engine_failure_loses:
                raise
            extra["engine_failure"] = {"side": side, "ply": len(moves), "error": str(exc)}
            result, termination = _loss_of(side), "engine_failure"
            break
        if clocks is not None and time_control is not None:
            used = (time.monotonic() - started) * 1000
            move_ms.append(round(used))
            clocks[side] -= used
            if clocks[side] < 0:
                can_win = game.can_win(1 - side)
                extra["time_forfeit"] = {"side": side, "ply": len(moves), "over_ms": round(-clocks[side]),
                                         "opponent_can_win": can_win}
                result = _loss_of(side) if can_win else "1/2-1/2"
                termination = "time_forfeit"
                break
            clocks[side] += time_control.increment_ms
        if isinstance(move, InvalidMove) or not game.is_legal(move):
            text = move.text if isinstance(move, InvalidMove) else str(move)
            extra["illegal"] = {"side": side, "ply": len(moves), "text": text}
            result, termination = _loss_of(side), "illegal_move"
            break
        moves.append(game.move_to_str(move))
        game.push(move)
    if clocks is not None:
        extra["clock"] = {"time_control": str(time_control), "remaining_ms": [round(c) for c in clocks],
                          "move_ms": move_ms}
    return GameRecord(
        game=game.name, moves=moves, players=[p.describe() for p in players], result=result,
        termination=termination, seed=seed, index=index, start=start, extra=extra,
    )


def _loss_of(side: int) -> str:
    """The result when `side` (0: the side that moved first) loses."""
    return "0-1" if side == 0 else "1-0"


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
