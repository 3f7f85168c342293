"""`gamegpt match` with an SPRT, end to end with the real Stockfish: Stockfish at one node a move against
the random player is decided within a few pairs, a match continues where it was killed, and the command
prints the summary lines or one line for a user error."""

from __future__ import annotations

import json
from pathlib import Path

import chess.pgn
import pytest

from gamegpt.arena.records import read_records
from gamegpt.errors import UserError
from gamegpt.eval.match import run_match
from gamegpt.eval.match_stats import match_stats
from gamegpt.eval.openings import Opening
from gamegpt.eval.sprt import SprtSettings
from gamegpt.players.uci import find_stockfish

find_stockfish()  # setup.sh installs it; without it these tests fail with that one line

OPENINGS = [Opening("king's pawn", ("e2e4", "e7e5")), Opening("queen's pawn", ("d2d4", "d7d5")),
            Opening("english", ("c2c4",)), Opening("reti", ("g1f3", "g8f6"))]
SPRT = SprtSettings.parse("elo0=0,elo1=100,alpha=0.05,beta=0.05")  # normalized Elo, as fastchess
STRONG, WEAK = "sf=stockfish:nodes=1", "random"


def _moves(path: Path) -> dict[int, list[str]]:
    return {r.index: r.moves for r in read_records(path) if r.index is not None}


def test_sprt_accepts_h1_for_stockfish_against_random_and_resumes(tmp_path: Path) -> None:
    reports: list[str] = []
    whole = run_match(STRONG, WEAK, out_dir=tmp_path / "whole", openings=OPENINGS, sprt=SPRT, max_pairs=40,
                      progress=False, report=reports.append, report_every=3)
    assert whole.decision == "H1" and 2 <= whole.pairs <= 15
    assert whole.llr is not None and whole.llr >= SPRT.upper
    records = read_records(whole.records_path)
    assert len(records) == whole.games_new == 2 * whole.pairs  # stopped at once, no pair beyond the decision
    # it stopped at the first pair whose LLR reached the bound
    before = match_stats(records[:-2], "sf", "random").pentanomial
    assert SPRT.decision(SPRT.llr_pentanomial(**vars(before))) is None
    assert len(reports) == (whole.pairs - 1) // 3 and reports[0].splitlines()[-1].startswith("SPRT: llr ")
    summary = json.loads(whole.summary_path.read_text())
    assert summary["sprt"]["decision"] == "H1" and summary["pairs"] == whole.pairs
    assert summary["ptnml"] == whole.stats.pentanomial.counts()
    with whole.pgn_path.open() as handle:
        assert len(list(iter(lambda: chess.pgn.read_headers(handle), None))) == len(records)
    report = whole.report().splitlines()
    assert report[0].startswith(f"Score of sf vs random: {whole.stats.wins} - ")
    assert report[3].startswith("SPRT: llr ") and report[3].endswith("- H1 was accepted")
    assert report[4].startswith(f"H1 accepted after {whole.pairs} pairs")

    finished = whole.summary_path.read_bytes()
    again = run_match(STRONG, WEAK, out_dir=tmp_path / "whole", openings=OPENINGS, sprt=SPRT, max_pairs=40,
                      progress=False)
    assert again.games_new == 0 and again.decision == "H1" and again.report() == whole.report()
    assert whole.summary_path.read_bytes() == finished
    # killed after its last record, before the summary and the PGN: a re-run puts them right, playing nothing
    stale = json.loads(finished)
    stale["sprt"]["decision"] = None
    whole.summary_path.write_text(json.dumps(stale))
    whole.pgn_path.unlink()
    again = run_match(STRONG, WEAK, out_dir=tmp_path / "whole", openings=OPENINGS, sprt=SPRT, max_pairs=40,
                      progress=False)
    assert again.games_new == 0 and whole.summary_path.read_bytes() == finished and whole.pgn_path.exists()

    # the same match in steps: 2 pairs (undecided), a game lost to a kill, then on to the decision
    steps = tmp_path / "steps"
    reports.clear()
    short = run_match(STRONG, WEAK, out_dir=steps, openings=OPENINGS, sprt=SPRT, max_pairs=2, progress=False,
                      report=reports.append, report_every=1)
    assert short.decision is None and short.pairs == 2
    assert len(reports) == 1 and "2 - 0 - 0" in reports[0]  # after pair 1; pair 2 is the result's to report
    assert short.report().splitlines()[-1] == "no decision after 2 pairs, the most asked for"
    lines = (steps / "games.jsonl").read_text().splitlines(keepends=True)
    (steps / "games.jsonl").write_text("".join(lines[:-1]) + lines[-1][:20])  # killed while writing game 3
    resumed = run_match(STRONG, WEAK, out_dir=steps, openings=OPENINGS, sprt=SPRT, max_pairs=40, progress=False)
    assert resumed.games_new == 2 * whole.pairs - 3 and resumed.decision == "H1" and resumed.pairs == whole.pairs
    assert _moves(steps / "games.jsonl") == _moves(whole.records_path)  # game i is the same game, however played

    with pytest.raises(UserError, match="other settings"):
        run_match(STRONG, WEAK, out_dir=steps, openings=OPENINGS, sprt=SprtSettings(0, 50), max_pairs=40,
                  progress=False)
    with pytest.raises(UserError, match="opening 1 differs"):
        run_match(STRONG, WEAK, out_dir=steps, openings=OPENINGS[1:], sprt=SPRT, max_pairs=40, progress=False)


