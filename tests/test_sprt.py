"""The SPRT's log-likelihood ratio: fastchess's published numbers, an independent derivation of the
maximum-likelihood distributions, the bounds, and the settings text."""

from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np
import pytest

from gamegpt.errors import UserError
from gamegpt.eval.sprt import (GAME_SCORES, PAIR_SCORES, SprtSettings, mle_expected_score, mle_normalized)

# fastchess's tests/sprt_test.cpp: Stats(wins, losses, draws) and Stats(LL, LD, WL, DD, WD, WW), SPRT(alpha,
# beta, elo0, elo1, model), LLRs published to two decimals.
FASTCHESS_TRINOMIAL = [
    ((36433, 36027, 68692), (0.0, 2.0), "normalized", 0.92),
    ((10871, 10650, 20431), (-1.75, 0.25), "normalized", 2.30),
    ((21404, 21184, 40708), (0.5, 2.5), "logistic", -1.57),
    ((57433, 57030, 106593), (0.0, 2.0), "logistic", -2.59),
]
FASTCHESS_PENTANOMIAL = [
    ((365, 16618, 36029, 200, 16974, 390), (0.0, 2.0), "normalized", 2.25),
    ((127, 4883, 10311, 401, 5150, 104), (-1.75, 0.25), "normalized", 3.01),
    ((223, 9863, 20279, 1000, 10037, 246), (0.5, 2.5), "logistic", -3.07),
    ((871, 26175, 55003, 980, 26678, 821), (0.0, 2.0), "logistic", -4.98),
]


@pytest.mark.parametrize("counts, elos, model, expected", FASTCHESS_PENTANOMIAL)
def test_pentanomial_llr_reproduces_fastchess(counts: tuple[int, ...], elos: tuple[float, float], model: str,
                                              expected: float) -> None:
    ll, ld, wl, dd, wd, ww = counts
    sprt = SprtSettings(*elos, alpha=0.05, beta=0.05, model=model)
    assert sprt.llr_pentanomial(ll=ll, ld=ld, wl=wl, dd=dd, wd=wd, ww=ww) == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize("counts, elos, model, expected", FASTCHESS_TRINOMIAL)
def test_trinomial_llr_reproduces_fastchess(counts: tuple[int, ...], elos: tuple[float, float], model: str,
                                            expected: float) -> None:
    wins, losses, draws = counts
    sprt = SprtSettings(*elos, model=model)
    assert sprt.llr_trinomial(wins=wins, losses=losses, draws=draws) == pytest.approx(expected, abs=0.005)


def _curve_maximum(probs: np.ndarray, curve: Callable[[float], np.ndarray]) -> np.ndarray:
    """The distribution on a one-parameter curve (parameter in (0, 1)) that maximizes sum probs * log p:
    a dense grid, then golden-section search around its best point."""
    def loglik(d: float) -> float:
        p = curve(d)
        return float(probs @ np.log(p)) if np.all(p > 0) else -math.inf

    grid = np.linspace(1e-9, 1 - 1e-9, 20001)
    best = int(np.argmax([loglik(d) for d in grid]))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if loglik(c) >= loglik(d):
            b = d
        else:
            a = c
    return curve((a + b) / 2)


def test_normalized_trinomial_mle_matches_a_closed_form_constraint_curve() -> None:
    """For single games (L, D, W) the normalized constraint (mu - 1/2) / sigma = t is, with d = D,
    W - L = 2x, W + L = 1 - d, sigma^2 = (1 - d) / 4 - x^2, solved by x = t sqrt((1 - d) / (4 (1 + t^2))):
    the most likely distribution is a one-dimensional search along it, with no fixed point involved."""
    probs = np.array([0.30, 0.25, 0.45])  # L, D, W
    for t in (-0.4, -0.05, 0.0, 0.1, 0.6):
        def curve(d: float) -> np.ndarray:
            x = t * math.sqrt((1 - d) / (4 * (1 + t * t)))
            return np.array([(1 - d) / 2 - x, d, (1 - d) / 2 + x])

        expected = _curve_maximum(probs, curve)
        got = np.array(mle_normalized(GAME_SCORES, list(probs), t))
        assert got == pytest.approx(expected, abs=1e-6), t
        mu = got @ np.array(GAME_SCORES)
        sigma = math.sqrt(got @ (np.array(GAME_SCORES) - mu) ** 2)
        assert (mu - 0.5) / sigma == pytest.approx(t, abs=1e-9)


def test_logistic_trinomial_mle_matches_a_closed_form_constraint_curve() -> None:
    """Expected score s: W - L = 2s - 1, so with d = D the curve is L = (1 - d) / 2 - (s - 1/2), W = ..."""
    probs = np.array([0.2, 0.5, 0.3])
    for s in (0.4, 0.5, 0.52, 0.7):
        def curve(d: float) -> np.ndarray:
            return np.array([(1 - d) / 2 - (s - 0.5), d, (1 - d) / 2 + (s - 0.5)])

        expected = _curve_maximum(probs, curve)
        got = np.array(mle_expected_score(GAME_SCORES, list(probs), s))
        assert got == pytest.approx(expected, abs=1e-6), s


