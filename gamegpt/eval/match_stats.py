"""Head-to-head results of two players in the form cutechess-cli and fastchess print them.

    stats = match_stats(records, "new", "old")
    print(format_match(stats))
    # Score of new vs old: 31 - 17 - 52  [0.570] 100
    # Elo difference: 48.9 +/- 44.0, LOS: 98.6 %, DrawRatio: 46.0 %
    # Ptnml(0-2): [2, 8, 23, 11, 6], WL/DD: 6/17

Everything is from the first player's point of view: W-L-D are its wins, losses and draws. Games `2k` and
`2k + 1` of a tournament or match schedule are one pair: the same opening with colours swapped (see
`gamegpt.eval.tournament.make_schedule`). A pair's two results give the pentanomial counts LL, LD,
WL+DD, WD, WW (the pair scores 0, 1/2, 1, 3/2, 2 points); WL and DD are also kept apart.

The Elo line follows fastchess: with at least one complete pair the score and its variance are those of
pair scores (pentanomial; the colour-swapped pairs cancel much of the opening's bias, so the interval is
honest), else of single games (trinomial, as cutechess). Elo difference = -400 log10(1/s - 1) at the score
s, its +/- half the width of the 95 % interval s +/- 1.96 sd mapped the same way; LOS = Phi((s - 1/2) / sd),
the probability that the first player is the stronger; DrawRatio = draws / games (trinomial), or pairs
scoring 1 point of 2 (WL + DD) / pairs (pentanomial, as fastchess). A score of 0 or 1 has no finite Elo:
the line then says inf or -inf, and nan for a margin that leaves [0, 1], as cutechess does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Iterable

from gamegpt.arena.records import GameRecord

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054
WHITE_SCORES = {"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}


@dataclass
class Pentanomial:
    """Counts of game pairs by the first player's two results: LL, LD, WL, DD, WD, WW."""

    ll: int = 0
    ld: int = 0
    wl: int = 0
    dd: int = 0
    wd: int = 0
    ww: int = 0

    @property
    def pairs(self) -> int:
        return self.ll + self.ld + self.wl + self.dd + self.wd + self.ww

    def counts(self) -> list[int]:
        """[LL, LD, WL+DD, WD, WW]: pairs by their score 0, 1/2, 1, 3/2, 2 (fastchess's Ptnml(0-2))."""
        return [self.ll, self.ld, self.wl + self.dd, self.wd, self.ww]

    def add(self, first: float, second: float) -> None:
        """Count one pair from the first player's two game scores (each 0, 0.5 or 1)."""
        low, high = sorted((first, second))
        key = {(0.0, 0.0): "ll", (0.0, 0.5): "ld", (0.0, 1.0): "wl", (0.5, 0.5): "dd", (0.5, 1.0): "wd",
               (1.0, 1.0): "ww"}[(low, high)]
        setattr(self, key, getattr(self, key) + 1)


@dataclass
class MatchStats:
    """Player `first` against `second`: its wins, losses and draws over all their games, and the
    pentanomial counts of their complete colour-swapped pairs."""

    first: str
    second: str
    wins: int = 0
    losses: int = 0
    draws: int = 0
    pentanomial: Pentanomial = field(default_factory=Pentanomial)

    @property
    def games(self) -> int:
        return self.wins + self.losses + self.draws

    @property
    def points(self) -> float:
        return self.wins + 0.5 * self.draws

    def add_game(self, score: float) -> None:
        """Count one game by the first player's score (0, 0.5 or 1)."""
        if score == 1.0:
            self.wins += 1
        elif score == 0.0:
            self.losses += 1
        elif score == 0.5:
            self.draws += 1
        else:
            raise ValueError(f"a game's score must be 0, 0.5 or 1, got {score!r}")


@dataclass(frozen=True)
class EloEstimate:
    """The Elo difference of the first player over the second with its 95 % margin, LOS and draw ratio
    (fractions), the normalized Elo, and whether they come from pairs ("pentanomial") or games."""

    elo: float
    margin: float
    los: float
    draw_ratio: float
    nelo: float
    nelo_margin: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in asdict(self).items()}


