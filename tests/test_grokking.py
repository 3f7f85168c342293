"""`gamegpt experiment grokking` at its tiny preset: curves that separate, resuming, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gamegpt.cli import main
from gamegpt.experiments.grokking import (
    GrokkingConfig,
    evaluation_steps,
    first_step_at,
    modular_task,
    reachable_positions,
    tictactoe_task,
)
from gamegpt.players.newell_simon import candidate_moves


def test_the_tasks_and_their_halves() -> None:
    task = modular_task(7, 0.5, 0)
    assert task.inputs.shape == (49, 2) and len(task.train) == 24 and len(task.val) == 25
    assert set(task.train.tolist()).isdisjoint(task.val.tolist())
    a, b = task.inputs[10].tolist()
    assert task.targets[10].argmax().item() == (a + b) % 7
    positions = reachable_positions()
    assert len(positions) == 4520  # reachable tic-tac-toe positions where the game is not over
    ttt = tictactoe_task(0.5, 0)
    cells, side = positions[123]
    assert sorted(ttt.targets[123].nonzero().ravel().tolist()) == candidate_moves(cells, side)[1]
    assert ttt.targets.sum(1).allclose(ttt.targets.new_ones(len(positions)))


def test_steps_helpers() -> None:
    steps = evaluation_steps(1000, 10)
    assert steps[0] == 0 and steps[1] == 1 and steps[-1] == 1000 and steps == sorted(set(steps))
    assert first_step_at([0, 10, 100], [0.1, 0.96, 1.0], 0.95) == 10
    assert first_step_at([0, 10], [0.1, 0.5], 0.95) is None


def _invoke(*args: str) -> "object":
    return CliRunner().invoke(main, ["experiment", "grokking", *args, "--no-progress"])


def test_a_tiny_run_fits_before_it_generalises_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "grok"
    result = _invoke("--preset", "tiny", "--tasks", "modular", "--out", str(out))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "modular" in result.output and "wrote" in result.output  # type: ignore[attr-defined]
    for name in ("summary.json", "table.txt", "grokking_curves.png", "steps_to_generalise.png", "experiment.json"):
        assert (out / name).stat().st_size > 0
    runs = sorted((out / "runs").glob("*.json"))
    assert [p.name for p in runs] == ["modular-wd0-seed0.json", "modular-wd1-seed0.json"]
    for path in runs:
        curve = json.loads(path.read_text())["curve"]
        assert curve["train_accuracy"][0] < 0.2 and curve["val_accuracy"][0] < 0.2
        gaps = [t - v for t, v in zip(curve["train_accuracy"], curve["val_accuracy"])]
        # the training half is learnt by heart while the held-out half stays near chance
        assert max(gaps) > 0.7, gaps
        assert curve["train_accuracy"][-1] == 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert all(row["median_steps_to_fit"] is not None for row in summary["rows"])
    # a re-run continues: nothing is trained again
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = _invoke("--preset", "tiny", "--tasks", "modular", "--out", str(out))
    assert again.exit_code == 0 and [p.stat().st_mtime_ns for p in runs] == stamps  # type: ignore[attr-defined]
    # other settings are refused, in one line
    other = _invoke("--preset", "tiny", "--tasks", "modular", "--steps", "100", "--out", str(out))
    assert other.exit_code == 2  # type: ignore[attr-defined]
    assert other.output.count("\n") == 1 and "other settings" in other.output  # type: ignore[attr-defined]


@pytest.mark.parametrize("args, message", [
    (["--tasks", "chess"], "unknown grokking task"),
    (["--weight-decays", "0,x"], "--weight-decays"),
    (["--weight-decays", "-1"], "weight decays must be"),
    (["--seeds", "0,0"], "given twice"),
    (["--modulus", "2"], "modulus"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = _invoke("--preset", "tiny", *args, "--out", str(tmp_path / "bad"))
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert result.output.count("\n") == 1 and result.output.startswith("error:") and message in result.output  # type: ignore[attr-defined]
    assert not (tmp_path / "bad").exists()


def test_config_settings_are_plain_json() -> None:
    settings = GrokkingConfig(out_dir="x").settings()
    assert "out_dir" not in settings and json.loads(json.dumps(settings)) == settings