def test_sprt_accepts_h0_for_random_against_stockfish(tmp_path: Path) -> None:
    result = run_match(WEAK, STRONG, out_dir=tmp_path, openings=OPENINGS, sprt=SPRT, max_pairs=40, progress=False,
                       workers=2)
    assert result.decision == "H0" and 2 <= result.pairs <= 15 and result.stats.wins == 0
    assert result.llr is not None and result.llr <= SPRT.lower
    assert result.report().splitlines()[-2].endswith("- H0 was accepted")


def test_match_command_prints_the_summary_and_the_decision(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gamegpt.cli import main

    out = tmp_path / "m"
    result = CliRunner().invoke(main, ["match", STRONG, WEAK, "--sprt", "elo0=0,elo1=100", "--openings", "none",
                                       "--workers", "1", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "SPRT elo0=0,elo1=100,alpha=0.05,beta=0.05,model=normalized: bounds -2.94, 2.94" in lines
    score = next(k for k, line in enumerate(lines) if line.startswith("Score of sf vs random: "))
    assert lines[score + 1].startswith("Elo difference: ") and ", LOS: " in lines[score + 1]
    assert ", DrawRatio: " in lines[score + 1] and lines[score + 2].startswith("Ptnml(0-2): [0, 0, 0, 0, ")
    assert lines[score + 3].startswith("SPRT: llr ") and lines[score + 3].endswith("lbound -2.94, ubound 2.94 - H1 "
                                                                                   "was accepted")
    assert lines[score + 4].startswith("H1 accepted after ") and lines[-1].startswith(f"wrote {out / 'games.jsonl'}")
    summary = json.loads((out / "match.json").read_text())
    assert summary["sprt"]["decision"] == "H1" and summary["games"] == 2 * summary["pairs"]


@pytest.mark.parametrize("args, needle", [
    (["random", "r2=random", "--sprt", "elo0=10,elo1=0"], "elo0 must be less than elo1"),
    (["random", "r2=random", "--sprt", "elo0=0,elo1=5,model=bayes"], "unknown model"),
    (["random", "random"], "same name"),
    (["random", "stockfish:elo=1000"], "1350..2850"),
    (["random", "r2=random", "--max-pairs", "0"], "--max-pairs"),
    (["random", "r2=random", "--tc", "fast"], "--tc"),
])
def test_match_user_errors_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    from click.testing import CliRunner

    from gamegpt.cli import main

    result = CliRunner().invoke(main, ["match", *args, "--openings", "none", "--no-progress", "--out",
                                       str(tmp_path / "m")])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and needle in lines[0], result.output
