"""The Elo fit: it recovers the ratings of simulated players with intervals that cover them at about the
stated rate, matches closed forms where there are some, gives players without a finite estimate an honest
bound, and writes its table, JSON and PNG. Pure numpy: the whole file runs in a few seconds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gamegpt.errors import UserError
from gamegpt.eval.elo import ELO_SCALE, expected_score, fit_elo, write_elo

DRAW_SHARE = 0.5  # draws take this share of the weaker side's expected score (as between real engines)


def simulate(true: dict[str, float], games_per_pair: int, rng: np.random.Generator,
             pairs: list[tuple[str, str]] | None = None) -> list[tuple[str, str, float]]:
    """Games whose expected score follows the Elo formula, with draws."""
    names = list(true)
    pairs = pairs or [(a, b) for k, a in enumerate(names) for b in names[k + 1:]]
    games = []
    for a, b in pairs:
        e = expected_score(true[a] - true[b])
        draw = DRAW_SHARE * 2 * min(e, 1 - e)
        for u in rng.random(games_per_pair):
            games.append((a, b, 1.0 if u < e - draw / 2 else 0.5 if u < e + draw / 2 else 0.0))
    return games


TRUE = {"anchor": 1350.0, "strong": 1700.0, "club": 1500.0, "weak": 1150.0, "weaker": 900.0, "novice": 600.0}


def test_the_fit_recovers_known_ratings_and_holds_the_anchor_exactly() -> None:
    games = simulate(TRUE, 60, np.random.default_rng(7))
    fit = fit_elo(games, anchor="anchor", anchor_rating=1350)
    assert fit.games == len(games) == 15 * 60
    anchor = fit.rating_of("anchor")
    assert anchor.kind == "anchor" and anchor.rating == 1350.0 and anchor.lower == anchor.upper == 1350.0
    for name, truth in TRUE.items():
        rating = fit.rating_of(name)
        if name == "anchor":
            continue
        assert rating.kind == "estimate" and rating.lower is not None and rating.upper is not None
        assert rating.lower < rating.rating < rating.upper  # type: ignore[operator]
        assert rating.lower <= truth <= rating.upper, (name, truth, rating)
        assert rating.upper - rating.lower < 350, rating  # 300 games each: intervals of about +-100
    ranked = [r.name for r in fit.ratings]
    assert ranked == sorted(TRUE, key=TRUE.__getitem__, reverse=True)
    # another anchor rating shifts every rating by the same amount and nothing else
    shifted = fit_elo(games, anchor="anchor", anchor_rating=0)
    for name in TRUE:
        assert shifted.rating_of(name).rating == pytest.approx(fit.rating_of(name).rating - 1350,  # type: ignore[operator]
                                                               abs=1e-6)


def test_intervals_cover_the_truth_at_about_their_rate_and_are_not_too_wide() -> None:
    """Over 40 simulated tournaments, the 95% intervals must cover the true ratings at least ~88% of the
    time (90% intervals would fail this only rarely, 50% ones always), and their width must match the
    spread of the estimates themselves (too-wide intervals would pass coverage trivially)."""
    rng = np.random.default_rng(2024)
    true = {"a": 1350.0, "b": 1550.0, "c": 1200.0, "d": 1000.0}
    covered, total, errors, half_widths = 0, 0, [], []
    for _ in range(40):
        fit = fit_elo(simulate(true, 30, rng), anchor="a", anchor_rating=1350)
        for name in ("b", "c", "d"):
            rating = fit.rating_of(name)
            assert rating.kind == "estimate"
            total += 1
            covered += rating.lower <= true[name] <= rating.upper  # type: ignore[operator]
            errors.append(rating.rating - true[name])  # type: ignore[operator]
            half_widths.append((rating.upper - rating.lower) / 2)  # type: ignore[operator]
    coverage = covered / total
    assert 0.88 <= coverage <= 1.0, coverage
    assert abs(float(np.mean(errors))) < 25  # no systematic bias
    ratio = float(np.mean(half_widths)) / (1.96 * float(np.std(errors)))
    assert 0.75 < ratio < 1.6, ratio  # draws as half points: somewhat conservative, not wildly so


def test_one_pair_matches_the_closed_form_estimate_and_interval() -> None:
    # b scores 13 of 20 against the anchor: the MLE solves expected_score(d) = 0.65
    games = [("b", "a", 1.0)] * 10 + [("b", "a", 0.5)] * 6 + [("b", "a", 0.0)] * 4
    fit = fit_elo(games, anchor="a", anchor_rating=1000)
    b = fit.rating_of("b")
    assert b.rating == pytest.approx(1000 + 400 * math.log10(0.65 / 0.35), abs=0.01)
    assert b.score == 13 and b.games == 20

    def loglik(d: float) -> float:  # the half-point likelihood of these games at b - a = d Elo
        p = expected_score(d)
        return 13 * math.log(p) + 7 * math.log(1 - p)

    best = loglik(b.rating - 1000)  # type: ignore[operator]
    for end in (b.lower, b.upper):  # profile-likelihood ends: the log-likelihood is 1.92 below its top
        assert best - loglik(end - 1000) == pytest.approx(1.959964 ** 2 / 2, abs=1e-4)  # type: ignore[operator]


def test_a_zero_score_player_gets_a_finite_upper_bound_from_the_likelihood() -> None:
    for n in (5, 20, 80):
        games = [("z", "a", 0.0)] * n + [("a", "b", 1.0), ("a", "b", 0.0)]
        fit = fit_elo(games, anchor="a", anchor_rating=1350)
        zero = fit.rating_of("z")
        assert zero.kind == "upper_bound" and zero.rating is None and zero.lower is None
        assert zero.upper is not None and math.isfinite(zero.upper) and zero.upper < 1350
        # closed form: the likelihood n*log(1 - p) drops by 1.92 from its supremum 0 at
        # d = log(exp(1.92 / n) - 1) natural units
        exact = 1350 + math.log(math.exp(1.959964 ** 2 / 2 / n) - 1) * ELO_SCALE
        assert zero.upper == pytest.approx(exact, abs=0.05)
        assert "scored 0 of" in zero.note and "<=" in fit.table() and "no finite" in fit.table()
    # a perfect score is the mirror image: a lower bound
    fit = fit_elo([("w", "a", 1.0)] * 20 + [("a", "b", 0.5)] * 2, anchor="a", anchor_rating=1350)
    winner = fit.rating_of("w")
    assert winner.kind == "lower_bound" and winner.lower is not None and winner.lower > 1350
    assert fit.ratings[0].name == "w" and fit.rating_of("w").rating_text().startswith(">= ")


def test_a_group_that_never_scores_against_the_rest_is_bounded_and_its_members_named() -> None:
    rng = np.random.default_rng(3)
    games = simulate({"a": 1350.0, "b": 1450.0}, 20, rng)
    games += [("x", "a", 0.0)] * 10 + [("y", "b", 0.0)] * 10 + [("x", "y", 0.5)] * 4 + [("x", "y", 1.0)] * 2
    fit = fit_elo(games, anchor="a", anchor_rating=1350)
    for name in ("x", "y"):
        rating = fit.rating_of(name)
        assert rating.kind == "upper_bound" and rating.upper is not None and rating.upper < 1350
    assert "with y" in fit.rating_of("x").note and "with x" in fit.rating_of("y").note
    assert fit.rating_of("b").kind == "estimate"
    assert fit.rating_of("x").upper > fit.rating_of("y").upper  # type: ignore[operator]  # x outscored y
    assert [r.name for r in fit.ratings][2:] == ["x", "y"]  # bounded from above: ranked below the estimates


def test_disconnected_players_are_left_unrated_with_a_note_and_bad_anchors_are_refused() -> None:
    games = [("a", "b", 1.0), ("a", "b", 0.0), ("c", "d", 1.0), ("c", "d", 0.5)]
    fit = fit_elo(games, anchor="a", anchor_rating=1350, players=["a", "b", "c", "d", "idle"])
    for name in ("c", "d", "idle"):
        rating = fit.rating_of(name)
        assert rating.kind == "unconnected" and rating.rating is None and "no chain of games" in rating.note
    assert any("c, d, idle" in note for note in fit.notes)
    assert fit.rating_of("b").rating == pytest.approx(1350)
    with pytest.raises(UserError, match="not a player"):
        fit_elo(games, anchor="nobody")
    with pytest.raises(UserError, match="played no games"):
        fit_elo(games, anchor="idle", players=["idle"])
    with pytest.raises(ValueError, match="0, 0.5 or 1"):
        fit_elo([("a", "b", 0.7)], anchor="a")


def test_table_json_and_png_are_written(tmp_path: Path) -> None:
    games = simulate(TRUE, 10, np.random.default_rng(1)) + [("hopeless", "novice", 0.0)] * 6
    fit = fit_elo(games, anchor="anchor", anchor_rating=1350)
    paths = write_elo(fit, tmp_path, title="simulated")
    assert [p.name for p in paths] == ["ratings.txt", "ratings.json", "ratings.png"]
    text = (tmp_path / "ratings.txt").read_text()
    assert "anchor: anchor = 1350" in text and "profile-likelihood" in text and "<= " in text
    data = json.loads((tmp_path / "ratings.json").read_text())
    assert data["anchor"] == "anchor" and data["anchor_rating"] == 1350 and data["games"] == len(games)
    by_name = {p["name"]: p for p in data["players"]}
    assert by_name["hopeless"]["kind"] == "upper_bound" and by_name["hopeless"]["rating"] is None
    assert all(math.isfinite(v) for p in data["players"] for v in (p["lower"], p["upper"], p["rating"])
               if v is not None)
    assert (tmp_path / "ratings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*"))  # no temp files left behind
