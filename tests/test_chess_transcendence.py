"""The chess transcendence study: the verdict rule on hand-made and simulated fits, and a tiny study end to end
with the real Stockfish (self-play, training, one tournament, table, JSON, PNG) that resumes without replaying
a game. Small on purpose: 220 self-play games (6 held out: fewer may not fill one 1024-character val block),
8 training steps of a 1x32 model, a 2-rung ladder, one opening, games of at most 40 plies, one worker; about a
minute on a busy 2-core machine."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from gamegpt.errors import UserError
from gamegpt.experiments.chess_transcendence import (
    ChessTranscendenceConfig,
    run_chess_transcendence,
    transcendence_verdict,
    with_noise_rate,
)
from gamegpt.eval.elo import EloFit, PlayerRating, fit_elo
from gamegpt.eval.tournament import rate_records
from gamegpt.players.uci import find_stockfish
from gamegpt.arena.records import iter_records
from gamegpt.resources import OPENING_BOOK, data_file

STOCKFISH = find_stockfish()  # setup.sh installs it; without it these tests fail with that one line

BOOK = data_file(*OPENING_BOOK)
TINY_TRAINING = {"n_layer": 1, "n_head": 2, "n_embd": 32, "max_steps": 8, "batch_size": 4, "eval_interval": 8,
                 "eval_batches": 1, "checkpoint_interval": 4, "warmup_steps": 2}
GENERATOR = "stockfish:skill=3,nodes=20,noise=0.3"
RUNGS = ("stockfish:skill=0,nodes=1", "random")


def difference_fit(model: PlayerRating, anchor_rating: float = 0.0) -> EloFit:
    """A hand-made fit anchored at the generator."""
    generator = PlayerRating("generator", "anchor", anchor_rating, anchor_rating, anchor_rating, 40, 20.0)
    return EloFit([model, generator], "generator", anchor_rating, 0.95, 80)


def test_the_verdict_rule_on_hand_made_fits() -> None:
    def verdict(kind: str, rating: float | None, lower: float | None, upper: float | None, base: float = 0.0) -> str:
        fit = difference_fit(PlayerRating("model", kind, rating, lower, upper, 40, 20.0), base)
        return transcendence_verdict(fit, "model").transcends

    assert verdict("estimate", 120, 30, 210) == "yes"
    assert verdict("estimate", 1120, 1030, 1210, base=1000) == "yes"  # relative to the generator's rating
    assert verdict("estimate", 1020, 990, 1050, base=1000) == "undetermined"  # lower end below the generator
    assert verdict("estimate", 60, 0, 120) == "undetermined"  # "above 0", strictly
    assert verdict("estimate", -150, -260, -40) == "no"
    assert verdict("estimate", 10, -80, 100) == "undetermined"
    assert verdict("estimate", 400, None, None) == "undetermined"  # interval ends beyond the search limit
    assert verdict("lower_bound", None, 35, None) == "yes"  # never lost a point to the generator's group
    assert verdict("lower_bound", None, -20, None) == "undetermined"
    assert verdict("upper_bound", None, None, -90) == "no"
    assert verdict("upper_bound", None, None, 15) == "undetermined"
    assert verdict("unconnected", None, None, None) == "undetermined"
    assert verdict("undetermined", None, None, None) == "undetermined"

    shown = transcendence_verdict(difference_fit(PlayerRating("model", "estimate", 1120, 1030, 1210, 40, 30.0), 1000),
                                  "model")
    assert (shown.difference, shown.lower, shown.upper) == (120, 30, 210)
    assert shown.reference == "generator" and "+30 > 0" in shown.reason
    assert shown.difference_text() == "+120 [+30, +210]"
    with pytest.raises(ValueError, match="anchor"):
        transcendence_verdict(difference_fit(PlayerRating("model", "estimate", 0, -1, 1, 1, 0.5)), "generator")
    with pytest.raises(KeyError):
        transcendence_verdict(difference_fit(PlayerRating("model", "estimate", 0, -1, 1, 1, 0.5)), "nobody")


def test_the_verdict_on_simulated_games_against_a_shared_ladder() -> None:
    """Games drawn from players of known strength: a model 300 Elo above the generator is a "yes", one 300
    below a "no", one equal to it "undetermined" (every player meets the same two rungs, 200 games each)."""
    rng = random.Random(7)
    truth = {"rung high": 300.0, "rung low": -300.0, "generator": 0.0}

    def games_for(player: str, strength: float) -> list[tuple[str, str, float]]:
        games = []
        for rung in ("rung high", "rung low"):
            expected = 1 / (1 + 10 ** ((truth[rung] - strength) / 400))
            games += [(player, rung, 1.0 if rng.random() < expected else 0.0) for _ in range(200)]
        return games

    base = games_for("generator", 0.0) + [("rung high", "rung low", 1.0 if rng.random() < 0.97 else 0.0)
                                          for _ in range(100)]
    for strength, expected in ((300.0, "yes"), (-300.0, "no"), (0.0, "undetermined")):
        fit = fit_elo(base + games_for("model", strength), anchor="generator", anchor_rating=0.0)
        assert transcendence_verdict(fit, "model").transcends == expected, fit.table()


def test_with_noise_rate() -> None:
    assert with_noise_rate("stockfish:skill=3,nodes=200,noise=0.3", 0.5) == "stockfish:skill=3,nodes=200,noise=0.5"
    assert with_noise_rate("random", 0.1) == "random:noise=0.1"
    assert with_noise_rate("stockfish:skill=3", None) == "stockfish:skill=3"
    with pytest.raises(UserError):
        with_noise_rate("random", 1.5)


def gamegpt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-m", "gamegpt.cli", *args], check=False, capture_output=True, text=True, timeout=300,
                          env=env)


def test_a_tiny_study_end_to_end_that_resumes_without_replaying(tmp_path: Path) -> None:
    out = tmp_path / "study"
    training = [arg for key, value in TINY_TRAINING.items() for arg in ("--set", f"{key}={value}")]
    args = ["experiment", "chess-transcendence", "--generator", GENERATOR, "--games", "220", *training,
            "--rung", RUNGS[0], "--rung", RUNGS[1], "--openings", str(BOOK), "--opening-count", "1",
            "--max-plies", "40", "--workers", "1", "--out", str(out), "--no-progress"]
    result = gamegpt(*args)
    assert result.returncode == 0, result.stderr
    names = ["model T=1", "model T=0.1", "model T=0.001", "generator", *RUNGS]
    table = (out / "table.txt").read_text()
    for name in names:
        assert name in table and name in result.stdout
    assert "transcends? " in table and f"wrote {out / 'summary.json'}" in result.stdout
    assert (out / "transcendence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "tournament" / "ratings.png").exists() and (out / "selfplay" / "games.pgn").exists()

    summary = json.loads((out / "summary.json").read_text())
    verdict = summary["verdict"]
    assert verdict["temperature"] == 0.001 and verdict["subject"] == "model T=0.001"
    assert verdict["reference"] == "generator" and verdict["transcends"] in ("yes", "no", "undetermined")
    for key in ("difference", "lower", "upper", "confidence", "reason"):
        assert key in verdict
    assert [v["temperature"] for v in summary["verdicts"]] == [1.0, 0.1, 0.001]
    assert {p["name"] for p in summary["ratings"]["players"]} == set(names)
    assert summary["ratings"]["anchor"] == RUNGS[0]  # no Stockfish at UCI_Elo 1350: the first rung, at 0
    # one tournament: 4 subjects x 2 rungs + the rungs' pairing, each with both colours
    records_path = out / "tournament" / "games.jsonl"
    records = list(iter_records(records_path))
    assert summary["tournament"]["games"] == len(records) == 2 * (4 * 2 + 1)
    players = {name for r in records for name in r.extra["entrants"]}
    assert players == set(names)
    refit = rate_records(records, anchor="generator", anchor_rating=0.0, players=names)
    assert transcendence_verdict(refit, "model T=0.001").to_dict() == {k: v for k, v in verdict.items()
                                                                        if k != "temperature"}

    # re-running continues: nothing is played or trained again
    model_files = {p: p.stat().st_mtime_ns for p in (out / "model").iterdir()}
    selfplay_bytes = (out / "selfplay" / "games.jsonl").read_bytes()
    tournament_bytes = records_path.read_bytes()
    cfg = ChessTranscendenceConfig(out_dir=str(out), generator=GENERATOR, games=220, ladder=list(RUNGS), book=str(BOOK),
                                   opening_count=1, max_plies=40, workers=1, train_overrides=TINY_TRAINING)
    again = run_chess_transcendence(cfg, progress=False)
    assert again["tournament"]["games_new"] == 0 and again["verdict"] == verdict
    assert records_path.read_bytes() == tournament_bytes
    assert (out / "selfplay" / "games.jsonl").read_bytes() == selfplay_bytes
    assert {p: p.stat().st_mtime_ns for p in model_files} == model_files

    # a tournament cut short (its last games lost) plays only the missing games and keeps the others
    lines = tournament_bytes.splitlines(keepends=True)
    records_path.write_bytes(b"".join(lines[:10]))
    resumed = run_chess_transcendence(cfg, progress=False)
    assert resumed["tournament"]["games_new"] == len(lines) - 10
    after = records_path.read_bytes()
    assert after.startswith(b"".join(lines[:10]))
    indices = sorted(r.index for r in iter_records(records_path))  # type: ignore[type-var]
    assert indices == list(range(len(lines)))

    other = gamegpt(*[a if a != "220" else "221" for a in args])  # more games would need another model
    assert other.returncode == 2 and "other settings" in other.stderr and "Traceback" not in other.stderr


def test_bad_specs_are_one_clear_line_before_any_work(tmp_path: Path) -> None:
    for option, spec in (("--generator", "stockfish:skil=3"), ("--rung", "stockfish:nodes=-x")):
        result = gamegpt("experiment", "chess-transcendence", option, spec, "--out", str(tmp_path / "x"), "--no-progress")
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert not (tmp_path / "x" / "experiment.json").exists()


def test_a_tiny_study_with_one_token_per_move(tmp_path: Path) -> None:
    cfg = ChessTranscendenceConfig(out_dir=str(tmp_path / "moves"), generator=GENERATOR, games=220, temperatures=(0.001,),
                                   ladder=["random"], book=str(BOOK), opening_count=1, max_plies=20, workers=1,
                                   codec="chess-uci-moves", train_overrides=TINY_TRAINING)
    summary = run_chess_transcendence(cfg, progress=False)
    meta = json.loads((tmp_path / "moves" / "data" / "meta.json").read_text())
    assert meta["codec"]["name"] == "chess-uci-moves" and meta["block_len"] == 256
    assert summary["model"]["vocab_size"] == meta["vocab_size"] > 1900  # one token per move, not characters
    assert summary["tournament"]["games"] == 2 * (2 * 1)  # the model and the generator against one rung
    assert "held-out loss" in (tmp_path / "moves" / "table.txt").read_text().splitlines()[0]
    assert "per move" in (tmp_path / "moves" / "table.txt").read_text().splitlines()[0]
    with pytest.raises(UserError, match="other settings"):  # the codec is one of the study's settings
        run_chess_transcendence(ChessTranscendenceConfig(**{**cfg.__dict__, "codec": "chess-pgn-chars"}),
                                progress=False)
    with pytest.raises(UserError, match="unknown codec"):
        ChessTranscendenceConfig(out_dir=str(tmp_path / "x"), codec="chess-san").validate()
