"""The sequential probability ratio test (SPRT) of engine testing, with the models fastchess uses.

    from gamegpt.eval.sprt import SprtSettings
    sprt = SprtSettings.parse("elo0=0,elo1=10,alpha=0.05,beta=0.05")   # model=normalized by default
    llr = sprt.llr_pentanomial(ll=3, ld=10, wl=2, dd=20, wd=14, ww=5)
    sprt.decision(llr)     # "H1", "H0" or None (play on)

H0 is "the first player is `elo0` stronger", H1 "it is `elo1` stronger" (elo0 < elo1). After every game
pair the generalized log-likelihood ratio (GSPRT) of H1 against H0 is compared with the bounds
ln(beta / (1 - alpha)) (at or below: accept H0) and ln((1 - beta) / alpha) (at or above: accept H1).

The likelihood of each hypothesis is that of the most likely outcome distribution that satisfies it
(Michel Van den Bergh, "Comments on Normalized Elo", https://www.cantate.be/Fishtest/normalized_elo_practical.pdf),
with the outcomes of a game pair as the five pair scores 0, 1/4, 1/2, 3/4, 1 (pentanomial: LL, LD, WL+DD,
WD, WW) or of single games as 0, 1/2, 1 (trinomial: L, D, W):

- `normalized` (fastchess's default): H means (mu - 1/2) / sigma = t with t = elo * sqrt(2) / (800 / ln 10)
  for pairs (elo / (800 / ln 10) for single games), mu and sigma the mean and standard deviation of a
  pair's (game's) score: normalized Elo, independent of the draw rate. The maximum-likelihood distribution
  is p_i = phat_i / (1 + theta * phi_i) with phi_i = a_i - 1/2 - t * sigma / 2 * (1 + ((a_i - mu) / sigma)^2),
  found by iterating from the uniform distribution (section 4.1).
- `logistic`: H means the expected score is 1 / (1 + 10^(-elo / 400)); p_i = phat_i / (1 + theta * (a_i - s))
  (proposition 1.1).

In both, theta solves sum_i phat_i * x_i / (1 + theta * x_i) = 0 on the interval where every 1 + theta * x_i
is positive; here by bisection to machine precision. As in fastchess, an empty outcome class counts as
0.001 (so that the logarithms are finite), and LLR = N * sum_i phat_i * ln(p1_i / p0_i) with N the
regularized count. fastchess stops its iterations at 1e-4 (distribution) and 1e-7 (theta), so its LLR can
differ from this one in the third significant digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from gamegpt.errors import UserError

MODELS = ("normalized", "logistic")
NELO_SCALE = 800.0 / math.log(10.0)  # normalized Elo per unit of t = (mu - 1/2) / sigma, per game
PAIR_SCORES = (0.0, 0.25, 0.5, 0.75, 1.0)  # LL, LD, WL+DD, WD, WW
GAME_SCORES = (0.0, 0.5, 1.0)  # L, D, W
EMPTY_CLASS = 1e-3  # what an outcome never seen counts as (fastchess's regularization)


@dataclass(frozen=True)
class SprtSettings:
    """An SPRT: H0 elo = `elo0` against H1 elo = `elo1`, false-positive rate `alpha`, false-negative rate
    `beta`, Elo `model` "normalized" or "logistic". Invalid values raise UserError."""

    elo0: float
    elo1: float
    alpha: float = 0.05
    beta: float = 0.05
    model: str = "normalized"

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.elo0, self.elo1, self.alpha, self.beta)):
            raise UserError("SPRT: elo0, elo1, alpha and beta must be finite numbers")
        if self.elo0 >= self.elo1:
            raise UserError(f"SPRT: elo0 must be less than elo1, got elo0={self.elo0:g}, elo1={self.elo1:g}")
        for name, value in (("alpha", self.alpha), ("beta", self.beta)):
            if not 0.0 < value < 1.0:
                raise UserError(f"SPRT: {name} must be between 0 and 1, got {value:g}")
        if self.alpha + self.beta >= 1.0:
            raise UserError(f"SPRT: alpha + beta must be less than 1, got {self.alpha + self.beta:g}")
        if self.model not in MODELS:
            raise UserError(f"SPRT: unknown model {self.model!r}; choose one of {', '.join(MODELS)}")

    @classmethod
    def parse(cls, text: str) -> "SprtSettings":
        """`elo0=0,elo1=10[,alpha=0.05][,beta=0.05][,model=normalized|logistic]` → settings (UserError for
        anything else)."""
        values: dict[str, str] = {}
        for item in text.split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise UserError(f"SPRT: expected KEY=VALUE items (elo0=0,elo1=10,alpha=0.05,beta=0.05), got {item!r}")
            if key not in ("elo0", "elo1", "alpha", "beta", "model"):
                raise UserError(f"SPRT: unknown setting {key!r}; known: elo0, elo1, alpha, beta, model")
            if key in values:
                raise UserError(f"SPRT: {key} given twice")
            values[key] = value
        missing = [key for key in ("elo0", "elo1") if key not in values]
        if missing:
            raise UserError(f"SPRT: {' and '.join(missing)} missing (e.g. elo0=0,elo1=10,alpha=0.05,beta=0.05)")
        numbers: dict[str, float] = {}
        for key in ("elo0", "elo1", "alpha", "beta"):
            if key in values:
                try:
                    numbers[key] = float(values[key])
                except ValueError:
                    raise UserError(f"SPRT: {key} must be a number, got {values[key]!r}") from None
        return cls(model=values.get("model", "normalized"), **numbers)

    def __str__(self) -> str:
        return (f"elo0={self.elo0:g},elo1={self.elo1:g},alpha={self.alpha:g},beta={self.beta:g},"
                f"model={self.model}")

    def to_dict(self) -> dict[str, float | str]:
        return {"elo0": self.elo0, "elo1": self.elo1, "alpha": self.alpha, "beta": self.beta, "model": self.model}

    @property
    def lower(self) -> float:
        """ln(beta / (1 - alpha)): at or below it, H0 is accepted."""
        return math.log(self.beta / (1.0 - self.alpha))

    @property
    def upper(self) -> float:
        """ln((1 - beta) / alpha): at or above it, H1 is accepted."""
        return math.log((1.0 - self.beta) / self.alpha)

    def decision(self, llr: float) -> str | None:
        """"H1" at or above the upper bound, "H0" at or below the lower one, else None (play on)."""
        if llr >= self.upper:
            return "H1"
        if llr <= self.lower:
            return "H0"
        return None

    def fraction(self, llr: float) -> float:
        """How far the LLR has gone towards the bound on its side (1.0 = reached), as cutechess prints it."""
        return llr / self.upper if llr >= 0 else llr / self.lower

    def llr_pentanomial(self, *, ll: int, ld: int, wl: int, dd: int, wd: int, ww: int) -> float:
        """The LLR from game-pair counts (the first player's view: LL = lost both games of a pair, ...)."""
        counts = [ll, ld, wl + dd, wd, ww]
        if self.model == "normalized":
            scale = math.sqrt(2.0) / NELO_SCALE
            return _llr_normalized(PAIR_SCORES, counts, self.elo0 * scale, self.elo1 * scale)
        return _llr_logistic(PAIR_SCORES, counts, logistic_score(self.elo0), logistic_score(self.elo1))

    def llr_trinomial(self, *, wins: int, losses: int, draws: int) -> float:
        """The LLR from single-game counts, for games that were not played in colour-swapped pairs."""
        counts = [losses, draws, wins]
        if self.model == "normalized":
            return _llr_normalized(GAME_SCORES, counts, self.elo0 / NELO_SCALE, self.elo1 / NELO_SCALE)
        return _llr_logistic(GAME_SCORES, counts, logistic_score(self.elo0), logistic_score(self.elo1))


def logistic_score(elo: float) -> float:
    """The expected score of a player `elo` logistic Elo stronger: 1 / (1 + 10^(-elo / 400))."""
    return 1.0 / (1.0 + 10.0 ** (-elo / 400.0))


def _empirical(counts: Sequence[int]) -> tuple[float, list[float]]:
    """The regularized total and frequencies (an empty class counts as EMPTY_CLASS)."""
    if any(c < 0 for c in counts):
        raise ValueError(f"counts must be >= 0, got {list(counts)}")
    regular = [float(c) if c > 0 else EMPTY_CLASS for c in counts]
    total = sum(regular)
    return total, [c / total for c in regular]


def _llr(total: float, probs: Sequence[float], p0: Sequence[float], p1: Sequence[float]) -> float:
    return total * sum(p * (math.log(b) - math.log(a)) for p, a, b in zip(probs, p0, p1))


def _llr_logistic(scores: Sequence[float], counts: Sequence[int], s0: float, s1: float) -> float:
    total, probs = _empirical(counts)
    return _llr(total, probs, mle_expected_score(scores, probs, s0), mle_expected_score(scores, probs, s1))


def _llr_normalized(scores: Sequence[float], counts: Sequence[int], t0: float, t1: float) -> float:
    total, probs = _empirical(counts)
    return _llr(total, probs, mle_normalized(scores, probs, t0), mle_normalized(scores, probs, t1))


def mle_expected_score(scores: Sequence[float], probs: Sequence[float], s: float) -> list[float]:
    """The distribution over `scores` with expected score `s` most likely to give the frequencies `probs`
    (all positive): p_i = probs_i / (1 + theta * (a_i - s))."""
    x = [a - s for a in scores]
    return _tilted(probs, x)


def mle_normalized(scores: Sequence[float], probs: Sequence[float], t: float, *, reference: float = 0.5,
                   tolerance: float = 1e-12, max_iterations: int = 1000) -> list[float]:
    """The distribution over `scores` with (mu - reference) / sigma = `t` most likely to give the frequencies
    `probs` (all positive), by Van den Bergh's fixed-point iteration. It starts from a distribution that
    meets the constraint (`_normalized_start`), so that its first step exists for any t; the paper and
    fastchess start from the uniform one, which fails for |t| above about 0.9 (pair scores) and converges to
    the same distribution where it does not."""
    p = _normalized_start(scores, t, reference)
    for _ in range(max_iterations):
        mu = sum(a * q for a, q in zip(scores, p))
        sigma = math.sqrt(sum(q * (a - mu) ** 2 for a, q in zip(scores, p)))
        phi = [a - reference - 0.5 * t * sigma * (1.0 + ((a - mu) / sigma) ** 2) for a in scores]
        new = _tilted(probs, phi)
        change = max(abs(a - b) for a, b in zip(new, p))
        p = new
        if change < tolerance:
            break
    return p


def _normalized_start(scores: Sequence[float], t: float, reference: float) -> list[float]:
    """The distribution p_i ~ exp(lam * a_i) with (mu - reference) / sigma = t (lam by bisection: the ratio
    grows with lam, from below any t to above it)."""

    def distribution(lam: float) -> list[float]:
        top = max(lam * a for a in scores)
        weights = [math.exp(lam * a - top) for a in scores]
        total = sum(weights)
        return [w / total for w in weights]

    def excess(lam: float) -> float:  # increasing in lam
        p = distribution(lam)
        mu = sum(a * q for a, q in zip(scores, p))
        sigma = math.sqrt(sum(q * (a - mu) ** 2 for a, q in zip(scores, p)))
        return (mu - reference) / sigma - t

    span = (max(scores) - min(scores)) or 1.0
    low, high = -50.0 / span, 50.0 / span
    for _ in range(200):
        middle = (low + high) / 2.0
        if excess(middle) < 0.0:
            low = middle
        else:
            high = middle
    return distribution((low + high) / 2.0)


def _tilted(probs: Sequence[float], x: Sequence[float]) -> list[float]:
    """probs_i / (1 + theta * x_i) with theta the root of sum_i probs_i * x_i / (1 + theta * x_i) = 0 inside
    (-1 / max x, -1 / min x); ValueError when the x do not change sign (no such distribution)."""
    low, high = min(x), max(x)
    if not low < 0.0 < high:
        raise ValueError(f"no distribution with this constraint: the terms {list(x)} do not change sign")

    def f(theta: float) -> float:  # strictly decreasing on the interval
        return sum(p * xi / (1.0 + theta * xi) for p, xi in zip(probs, x))

    theta = _bisect(f, -1.0 / high, -1.0 / low)
    return [p / (1.0 + theta * xi) for p, xi in zip(probs, x)]


def _bisect(f: Callable[[float], float], a: float, b: float) -> float:
    """The root of a function decreasing on the open interval (a, b), from +inf to -inf at its ends, to
    machine precision."""
    for _ in range(2000):
        middle = (a + b) / 2.0
        if middle <= a or middle >= b:
            break
        value = f(middle)
        if value > 0.0:
            a = middle
        elif value < 0.0:
            b = middle
        else:
            return middle
    return (a + b) / 2.0
