"""The cutechess/fastchess summary lines: numbers worked out here from their definitions, fastchess's
published Elo values, and the lines a real tournament prints for each pairing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist

import pytest

from gamegpt.arena.records import GameRecord
from gamegpt.eval.match_stats import MatchStats, Pentanomial, estimate_elo, format_match, match_stats
from gamegpt.eval.openings import START_POSITION
from gamegpt.eval.tournament import format_pairings, run_tournament
from gamegpt.players.uci import find_stockfish

STOCKFISH = find_stockfish()


def _record(index: int, white: str, black: str, result: str) -> GameRecord:
    return GameRecord(game="chess", moves=[], players=[], result=result, termination="test", index=index,
                      extra={"entrants": [white, black]})


def _elo(score: float) -> float:
    return -400 * math.log10(1 / score - 1)


def test_paired_games_give_the_pentanomial_lines() -> None:
    """Five colour-swapped pairs of new against old, new's results: LD, WL, DD, WD, WW."""
    outcomes = [("0-1", "1/2-1/2"), ("1-0", "1-0"), ("1/2-1/2", "1/2-1/2"), ("1-0", "1/2-1/2"), ("1-0", "0-1")]
    # game 2k: new has White; game 2k + 1: old has White, so "1-0" there is old's win
    records = []
    for pair, (first, second) in enumerate(outcomes):
        records += [_record(2 * pair, "new", "old", first), _record(2 * pair + 1, "old", "new", second)]
    records.append(_record(10, "new", "old", "1-0"))  # half a pair: counts in W-L-D, not in the pentanomial
    records.append(_record(11, "new", "third", "0-1"))  # another pairing: not counted
    stats = match_stats(records, "new", "old")
    assert (stats.wins, stats.losses, stats.draws) == (5, 2, 4)
    assert stats.pentanomial == Pentanomial(ll=0, ld=1, wl=1, dd=1, wd=1, ww=1)

    # pair scores (new's points / 2): 0.25, 0.5, 0.5, 0.75, 1.0
    pair_scores = [0.25, 0.5, 0.5, 0.75, 1.0]
    mean = sum(pair_scores) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in pair_scores) / 5 / 5)
    assert mean == pytest.approx(0.6) and sd == pytest.approx(math.sqrt(0.013))
    elo, margin = _elo(0.6), (_elo(0.6 + 1.959964 * sd) - _elo(0.6 - 1.959964 * sd)) / 2
    assert elo == pytest.approx(70.437, abs=1e-3) and margin == pytest.approx(177.6, abs=0.1)
    los = NormalDist().cdf(0.1 / sd)
    lines = format_match(stats).splitlines()
    assert lines == [
        "Score of new vs old: 5 - 2 - 4  [0.636] 11",
        f"Elo difference: {elo:.1f} +/- {margin:.1f}, LOS: {los * 100:.1f} %, DrawRatio: 40.0 %",
        "Ptnml(0-2): [0, 1, 2, 1, 1], WL/DD: 1/1",
    ]
    assert lines[1] == "Elo difference: 70.4 +/- 177.6, LOS: 81.0 %, DrawRatio: 40.0 %"


@pytest.mark.parametrize("wins, losses, draws, elo, margin", [
    (0, 36, 14, -315.34, 95.43), (859, 772, 1329, 10.21, 9.28), (1164, 1267, 3049, -6.53, 6.12)])
def test_unpaired_games_reproduce_fastchess_elo(wins: int, losses: int, draws: int, elo: float,
                                                margin: float) -> None:
    """Without pairs the line is cutechess's trinomial one; fastchess's tests (elo_test.cpp, 1 %)."""
    estimate = estimate_elo(MatchStats("a", "b", wins, losses, draws))
    assert estimate is not None and estimate.source == "trinomial"
    assert estimate.elo == pytest.approx(elo, rel=0.01) and estimate.margin == pytest.approx(margin, rel=0.01)
    assert estimate.draw_ratio == pytest.approx(draws / (wins + losses + draws))
    line = format_match(MatchStats("a", "b", wins, losses, draws)).splitlines()
    assert len(line) == 2 and line[0] == f"Score of a vs b: {wins} - {losses} - {draws}  " \
        f"[{(wins + draws / 2) / (wins + losses + draws):.3f}] {wins + losses + draws}"


def test_a_clean_sweep_has_no_finite_elo() -> None:
    stats = MatchStats("sf", "random", 6, 0, 0, Pentanomial(ww=3))
    assert format_match(stats).splitlines()[1:] == ["Elo difference: inf +/- nan, LOS: 100.0 %, DrawRatio: 0.0 %",
                                                    "Ptnml(0-2): [0, 0, 0, 0, 3], WL/DD: 0/0"]
    assert format_match(MatchStats("x", "y")) == "Score of x vs y: 0 - 0 - 0  [0.000] 0"
    even = format_match(MatchStats("x", "y", 1, 1, 2, Pentanomial(ld=1, wd=1))).splitlines()[1]
    assert even.startswith("Elo difference: 0.0 +/- ") and "LOS: 50.0 %, DrawRatio: 0.0 %" in even  # no "-0.0"


def test_tournament_prints_each_pairing_when_it_ends_and_all_at_the_end(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gamegpt.cli import main

    out = tmp_path / "t"
    result = CliRunner().invoke(main, ["tournament", "-p", "sf=stockfish:nodes=1", "-p", "random", "-p", "r2=random",
                                       "--openings", "none", "--max-plies", "80", "--workers", "1", "--no-progress",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "tournament.json").read_text())
    blocks = (out / "pairings.txt").read_text().strip().split("\n\n")
    assert len(blocks) == 3 and [r["players"] for r in summary["pairing_results"]] == \
        [["sf", "random"], ["sf", "r2"], ["random", "r2"]]
    for block, row in zip(blocks, summary["pairing_results"]):
        first, second = row["players"]
        lines = block.splitlines()
        assert lines[0] == f"Score of {first} vs {second}: {row['wins']} - {row['losses']} - {row['draws']}  " \
            f"[{(row['wins'] + row['draws'] / 2) / 2:.3f}] 2"
        assert lines[1].startswith("Elo difference: ") and ", LOS: " in lines[1] and ", DrawRatio: " in lines[1]
        assert lines[2].startswith("Ptnml(0-2): [") and sum(row["ptnml"]) == row["pairs"] == 1
    assert blocks[0].startswith("Score of sf vs random: 2 - 0 - 0  [1.000] 2")
    # the first two pairings end before the last game: printed then and again at the end; the last once
    assert [result.stdout.count(block) for block in blocks] == [2, 2, 1]
    assert f"wrote {out / 'games.jsonl'}" in result.stdout and str(out / "pairings.txt") in result.stdout


def test_run_tournament_hands_on_pairing_the_finished_pairings(tmp_path: Path) -> None:
    heard: list[MatchStats] = []
    result = run_tournament(["random", "r2=random"], out_dir=tmp_path, openings=[START_POSITION], max_plies=30,
                            progress=False, on_pairing=heard.append)
    assert heard == []  # the only pairing ends with the tournament: the result has it
    assert len(result.pairings) == 1 and result.pairings[0].games == 2 and result.pairings[0].pentanomial.pairs == 1
    assert (tmp_path / "pairings.txt").read_text() == format_pairings(result.pairings) + "\n"
