"""The compute-matched recipe study, end to end at toy size: real self-play records, real training to a
CPU-second budget, real Stockfish labels and a real gauntlet; re-running continues, other settings refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gamegpt.cli import main
from gamegpt.core.checkpoint import read_checkpoint_config
from gamegpt.errors import UserError
from gamegpt.experiments.chess_recipes import ChessRecipesConfig, Recipe, SNAPSHOT_FRACTIONS, run_chess_recipes
from gamegpt.games.chess_move_values import MoveValueTable
from gamegpt.selfplay.move_values import labelling_seconds
from gamegpt.selfplay.runner import run_selfplay

TINY = {
    "tiny-moves": Recipe("chess-uci-moves", 32, 1, 2, 32, 4, 3e-3, "one token per move, 1x32"),
    "tiny-position": Recipe("chess-position-move", None, 1, 2, 32, 8, 3e-3, "position then move, 1x32, legal loss",
                            max_games=6, legal_loss_weight=1.0),
    "tiny-teacher": Recipe("chess-uci-moves", 32, 1, 2, 32, 4, 3e-3, "one token per move, 1x32, a teacher on 3 games",
                           teacher_games=3, teacher_nodes=50),
}
LADDER = ("stockfish:skill=0,nodes=20,noise=0.5", "random")


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("recipes-records")
    train, held_out = folder / "train.jsonl", folder / "held-out.jsonl"
    spec = "random"  # seeded by (seed, game): the same games every run (Stockfish below Skill 20 is not)
    run_selfplay("chess", [spec, spec], n_games=24, seed=1, out=train, max_plies=60, progress=False)
    run_selfplay("chess", [spec, spec], n_games=6, seed=2, out=held_out, max_plies=60, progress=False)
    return train, held_out


def config(out: Path, records: tuple[Path, Path], **changes: object) -> ChessRecipesConfig:
    settings = dict(out_dir=str(out), train_records=str(records[0]), held_out_records=str(records[1]),
                    recipes=list(TINY), budget_seconds=3.0, legality_games=4, agreement_positions=4,
                    agreement_nodes=500, opening_count=1, max_plies=40, workers=1, ladder=list(LADDER),
                    extra_recipes=TINY)
    settings.update(changes)
    return ChessRecipesConfig(**settings)  # type: ignore[arg-type]


def test_every_recipe_gets_the_budget_and_the_same_measures(tmp_path: Path, records: tuple[Path, Path]) -> None:
    out = tmp_path / "study"
    summary = run_chess_recipes(config(out, records), progress=False)
    rows = summary["rows"]
    assert [(row["recipe"], row["fraction"]) for row in rows] == [
        (name, fraction) for name in TINY for fraction in SNAPSHOT_FRACTIONS]
    for name in TINY:
        plan = json.loads((out / "runs" / name / "budget.json").read_text())
        final = next(row for row in rows if row["recipe"] == name and row["fraction"] == 1.0)
        # the planned steps spend the budget: the CPU seconds spent land near it (probe noise aside)
        assert 0.3 * plan["budget_cpu_seconds"] < final["train_cpu_seconds"] < 4 * plan["budget_cpu_seconds"]
        assert set(final["legality"]) == {"1", "2", "10", "20", "40", "60"}
        assert final["legality_positions"]["1"] == 2 * 4  # both plies of move 1 in each of 4 games
        assert 0.0 <= final["stockfish_top1"] <= 1.0
        assert "elo" in final
        spent = [row["train_cpu_seconds"] for row in rows if row["recipe"] == name]
        assert spent == sorted(spent) and spent[0] < spent[-1]
    teacher = next(row for row in rows if row["recipe"] == "tiny-teacher" and row["fraction"] == 1.0)
    teacher_table = out / "teachers" / "nodes50-first3"
    assert teacher["teacher_seconds"] == labelling_seconds(teacher_table) > 0
    assert len(MoveValueTable.load(teacher_table)) > 3
    assert read_checkpoint_config(teacher["model"])["meta"]["train_config"]["distill_values"] == str(teacher_table)
    assert all(row["teacher_seconds"] is None for row in rows if row["recipe"] != "tiny-teacher")
    positions = json.loads((out / "agreement-positions.json").read_text())
    assert len(positions) == 4
    rated = {player["name"]: player for player in summary["ratings"]["players"]}
    assert set(TINY) | {"random"} <= set(rated) and all(rated[name]["games"] > 0 for name in TINY)
    table = (out / "table.txt").read_text()
    assert "tiny-moves" in table and "tiny-position" in table and "label_s" in table
    assert (out / "recipes.png").stat().st_size > 0

    again = run_chess_recipes(config(out, records), progress=False)  # everything is there: nothing retrains
    assert again["rows"] == rows
    with pytest.raises(UserError, match="other settings"):
        run_chess_recipes(config(out, records, budget_seconds=5.0), progress=False)


def test_bad_settings_are_one_line(tmp_path: Path, records: tuple[Path, Path]) -> None:
    with pytest.raises(UserError, match="unknown recipe 'nope'"):
        run_chess_recipes(config(tmp_path / "a", records, recipes=["nope"]), progress=False)
    result = CliRunner().invoke(main, ["experiment", "chess-recipes", "--train-records", str(tmp_path / "none.jsonl"),
                                       "--held-out", str(records[1]), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2, result.output
    assert "no such records file" in result.output and "Traceback" not in result.output
