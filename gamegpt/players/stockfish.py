"""Stockfish at a chosen strength, as a chess player.

    stockfish:skill=3,nodes=1000      Skill Level 3, 1000 nodes a move
    stockfish:elo=1500,movetime=50    UCI_LimitStrength at 1500, 50 ms a move
    stockfish:skill=0-9,nodes=1000    a Skill Level drawn per game, uniformly from 0..9, from the game seed
    stockfish:nodes=1000,noise=0.05   any player takes noise= (a random legal move 5% of the time)

Strength options are those of Stockfish 15.1 (Debian's): Skill Level 0-20, UCI_Elo 1350-2850 (values
outside are rejected here: Stockfish would ignore them silently).

Reproducibility: at Skill Level 20 (the default) with a `nodes` or `depth` limit and `threads=1`, Stockfish
plays the same move in the same position after `ucinewgame`, so seeded games repeat exactly. Below Skill
Level 20 (or with `elo`), Stockfish picks among its best moves with its own random generator, seeded from
the clock: those games cannot be repeated from a seed (the drawn level of `skill=A-B` can: it comes from the
seed). `movetime` and clock limits, and `threads` > 1, make any level depend on machine speed and load.
"""

from __future__ import annotations

import random
from typing import Any

from gamegpt.errors import PlayerSpecError
from gamegpt.players.limits import SearchLimits
from gamegpt.players.uci import UciPlayer, find_stockfish

SKILL_MIN, SKILL_MAX = 0, 20
ELO_MIN, ELO_MAX = 1350, 2850  # Stockfish 15.1's UCI_Elo range


class StockfishPlayer(UciPlayer):
    """Stockfish as a player: one engine process per object, started at the first game and reused across
    games; `reset(seed)` sends `ucinewgame` (and sets the drawn Skill Level for a `skill` range).

    `skill` is a level 0-20 or a (low, high) range drawn uniformly per game from the game seed; `elo` plays
    at UCI_Elo (1350-2850) instead. `nodes`, `depth` and `movetime` (ms) limit each move; without any, the
    limit is `nodes=1000` (under a clock from a clocked arena: the clock alone). `threads` and `hash` (MB)
    are the engine's Threads and Hash. `path` is the executable (see `find_stockfish`). Raises
    PlayerSpecError for values out of range.

    Below Skill Level 20 (and with `elo`) Stockfish chooses among its best moves with its own clock-seeded
    random generator, which no seed reaches: such games are not reproducible (only the drawn level is).
    """

    name = "stockfish"

    def __init__(self, *, skill: int | tuple[int, int] | None = None, elo: int | None = None,
                 nodes: int | None = None, depth: int | None = None, movetime: int | None = None,
                 threads: int = 1, hash: int = 16, path: str | None = None,  # the UCI option's name
                 timeout: float | None = None) -> None:
        if skill is not None and elo is not None:
            raise PlayerSpecError("stockfish: give skill or elo, not both (elo overrides the Skill Level)")
        low, high = (skill, skill) if isinstance(skill, int) else (skill or (SKILL_MAX, SKILL_MAX))
        if not SKILL_MIN <= low <= high <= SKILL_MAX:
            raise PlayerSpecError(f"stockfish: skill must be in {SKILL_MIN}..{SKILL_MAX} "
                                  f"(a level or a range LOW-HIGH), got {_skill_text(skill)}")
        if elo is not None and not ELO_MIN <= elo <= ELO_MAX:
            raise PlayerSpecError(f"stockfish: elo must be in {ELO_MIN}..{ELO_MAX} (Stockfish 15.1's UCI_Elo "
                                  f"range; it silently ignores other values), got {elo}")
        for key, value in (("nodes", nodes), ("depth", depth), ("movetime", movetime), ("threads", threads),
                           ("hash", hash)):
            if value is not None and value < 1:
                raise PlayerSpecError(f"stockfish: {key} must be at least 1, got {value}")
        limits = SearchLimits(nodes=nodes, depth=depth, movetime=movetime)
        options: dict[str, Any] = {"Threads": threads, "Hash": hash}
        if elo is not None:
            options.update({"UCI_LimitStrength": True, "UCI_Elo": elo})
        else:
            options["Skill Level"] = low
        super().__init__([find_stockfish(path)], options=options,
                         limits=limits if limits.has_fixed_limit else None, timeout=timeout)
        self.skill_range = (low, high)
        self.skill: int | None = None if elo is not None else low
        self.elo = elo
        self.threads, self.hash = threads, hash

    def reset(self, seed: int) -> None:
        engine = self.start()
        if self.elo is None and self.skill_range[0] != self.skill_range[1]:
            self.skill = random.Random(seed ^ 0x5C111).randint(*self.skill_range)
            engine.set_option("Skill Level", self.skill)
        super().reset(seed)

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = {"name": self.name}
        if self.elo is not None:
            description["elo"] = self.elo
        else:
            description["skill"] = self.skill
            if self.skill_range[0] != self.skill_range[1]:
                description["skill_range"] = list(self.skill_range)
        description.update(self.active_limits().to_dict())
        description.update({"threads": self.threads, "hash": self.hash})
        if self.engine is not None and self.engine.id_name:
            description["engine"] = self.engine.id_name
        return description


def _skill_text(skill: int | tuple[int, int] | None) -> str:
    return f"{skill[0]}-{skill[1]}" if isinstance(skill, tuple) else str(skill)


def parse_skill(text: str) -> int | tuple[int, int]:
    """`7` → 7; `0-9` → (0, 9). ValueError otherwise (range checks are the player's)."""
    low, sep, high = text.partition("-")
    if sep:
        return int(low), int(high)
    return int(text)
