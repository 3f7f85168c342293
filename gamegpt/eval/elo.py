"""Maximum-likelihood Elo ratings over all games at once, anchored to one player, with honest intervals.

The model (Ordo's; a Bradley–Terry model on the Elo scale): a player rated D points above its opponent
expects the score `1 / (1 + 10 ** (-D / 400))` per game, and a draw counts as half a win and half a loss.
All ratings are fitted jointly by maximizing the likelihood of every game (damped Newton iterations with
numpy), with one player, the anchor, held at a fixed rating. The first-move advantage is not modelled:
tournaments here play every opening with both colours, so it cancels.

Intervals are profile-likelihood intervals: a player's interval holds the ratings at which the likelihood,
maximized over everybody else's ratings, is within `chi2_1(confidence) / 2` of its maximum (1.92 for
95 %). They describe the rating relative to the anchor, whose rating is exact by definition. Draws as
half points make the intervals somewhat conservative (too wide) when draws are common.

Players without a finite estimate. When a group of players never took a point from the group containing
the anchor (a player who scored 0, say), the likelihood keeps growing as the group's rating goes to
minus infinity: there is no maximum-likelihood rating. Such a player is reported with its estimate left
out and only the finite end of its profile-likelihood interval: an upper bound (`<= U`) for players below
the anchor's group, a lower bound (`>= L`) above it, flagged as a bound in the table, the JSON and the
plot. The test for this is exact (the anchor's strongly connected component in the graph of "took points
from"). A player with no chain of games to the anchor at all is left unrated, with a note saying so.

Numerics: a ridge of `RIDGE` (1e-8 per squared natural rating unit) keeps the optimizer finite when a
group drifts to infinity; it moves finite ratings by far less than 0.01 Elo.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, Iterable, Sequence

import numpy as np

from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.errors import UserError

ELO_SCALE = 400.0 / math.log(10.0)  # Elo points per natural logistic unit (about 173.7)
RIDGE = 1e-8
SEARCH_LIMIT = 6000.0  # Elo from the anchor: interval ends beyond it are reported as missing
METHOD = ("maximum likelihood (logistic Elo model, draws as half points), fitted jointly; "
          "profile-likelihood intervals; one-sided bounds for players with no finite estimate")

Game = tuple[str, str, float]
"""One game for the fit: (player, opponent, player's score: 1, 0.5 or 0)."""


def expected_score(difference: float) -> float:
    """The score a player rated `difference` Elo above its opponent expects per game."""
    return 1.0 / (1.0 + 10.0 ** (-difference / 400.0))


@dataclass(frozen=True)
class PlayerRating:
    """One player's rating. `kind` says how to read it:

    - "anchor": `rating` is the fixed anchor rating (no interval);
    - "estimate": `rating` is the maximum-likelihood estimate, `lower`..`upper` its interval;
    - "upper_bound" / "lower_bound": no finite estimate (`rating` is None); only `upper` (resp. `lower`)
      is known, the other end is unbounded;
    - "undetermined": connected to the anchor, but the games bound its rating on neither side;
    - "unconnected": no chain of games to the anchor; not rated.

    `lower`/`upper` may be None for an estimate too, when an end lies beyond `SEARCH_LIMIT` from the anchor.
    """

    name: str
    kind: str
    rating: float | None
    lower: float | None
    upper: float | None
    games: int
    score: float
    note: str = ""

    @property
    def is_bound(self) -> bool:
        return self.kind in ("upper_bound", "lower_bound")

    def rating_text(self) -> str:
        """The rating as the table shows it: `1412`, `<= 650`, `>= 2100`, or `-`."""
        if self.kind == "upper_bound" and self.upper is not None:
            return f"<= {self.upper:.0f}"
        if self.kind == "lower_bound" and self.lower is not None:
            return f">= {self.lower:.0f}"
        return "-" if self.rating is None else f"{self.rating:.0f}"

    def interval_text(self) -> str:
        if self.kind == "anchor":
            return "(anchor)"
        if self.kind == "estimate":
            low = "?" if self.lower is None else f"{self.lower:.0f}"
            high = "?" if self.upper is None else f"{self.upper:.0f}"
            return f"[{low}, {high}]"
        if self.is_bound:
            return "bound"
        return ""


@dataclass
class EloFit:
    """The fitted ratings, best first: players with only a lower bound, the anchor's group by rating,
    players with only an upper bound, then those without a rating."""

    ratings: list[PlayerRating]
    anchor: str
    anchor_rating: float
    confidence: float
    games: int
    method: str = METHOD
    notes: list[str] = field(default_factory=list)

    def rating_of(self, name: str) -> PlayerRating:
        """The entry of player `name`; KeyError if it is not in the fit."""
        for rating in self.ratings:
            if rating.name == name:
                return rating
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "anchor": self.anchor, "anchor_rating": self.anchor_rating,
                "confidence": self.confidence, "games": self.games, "notes": list(self.notes),
                "players": [asdict(r) for r in self.ratings]}

    def table(self) -> str:
        """The ratings as a text table, with the method, the anchor and any notes."""
        width = max([len(r.name) for r in self.ratings] + [6])
        percent = f"{self.confidence * 100:g}%"
        header = (f"{'rank':>4}  {'player':<{width}}  {'Elo':>8}  {percent + ' interval':<14}  {'games':>5}  "
                  f"{'score':>6}  note")
        lines = [f"Elo: {self.method}",
                 f"anchor: {self.anchor} = {self.anchor_rating:g}; {percent} intervals; {self.games} games", header]
        for rank, rating in enumerate(self.ratings, start=1):
            share = f"{100 * rating.score / rating.games:.1f}%" if rating.games else "-"
            lines.append(f"{rank:>4}  {rating.name:<{width}}  {rating.rating_text():>8}  "
                         f"{rating.interval_text():<14}  {rating.games:>5}  {share:>6}  {rating.note}".rstrip())
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def fit_elo(games: Iterable[Game], *, anchor: str, anchor_rating: float = 1350.0, confidence: float = 0.95,
            players: Sequence[str] | None = None) -> EloFit:
    """Fit Elo ratings to `games` (see the module docstring), with `anchor` held at `anchor_rating`.

    `players` lists players to report even if they played no game (default: those in `games`). Raises
    UserError when the anchor is unknown or played no game, and ValueError for a score other than 0, 0.5
    or 1, a player playing itself, or a confidence outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])  # (a, b) a<b: games, a's score
    names: dict[str, None] = dict.fromkeys(players or ())
    total_games = 0
    for first, second, score in games:
        if score not in (0, 0.5, 1):
            raise ValueError(f"a game's score must be 0, 0.5 or 1, got {score!r}")
        if first == second:
            raise ValueError(f"player {first!r} cannot play itself")
        names.setdefault(first)
        names.setdefault(second)
        key, own = ((first, second), score) if first < second else ((second, first), 1.0 - score)
        counts[key][0] += 1
        counts[key][1] += own
        total_games += 1
    if anchor not in names:
        raise UserError(f"anchor {anchor!r} is not a player here (players: {', '.join(names) or 'none'})")
    order = list(names)
    index = {name: i for i, name in enumerate(order)}
    pairs = [(index[a], index[b], n, s) for (a, b), (n, s) in counts.items()]
    games_of = np.zeros(len(order))
    score_of = np.zeros(len(order))
    for i, j, n, s in pairs:
        games_of[i] += n
        games_of[j] += n
        score_of[i] += s
        score_of[j] += n - s
    if games_of[index[anchor]] == 0:
        raise UserError(f"anchor {anchor!r} played no games: nothing to rate against")

    connected = _reachable(len(order), [(i, j) for i, j, _, _ in pairs] + [(j, i) for i, j, _, _ in pairs],
                           index[anchor])
    rated = [i for i in range(len(order)) if connected[i]]
    local = {player: k for k, player in enumerate(rated)}
    problem = _Problem(len(rated), local[index[anchor]],
                       [(local[i], local[j], n, s) for i, j, n, s in pairs if i in local and j in local])
    theta, best = problem.maximize(np.zeros(len(rated)), fixed={problem.anchor: 0.0})
    in_anchor_group = problem.group(problem.anchor)
    critical = NormalDist().inv_cdf(0.5 + confidence / 2) ** 2 / 2  # chi2_1 quantile / 2

    ratings: list[PlayerRating] = []
    notes: list[str] = []
    for player, k in local.items():
        name = order[player]
        n, s = int(games_of[player]), float(score_of[player])
        if k == problem.anchor:
            ratings.append(PlayerRating(name, "anchor", anchor_rating, anchor_rating, anchor_rating, n, s))
            continue
        low, high = problem.profile_interval(k, theta, best, critical)
        low_elo = None if low is None else anchor_rating + low * ELO_SCALE
        high_elo = None if high is None else anchor_rating + high * ELO_SCALE
        if in_anchor_group[k]:
            ratings.append(PlayerRating(name, "estimate", anchor_rating + theta[k] * ELO_SCALE, low_elo, high_elo,
                                        n, s))
        elif (high is None) != (low is None):
            side = "upper" if low is None else "lower"
            mates = [order[rated[m]] for m, inside in enumerate(problem.group(k)) if inside and m != k]
            ratings.append(PlayerRating(name, f"{side}_bound", None, low_elo, high_elo, n, s,
                                        _bound_note(n, s, side, mates)))
        else:
            ratings.append(PlayerRating(name, "undetermined", None, low_elo, high_elo, n, s,
                                        "no finite estimate and no bound from these games"))
    unconnected = [order[i] for i in range(len(order)) if not connected[i]]
    for name in unconnected:
        i = index[name]
        ratings.append(PlayerRating(name, "unconnected", None, None, None, int(games_of[i]), float(score_of[i]),
                                    "not rated: no chain of games to the anchor"))
    if unconnected:
        notes.append(f"not rated, no chain of games links them to the anchor {anchor}: {', '.join(unconnected)}")
    if any(r.is_bound for r in ratings):
        notes.append("'<= U' / '>= L': no finite maximum-likelihood rating (the player, or its group, never took "
                     "a point from the players above it, or never lost one to those below); the number is the "
                     f"finite end of its {confidence * 100:g}% profile-likelihood interval")
    ratings.sort(key=_sort_key, reverse=True)
    return EloFit(ratings, anchor, float(anchor_rating), confidence, total_games, notes=notes)


def _bound_note(games: int, score: float, side: str, group: Sequence[str]) -> str:
    """Why a player has only a bound: its own score, or its group's (players linked by taking points from
    each other) against the players rated on the other side."""
    if side == "upper" and score == 0:
        return f"bound: scored 0 of {games}"
    if side == "lower" and score == games:
        return f"bound: scored {score:g} of {games}"
    who = f"with {', '.join(group)}, it" if group else "it"
    return f"bound: {who} took no point from those above" if side == "upper" else \
        f"bound: {who} lost no point to those below"


def _sort_key(rating: PlayerRating) -> tuple[int, float]:
    """Best first: players bounded from below (their group lost no point to the anchor's), the anchor's
    group by rating, players bounded from above, then the undetermined and the unrated."""
    if rating.kind == "lower_bound" and rating.lower is not None:
        return (4, rating.lower)
    if rating.rating is not None:
        return (3, rating.rating)
    if rating.kind == "upper_bound" and rating.upper is not None:
        return (2, rating.upper)
    return (1, 0.0) if rating.kind == "undetermined" else (0, 0.0)


def _reachable(n: int, edges: Sequence[tuple[int, int]], start: int) -> list[bool]:
    """Which nodes a walk along `edges` (from, to) reaches from `start`."""
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        neighbours[a].append(b)
    seen = [False] * n
    seen[start] = True
    stack = [start]
    while stack:
        for b in neighbours[stack.pop()]:
            if not seen[b]:
                seen[b] = True
                stack.append(b)
    return seen


class _Problem:
    """The log-likelihood over pair totals, in natural units (Elo / ELO_SCALE), minus a tiny ridge."""

    def __init__(self, n: int, anchor: int, pairs: Sequence[tuple[int, int, float, float]]) -> None:
        self.n, self.anchor = n, anchor
        self.i = np.array([p[0] for p in pairs], dtype=int)
        self.j = np.array([p[1] for p in pairs], dtype=int)
        self.games = np.array([p[2] for p in pairs], dtype=float)
        self.score = np.array([p[3] for p in pairs], dtype=float)  # i's score against j

    def value(self, theta: np.ndarray) -> float:
        d = theta[self.i] - theta[self.j]
        loglik = -(self.score * np.logaddexp(0.0, -d) + (self.games - self.score) * np.logaddexp(0.0, d)).sum()
        return float(loglik - RIDGE / 2 * float(theta @ theta))

    def gradient_hessian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = theta[self.i] - theta[self.j]
        p = 0.5 * (1.0 + np.tanh(d / 2))  # the logistic function, without overflow
        residual = self.score - self.games * p
        gradient = np.bincount(self.i, residual, self.n) - np.bincount(self.j, residual, self.n) - RIDGE * theta
        w = self.games * p * (1.0 - p)
        hessian = np.zeros((self.n, self.n))
        np.add.at(hessian, (self.i, self.j), w)
        np.add.at(hessian, (self.j, self.i), w)
        hessian[np.diag_indices(self.n)] -= np.bincount(self.i, w, self.n) + np.bincount(self.j, w, self.n) + RIDGE
        return gradient, hessian

    def maximize(self, start: np.ndarray, fixed: dict[int, float]) -> tuple[np.ndarray, float]:
        """Damped Newton ascent over the ratings not in `fixed` (index → value). The objective is strictly
        concave (the ridge), so this converges; 500 iterations bound it."""
        theta = start.astype(float).copy()
        for k, v in fixed.items():
            theta[k] = v
        free = np.array([k for k in range(self.n) if k not in fixed], dtype=int)
        value = self.value(theta)
        if free.size == 0:
            return theta, value
        for _ in range(500):
            gradient, hessian = self.gradient_hessian(theta)
            g = gradient[free]
            step = np.linalg.solve(-hessian[np.ix_(free, free)], g)
            decrement = float(g @ step)
            if decrement < 1e-12:
                break
            t = 1.0
            while True:
                trial = theta.copy()
                trial[free] += t * step
                trial_value = self.value(trial)
                if trial_value >= value + 1e-4 * t * decrement or t < 1e-10:
                    break
                t /= 2
            if trial_value < value:  # no progress possible at float precision
                break
            theta, value = trial, trial_value
        return theta, value

    def group(self, k: int) -> list[bool]:
        """Players in k's strongly connected component of the graph "took a point from". The anchor's group
        is exactly the players with a finite maximum-likelihood rating."""
        took = [(j, i) for i, j, s in zip(self.i, self.j, self.score) if s > 0]  # i took points from j
        took += [(i, j) for i, j, n, s in zip(self.i, self.j, self.games, self.score) if n - s > 0]
        forward = _reachable(self.n, took, k)
        backward = _reachable(self.n, [(b, a) for a, b in took], k)
        return [f and b for f, b in zip(forward, backward)]

    def profile_interval(self, k: int, theta: np.ndarray, best: float,
                         critical: float) -> tuple[float | None, float | None]:
        """The ends (natural units, anchor = 0) of player k's profile-likelihood interval; None where the
        profile does not drop by `critical` within SEARCH_LIMIT."""
        limit = SEARCH_LIMIT / ELO_SCALE
        ends: list[float | None] = []
        for direction in (-1.0, 1.0):
            start = float(np.clip(theta[k], -limit, limit))
            warm = theta.copy()

            def drop(x: float) -> float:
                nonlocal warm
                warm, value = self.maximize(warm, fixed={self.anchor: 0.0, k: x})
                return best - value

            inside, step, outside = start, 0.25, None
            for _ in range(40):  # step out by doubling until the likelihood has dropped enough
                x = float(np.clip(start + direction * step, -limit, limit))
                if drop(x) >= critical:
                    outside = x
                    break
                inside = x
                if abs(x) >= limit:
                    break
                step *= 2
            if outside is None:
                ends.append(None)
                continue
            for _ in range(60):  # bisection to ~1e-4 Elo
                if abs(outside - inside) * ELO_SCALE < 1e-3:
                    break
                middle = (inside + outside) / 2
                if drop(middle) >= critical:
                    outside = middle
                else:
                    inside = middle
            ends.append((inside + outside) / 2)
        return ends[0], ends[1]


def write_elo(fit: EloFit, out_dir: str | Path, *, stem: str = "ratings", title: str | None = None) -> list[Path]:
    """Write `<stem>.txt` (the table), `<stem>.json` and `<stem>.png` into `out_dir`, atomically; returns
    the paths."""
    out = Path(out_dir)
    text_path, json_path, png_path = out / f"{stem}.txt", out / f"{stem}.json", out / f"{stem}.png"
    write_text_atomic(text_path, fit.table() + "\n")
    write_json_atomic(json_path, fit.to_dict())
    plot_elo(fit, png_path, title=title)
    return [text_path, json_path, png_path]


def plot_elo(fit: EloFit, path: str | Path, *, title: str | None = None) -> Path:
    """Ratings as points with interval bars, best at the top; bounds as open-ended arrows, the anchor as a
    diamond. Unrated players are left out."""
    from gamegpt.eval.plots import pyplot, save_figure

    plt = pyplot()
    shown = [r for r in fit.ratings if r.kind in ("anchor", "estimate", "upper_bound", "lower_bound")]
    known = [v for r in shown for v in (r.rating, r.lower, r.upper) if v is not None]
    low = min(known, default=fit.anchor_rating) - 150
    high = max(known, default=fit.anchor_rating) + 150
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.45 * max(len(shown), 1)))
    for row, rating in enumerate(reversed(shown)):
        if rating.kind == "anchor":
            ax.plot([rating.rating], [row], marker="D", color="black", markersize=8, linestyle="none")
        elif rating.kind == "estimate":
            left = rating.lower if rating.lower is not None else low
            right = rating.upper if rating.upper is not None else high
            ax.plot([left, right], [row, row], color="tab:blue", linewidth=2)
            ax.plot([rating.rating], [row], marker="o", color="tab:blue", markersize=7, linestyle="none")
        elif rating.kind == "upper_bound" and rating.upper is not None:
            ax.annotate("", xy=(low, row), xytext=(rating.upper, row),
                        arrowprops={"arrowstyle": "->", "color": "tab:red", "linestyle": "--"})
            ax.plot([rating.upper], [row], marker="|", color="tab:red", markersize=14, linestyle="none")
        elif rating.kind == "lower_bound" and rating.lower is not None:
            ax.annotate("", xy=(high, row), xytext=(rating.lower, row),
                        arrowprops={"arrowstyle": "->", "color": "tab:red", "linestyle": "--"})
            ax.plot([rating.lower], [row], marker="|", color="tab:red", markersize=14, linestyle="none")
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([f"{r.name}  ({r.rating_text()})" for r in reversed(shown)], fontsize=8)
    ax.set_xlim(low, high)
    ax.set_xlabel(f"Elo (anchor {fit.anchor} = {fit.anchor_rating:g}, diamond)\nbars: {fit.confidence * 100:g}% "
                  "profile-likelihood intervals; red arrows: bounds only (no finite estimate)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or f"Elo from {fit.games} games")
    return save_figure(fig, path)
