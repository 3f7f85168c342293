"""Search limits: what bounds one move's search, in one type for the whole package.

A clocked arena gives a player its clock, a tournament gives engines a node or time limit, the UCI engine
reads `go`, the Lichess bot reads Lichess's clock: all of them are a `SearchLimits`. Times are in
milliseconds and in the mover's terms (its own clock and its opponent's), which is what a player needs;
UCI's `go` speaks of White and Black, so `from_go` and `go_words` translate with the side to move.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from gamegpt.errors import UserError

_NUMBERS = ("nodes", "depth", "movetime", "movestogo", "mate")
"""Limits that are counts: at least 1 when given."""
_TIMES = ("time_ms", "increment_ms", "opponent_time_ms", "opponent_increment_ms")
"""Clock readings: at least 0 when given."""
_FIXED = ("nodes", "depth", "movetime")
"""Limits an engine can search to without a clock."""


@dataclass(frozen=True)
class SearchLimits:
    """The limits of one move's search. `nodes`, `depth`, `mate` bound an engine's search; `movetime` is ms
    a move; `time_ms`/`increment_ms` are the mover's clock and increment, `opponent_*` its opponent's;
    `movestogo` the moves to the next time control; `infinite`/`ponder` hold the answer until told;
    `searchmoves` restricts the moves (UCI text). Raises UserError for a count below 1 or a negative time."""

    nodes: int | None = None
    depth: int | None = None
    movetime: int | None = None
    time_ms: int | None = None
    increment_ms: int = 0
    opponent_time_ms: int | None = None
    opponent_increment_ms: int = 0
    movestogo: int | None = None
    mate: int | None = None
    infinite: bool = False
    ponder: bool = False
    searchmoves: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in _NUMBERS:
            value = getattr(self, key)
            if value is not None and value < 1:
                raise UserError(f"{key} must be at least 1, got {value}")
        for key in _TIMES:
            value = getattr(self, key)
            if value is not None and value < 0:
                raise UserError(f"{key} must be at least 0, got {value}")

    @property
    def fixed(self) -> "SearchLimits":
        """Only the limits that need no clock (nodes, depth, movetime)."""
        return SearchLimits(nodes=self.nodes, depth=self.depth, movetime=self.movetime)

    @property
    def has_fixed_limit(self) -> bool:
        return any(getattr(self, key) is not None for key in _FIXED)

    def with_clock(self, clock: "SearchLimits") -> "SearchLimits":
        """These limits with the clock readings of `clock` (its times, increments and movestogo)."""
        return dataclasses.replace(self, time_ms=clock.time_ms, increment_ms=clock.increment_ms,
                                   opponent_time_ms=clock.opponent_time_ms,
                                   opponent_increment_ms=clock.opponent_increment_ms, movestogo=clock.movestogo)

    def to_dict(self) -> dict[str, Any]:
        """The limits that are set (for descriptions in game records)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default}

    # --- UCI's `go` ---------------------------------------------------------------------------------

    @classmethod
    def from_go(cls, words: Sequence[str], *, white_to_move: bool) -> "SearchLimits":
        """The limits of a `go` command's words (after `go`), for the side to move. Lenient, as an engine
        must be: unknown words and unreadable or out-of-range numbers are skipped."""
        own, other = ("w", "b") if white_to_move else ("b", "w")
        names = {f"{own}time": "time_ms", f"{other}time": "opponent_time_ms", f"{own}inc": "increment_ms",
                 f"{other}inc": "opponent_increment_ms", **{key: key for key in ("movetime", "movestogo", *_NUMBERS)}}
        values: dict[str, Any] = {}
        searchmoves: list[str] = []
        i = 0
        while i < len(words):
            word = words[i]
            if word in names and i + 1 < len(words):
                try:
                    number = max(0, int(float(words[i + 1])))
                    cls(**{names[word]: number})  # the range check of that field alone
                    values[names[word]] = number
                except (ValueError, UserError):
                    pass
                i += 2
                continue
            if word in ("infinite", "ponder"):
                values[word] = True
            elif word == "searchmoves":
                while i + 1 < len(words) and words[i + 1] not in names and words[i + 1] not in ("infinite", "ponder"):
                    searchmoves.append(words[i + 1])
                    i += 1
            i += 1
        return cls(**values, searchmoves=tuple(searchmoves))

    def go_words(self, *, white_to_move: bool) -> list[str]:
        """The words of the `go` command for these limits (without `go`), for the side to move."""
        own, other = ("w", "b") if white_to_move else ("b", "w")
        pairs: list[tuple[str, int | None]] = [("nodes", self.nodes), ("depth", self.depth),
                                                ("movetime", self.movetime), ("mate", self.mate)]
        if self.time_ms is not None or self.opponent_time_ms is not None:
            pairs += [(f"{own}time", self.time_ms), (f"{other}time", self.opponent_time_ms),
                      (f"{own}inc", self.increment_ms), (f"{other}inc", self.opponent_increment_ms)]
            pairs.sort(key=lambda pair: ["wtime", "btime", "winc", "binc"].index(pair[0])
                       if pair[0][1:] in ("time", "inc") else -1)
        pairs.append(("movestogo", self.movestogo))
        words = [word for key, value in pairs if value is not None for word in (key, str(int(value)))]
        words += ["infinite"] if self.infinite else []
        words += ["ponder"] if self.ponder else []
        return words + (["searchmoves", *self.searchmoves] if self.searchmoves else [])
