"""`gamegpt experiment platonic` at a micro size: its outputs, resuming, refusals; and its pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gamegpt.cli import main
from gamegpt.experiments.platonic import (
    PlatonicConfig,
    TrainingData,
    board_labels,
    common_positions,
    probe_accuracy,
    run_platonic,
    snapshot_steps,
)

MICRO = dict(noise_rates=(0.0, 0.8), seeds=(0, 1), train_games=30, steps=8, batch_games=8, n_layer=1, n_embd=16,
             n_head=2, cnn_channels=(2, 4), cnn_hidden=16, positions=40, snapshots=2, k=4)


def test_training_data_gives_both_models_the_same_targets() -> None:
    data = TrainingData([[4, 0, 8], [0, 1, 2, 3]])
    assert data.tokens[0].tolist() == [9, 4, 0, 8, 10, 10, 10, 10, 10, 10]
    assert data.targets[0].tolist() == [4, 0, 8, -1, -1, -1, -1, -1, -1, -1]
    assert [move for _, move in data.positions[1]] == [0, 1, 2, 3]
    first_board = data.images[data.positions[0][1][0], 0]  # the picture before O's reply: X in the centre
    assert first_board[15, 15] == 1.0 and first_board[5, 5] == 0.0
    histories = common_positions([[4, 0, 8], [4, 0, 2]], 10, 0)
    assert sorted(map(tuple, histories)) == [(), (4,), (4, 0)]
    assert board_labels([[4, 0]])[0].tolist() == [2, 0, 0, 0, 1, 0, 0, 0, 0]
    assert snapshot_steps(100, 3) == [0, 1, 10, 100]


def test_the_probe_reads_a_board_written_in_the_features_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(200, 9))
    readable = np.eye(3)[labels].reshape(200, 27) @ rng.normal(size=(27, 40))  # a rotation of the one-hot board
    train, test = np.arange(100), np.arange(100, 200)
    assert probe_accuracy(readable, labels, train, test) > 0.95
    assert probe_accuracy(rng.normal(size=(200, 40)), labels, train, test) < 0.5


def test_a_micro_study_writes_its_results_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "platonic"
    summary = run_platonic(PlatonicConfig(out_dir=str(out), **MICRO), progress=False)  # type: ignore[arg-type]
    for name in ("summary.json", "table.txt", "alignment_vs_layer.png", "alignment_vs_step.png",
                 "probe_by_layer.png", "alignment.json", "probes.json"):
        assert (out / name).stat().st_size > 0, name
    assert len(list((out / "models").glob("*.npz"))) == 8  # 2 noise rates x 2 seeds x text and image
    rows = summary["alignment"]
    assert {r["pair"] for r in rows} == {"text-text", "image-image", "text-image"}
    assert all(0.0 <= r["mutual_knn"] <= 1.0 for r in rows)
    # at step 0 the image models' first layers of two seeds are far above chance: the pictures themselves
    conv1 = [r for r in rows if r["pair"] == "image-image" and r["step"] == 0 and r["layer_a"] == 0]
    assert all(r["mutual_knn"] > 2 * summary["chance"] for r in conv1)
    text_rows = [r for r in rows if r["pair"] == "text-image"]
    assert {(r["layer_a"], r["layer_b"]) for r in text_rows} == {(a, b) for a in range(2) for b in range(4)}
    assert "text-image" in (out / "table.txt").read_text()
    # a re-run trains nothing again and gives the same summary; other settings are refused in one line
    stamps = sorted(p.stat().st_mtime_ns for p in (out / "models").iterdir())
    again = run_platonic(PlatonicConfig(out_dir=str(out), **MICRO), progress=False)  # type: ignore[arg-type]
    assert sorted(p.stat().st_mtime_ns for p in (out / "models").iterdir()) == stamps
    assert json.dumps(again["alignment"]) == json.dumps(summary["alignment"])
    result = CliRunner().invoke(main, ["experiment", "platonic", "--preset", "tiny", "--out", str(out), "--no-progress"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "other settings" in result.output


@pytest.mark.parametrize("args, message", [
    (["--noise", "0,1.5"], "noise rates must be"),
    (["--noise", "zero"], "--noise"),
    (["--seeds", "0"], "at least two seeds"),
    (["--k", "0"], "k must be"),
    (["--positions", "5"], "at least 20 positions"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["experiment", "platonic", "--preset", "tiny", *args,
                                       "--out", str(tmp_path / "bad"), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error:") and message in result.output
    assert not (tmp_path / "bad").exists()
