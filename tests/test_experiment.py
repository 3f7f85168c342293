"""The noise experiment and the default-model recipe, at tiny sizes: every step runs for real."""

from __future__ import annotations

import json
from pathlib import Path

from gamegpt.experiments.noise import NoiseExperimentConfig, format_noise_table, run_noise_experiment

TINY_TRAINING = {"n_layer": 1, "n_head": 2, "n_embd": 32, "max_steps": 40, "eval_interval": 20,
                 "checkpoint_interval": 20, "eval_batches": 2, "batch_size": 16}


def test_noise_experiment_table_and_resume(tmp_path: Path) -> None:
    cfg = NoiseExperimentConfig(out_dir=str(tmp_path / "noise"), noise_rates=(0.0, 0.8), train_games=300,
                                eval_games=8, train_overrides=TINY_TRAINING)
    summary = run_noise_experiment(cfg, progress=False)
    rows = summary["rows"]
    assert [row["noise"] for row in rows] == [0.0, 0.8]
    for row in rows:
        for column in ("teacher", "T=1", "T=0.001"):
            for key in ("vs_newell_simon", "vs_random"):
                assert 0.0 <= row[column][key] <= 1.0
        assert row["transcends"] in ("yes", "no", "tie")
        assert row["gain"] == row["T=0.001"]["overall"] - row["teacher"]["overall"]
    # the noise-free teacher is the perfect player: it never loses to itself
    assert rows[0]["teacher"]["vs_newell_simon"] == 0.5
    table = format_noise_table(rows)
    assert "transcends" in table and len(table.splitlines()) == 3 + len(rows) + 1
    out = tmp_path / "noise"
    assert (out / "transcendence.png").read_bytes()[:4] == b"\x89PNG"
    records = (out / "noise-0.8" / "selfplay.jsonl").read_text().splitlines()
    assert len(records) == 300 and json.loads(records[0])["players"][0]["noise"] == 0.8

    made = {p: p.stat().st_mtime_ns for p in out.glob("noise-*/*") if p.is_file()}
    made.update({p: p.stat().st_mtime_ns for p in out.glob("noise-*/model/*")})
    again = run_noise_experiment(cfg, progress=False)  # everything is there: nothing is redone
    assert again["rows"] == rows
    assert {p: p.stat().st_mtime_ns for p in made} == made
