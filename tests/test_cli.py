"""The gamegpt command as a user runs it: the pipeline end to end, and bad input giving one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def gamegpt(*args: str, stdin: str | None = None, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-m", "gamegpt.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def assert_user_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_pipeline_selfplay_shards_train_eval(tmp_path: Path) -> None:
    records = tmp_path / "games.jsonl"
    result = gamegpt("selfplay", "tictactoe", "--x", "newell-simon", "--o", "random", "--noise", "0.2",
                     "--games", "400", "--seed", "3", "--out", str(records))
    assert result.returncode == 0, result.stderr
    assert f"wrote {records}" in result.stdout
    assert len(records.read_text().splitlines()) == 400
    first = json.loads(records.read_text().splitlines()[0])
    assert first["players"][0]["noise"] == 0.2 and first["players"][1]["noise"] == 0.2

    data = tmp_path / "data"
    assert gamegpt("data", "shards", str(records), "--out", str(data)).returncode == 0
    meta = json.loads((data / "meta.json").read_text())
    assert meta["codec"]["name"] == "tictactoe-cells" and meta["dtype"] == "uint8"

    run = tmp_path / "run"
    result = gamegpt("train", "--data", str(data), "--out", str(run), "--no-progress", "--set", "max_steps=30",
                     "--set", "n_layer=1", "--set", "n_embd=32", "--set", "eval_interval=10",
                     "--set", "checkpoint_interval=10")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "step 30" in result.stdout

    out = tmp_path / "eval"
    result = gamegpt("eval", "tictactoe", "--model", str(run), "--temperatures", "1,0", "--games", "10",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "results.json").read_text())
    assert len(summary["results"]) == 2 * 2 * 2  # temperatures x opponents x sides
    assert all(r["wins"] + r["draws"] + r["losses"] == 10 for r in summary["results"])
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_enumeration_prints_its_count(tmp_path: Path) -> None:
    result = gamegpt("selfplay", "tictactoe", "--enumerate", "--out", str(tmp_path / "all.jsonl"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1368 games")
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 1368


def test_malformed_records_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"game": "tictactoe", "moves": ["4"], "result": "1-0"}\n{oops\n{"game": "x"}\n')
    assert_user_error(gamegpt("data", "shards", str(bad), "--out", str(tmp_path / "d")), "bad.jsonl:2")
    illegal = tmp_path / "illegal.jsonl"
    illegal.write_text('{"game": "tictactoe", "moves": ["4", "4"], "result": "*"}\n')
    assert_user_error(gamegpt("data", "shards", str(illegal), "--out", str(tmp_path / "d")), "illegal")
    assert_user_error(gamegpt("data", "shards", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "d")),
                      "not found")
    assert_user_error(gamegpt("data", "shards", str(illegal), "--exclude", str(tmp_path / "gone.jsonl"),
                              "--out", str(tmp_path / "d")), "gone.jsonl")


@pytest.mark.parametrize("damage", ["truncate", "garbage-weights", "garbage-config", "missing"])
def test_corrupt_checkpoint(tiny_model: Path, tmp_path: Path, damage: str) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    weights = broken / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "garbage-weights":
        weights.write_bytes(b"\x00" * 64)
    elif damage == "garbage-config":
        (broken / "config.json").write_text("{not json")
    else:
        weights.unlink()
    result = gamegpt("eval", "tictactoe", "--model", str(broken), "--games", "2", "--out", str(tmp_path / "e"))
    assert_user_error(result, str(broken))


def test_unknown_player_and_bad_options(tmp_path: Path) -> None:
    out = str(tmp_path / "g.jsonl")
    assert_user_error(gamegpt("selfplay", "tictactoe", "--x", "deep-blue", "--out", out), "unknown player 'deep-blue'")
    assert_user_error(gamegpt("selfplay", "tictactoe", "--x", "random:noise=7", "--out", out), "noise")
    assert_user_error(gamegpt("eval", "tictactoe", "--model", str(tmp_path / "none")), "model not found")
    bad_config = tmp_path / "train.yaml"
    bad_config.write_text("n_layer: 2\nlearning_rat: 0.1\n")
    assert_user_error(gamegpt("train", "--config", str(bad_config), "--data", "x", "--out", "y"), "learning_rat")
    assert_user_error(gamegpt("train", "--data", str(tmp_path), "--out", str(tmp_path / "r")), str(tmp_path))
    # One --set parser, checked before any work, for training, recipes and experiments.
    assert_user_error(gamegpt("train", "--data", "x", "--out", "y", "--set", "n_layr=2"), "unknown option(s) n_layr")
    assert_user_error(gamegpt("recipe", "tictactoe", "--out", str(tmp_path / "recipe"), "--set", "n_layer"),
                      "--set 'n_layer': expected key=value")
    assert_user_error(gamegpt("experiment", "noise", "--out", str(tmp_path / "noise"), "--set", "n_layr=2"),
                      "unknown option(s) n_layr")
    assert not (tmp_path / "recipe").exists() and not (tmp_path / "noise").exists()


def test_play_in_the_terminal(tiny_model: Path) -> None:
    moves = "\n".join(["9", "x", "4", "4", "0", "1", "2", "3", "5", "6", "7", "8"]) + "\n"
    result = gamegpt("play", "tictactoe", "--model", str(tiny_model), "--seed", "1", stdin=moves)
    assert result.returncode == 0, result.stderr
    assert "not a tic-tac-toe cell" in result.stdout and "illegal here: 4" in result.stdout
    assert "model plays" in result.stdout
    assert any(end in result.stdout for end in ("draw", "you win", "the model wins"))
    quit_early = gamegpt("play", "tictactoe", "--model", str(tiny_model), "--as", "o", stdin="quit\n")
    assert quit_early.returncode == 0 and "you left the game" in quit_early.stdout


def test_help_lists_every_area() -> None:
    result = gamegpt("--help")
    for area in ("selfplay", "data", "train", "model", "eval", "experiment", "recipe", "play"):
        assert area in result.stdout


def test_example_train_config_is_valid() -> None:
    from gamegpt.core.train import load_train_config

    path = Path(__file__).resolve().parents[1] / "configs" / "train-tictactoe.yaml"
    cfg = load_train_config(path, {"data_dir": "d", "out_dir": "o"})
    assert cfg.n_layer == 3 and cfg.max_steps == 2500