def match_stats(records: Iterable[GameRecord], first: str, second: str) -> MatchStats:
    """`first`'s results against `second` in tournament or match records (records whose `extra["entrants"]`
    names the two; unfinished games are skipped). A pair counts when both its games (2k, 2k + 1) are there
    with colours swapped."""
    stats = MatchStats(first, second)
    by_pair: dict[int, dict[int, tuple[float, str]]] = {}  # pair → {0|1: (own score, white)}
    for record in records:
        entrants = record.extra.get("entrants")
        white_score = WHITE_SCORES.get(record.result)
        if white_score is None or not isinstance(entrants, list) or \
                sorted(map(str, entrants)) != sorted((first, second)):
            continue
        own = white_score if str(entrants[0]) == first else 1.0 - white_score
        stats.add_game(own)
        if isinstance(record.index, int):
            by_pair.setdefault(record.index // 2, {})[record.index % 2] = (own, str(entrants[0]))
    for games in by_pair.values():
        if len(games) == 2:
            (score_a, white_a), (score_b, white_b) = games[0], games[1]
            if white_a != white_b:
                stats.pentanomial.add(score_a, score_b)
    return stats


def score_to_elo(score: float) -> float:
    """The logistic Elo difference of an expected score: -400 log10(1/s - 1); +-inf at 1 and 0, nan outside."""
    if not 0.0 <= score <= 1.0 or math.isnan(score):
        return math.nan
    if score == 0.0:
        return -math.inf
    if score == 1.0:
        return math.inf
    return -400.0 * math.log10(1.0 / score - 1.0)


def estimate_elo(stats: MatchStats) -> EloEstimate | None:
    """The Elo line's numbers (see the module docstring); None with no game."""
    penta = stats.pentanomial
    if penta.pairs:
        values, counts, n = [0.0, 0.25, 0.5, 0.75, 1.0], penta.counts(), penta.pairs
        draw_ratio = (penta.wl + penta.dd) / n
        nelo_factor = math.sqrt(2.0)  # a pair's score varies half as much as a game's
    elif stats.games:
        values, counts, n = [0.0, 0.5, 1.0], [stats.losses, stats.draws, stats.wins], stats.games
        draw_ratio = stats.draws / n
        nelo_factor = 1.0
    else:
        return None
    score = sum(v * c for v, c in zip(values, counts)) / n
    variance = sum(c * (v - score) ** 2 for v, c in zip(values, counts)) / n
    sd = math.sqrt(variance / n)
    low, high = score - Z95 * sd, score + Z95 * sd
    elo = score_to_elo(score)
    margin = (score_to_elo(high) - score_to_elo(low)) / 2.0 if sd > 0 else (0.0 if math.isfinite(elo) else math.nan)
    if sd > 0:
        los = NormalDist().cdf((score - 0.5) / sd)
    else:
        los = 1.0 if score > 0.5 else 0.0 if score < 0.5 else 0.5
    scale = 800.0 / math.log(10.0)
    if variance > 0:
        nelo = (score - 0.5) / math.sqrt(nelo_factor ** 2 * variance) * scale
        nelo_margin = Z95 * sd / math.sqrt(nelo_factor ** 2 * variance) * scale
    else:
        nelo = math.copysign(math.inf, score - 0.5) if score != 0.5 else 0.0
        nelo_margin = math.nan
    return EloEstimate(elo, margin, los, draw_ratio, nelo, nelo_margin,
                       "pentanomial" if penta.pairs else "trinomial")


def _number(value: float) -> str:
    """One decimal (no "-0.0"), or inf/-inf/nan as cutechess prints them."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def format_match(stats: MatchStats) -> str:
    """The cutechess/fastchess lines: `Score of A vs B: W - L - D  [score] games`, `Elo difference: X +/- Y,
    LOS: Z %, DrawRatio: D %`, and with pairs `Ptnml(0-2): [LL, LD, WL+DD, WD, WW], WL/DD: a/b`."""
    share = stats.points / stats.games if stats.games else 0.0
    lines = [f"Score of {stats.first} vs {stats.second}: {stats.wins} - {stats.losses} - {stats.draws}  "
             f"[{share:.3f}] {stats.games}"]
    estimate = estimate_elo(stats)
    if estimate is not None:
        lines.append(f"Elo difference: {_number(estimate.elo)} +/- {_number(estimate.margin)}, "
                     f"LOS: {estimate.los * 100:.1f} %, DrawRatio: {estimate.draw_ratio * 100:.1f} %")
    penta = stats.pentanomial
    if penta.pairs:
        lines.append(f"Ptnml(0-2): [{', '.join(map(str, penta.counts()))}], WL/DD: {penta.wl}/{penta.dd}")
    return "\n".join(lines)


def stats_to_dict(stats: MatchStats) -> dict[str, Any]:
    """The counts and the Elo line's numbers, for JSON summaries."""
    estimate = estimate_elo(stats)
    return {"players": [stats.first, stats.second], "games": stats.games, "wins": stats.wins,
            "losses": stats.losses, "draws": stats.draws, "pairs": stats.pentanomial.pairs,
            "pentanomial": asdict(stats.pentanomial), "ptnml": stats.pentanomial.counts(),
            "elo": None if estimate is None else estimate.to_dict()}