@pytest.mark.parametrize("t", [-1.5, -0.3, 0.01, 0.2, 1.2])
def test_normalized_pentanomial_mle_is_a_constrained_maximum(t: float) -> None:
    """The pentanomial MLE satisfies its constraint and the first-order (Lagrange) condition: the
    likelihood's gradient lies in the span of the constraints' gradients (sum p = 1 and the normalized
    score, differentiated numerically here). Large |t| too, where the fixed point needs a feasible start."""
    probs = np.array([0.05, 0.2, 0.45, 0.22, 0.08])
    scores = np.array(PAIR_SCORES)
    p = np.array(mle_normalized(PAIR_SCORES, list(probs), t))

    def constraint(q: np.ndarray) -> float:
        mu = q @ scores
        return float((mu - 0.5) / math.sqrt(q @ (scores - mu) ** 2) - t)

    assert p.sum() == pytest.approx(1.0, abs=1e-12) and np.all(p > 0)
    assert constraint(p) == pytest.approx(0.0, abs=1e-9)
    step = 1e-7
    gradient_g = np.array([(constraint(p + step * e) - constraint(p - step * e)) / (2 * step) for e in np.eye(5)])
    gradient_f = probs / p
    basis = np.stack([np.ones(5), gradient_g], axis=1)
    coefficients, *_ = np.linalg.lstsq(basis, gradient_f, rcond=None)
    assert np.abs(basis @ coefficients - gradient_f).max() < 1e-5 * np.abs(gradient_f).max()


def test_llr_is_the_log_ratio_of_the_two_fitted_likelihoods() -> None:
    """LLR = sum_i n_i ln(p1_i / p0_i) with the MLEs under elo1 and elo0; checked by hand for one count."""
    counts = [3, 10, 22, 14, 5]  # LL, LD, WL+DD, WD, WW
    sprt = SprtSettings(0.0, 10.0)
    scale = math.sqrt(2) * math.log(10) / 800
    probs = [c / sum(counts) for c in counts]
    p0, p1 = (mle_normalized(PAIR_SCORES, probs, elo * scale) for elo in (0.0, 10.0))
    expected = sum(n * math.log(b / a) for n, a, b in zip(counts, p0, p1))
    assert sprt.llr_pentanomial(ll=3, ld=10, wl=2, dd=20, wd=14, ww=5) == pytest.approx(expected, rel=1e-12)
    # more wins than losses: the evidence leans to H1; mirrored counts lean to H0 by the same amount at elo0 = -elo1
    symmetric = SprtSettings(-10.0, 10.0)
    assert symmetric.llr_pentanomial(ll=3, ld=10, wl=2, dd=20, wd=14, ww=5) == pytest.approx(
        -symmetric.llr_pentanomial(ll=5, ld=14, wl=2, dd=20, wd=10, ww=3), rel=1e-9)
    assert expected > 0


def test_bounds_and_decisions() -> None:
    sprt = SprtSettings.parse("elo0=0,elo1=10,alpha=0.05,beta=0.05")
    assert sprt.lower == pytest.approx(math.log(0.05 / 0.95)) and sprt.upper == pytest.approx(math.log(0.95 / 0.05))
    assert sprt.lower == pytest.approx(-2.944, abs=1e-3)
    assert sprt.decision(2.95) == "H1" and sprt.decision(-2.95) == "H0" and sprt.decision(0.0) is None
    uneven = SprtSettings.parse("elo0=-5,elo1=0,alpha=0.1,beta=0.01,model=logistic")
    assert uneven.lower == pytest.approx(math.log(0.01 / 0.9)) and uneven.upper == pytest.approx(math.log(0.99 / 0.1))
    assert uneven.model == "logistic" and uneven.fraction(uneven.upper) == pytest.approx(1.0)
    # all pairs won: the LLR climbs towards H1 pair by pair; all lost: towards H0
    llrs = [sprt.llr_pentanomial(ll=0, ld=0, wl=0, dd=0, wd=0, ww=n) for n in range(1, 6)]
    assert all(b > a > 0 for a, b in zip(llrs, llrs[1:]))
    assert sprt.llr_pentanomial(ll=5, ld=0, wl=0, dd=0, wd=0, ww=0) < 0


@pytest.mark.parametrize("text, needle", [
    ("elo1=10", "elo0 missing"),
    ("elo0=10,elo1=0", "elo0 must be less than elo1"),
    ("elo0=0,elo1=10,alpha=0", "alpha must be between 0 and 1"),
    ("elo0=0,elo1=10,alpha=0.6,beta=0.5", "alpha + beta"),
    ("elo0=0,elo1=10,model=bayesian", "unknown model"),
    ("elo0=0,elo1=ten", "elo1 must be a number"),
    ("elo0=0,elo1=10,gamma=1", "unknown setting"),
    ("elo0=0,elo1=10,elo1=5", "given twice"),
    ("elo0 0", "KEY=VALUE"),
])
def test_bad_settings_are_user_errors(text: str, needle: str) -> None:
    with pytest.raises(UserError, match=re.escape(needle)):
        SprtSettings.parse(text)
