"""A chess model card is written from measurements made by the real tools (legality, Stockfish agreement,
a real gauntlet with the temperature sweep and the repetition aid), cached so a re-run measures nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gamegpt.cli import main
from gamegpt.experiments.chess_card import SWEEP, ChessCardConfig, measure_chess_model, write_chess_card
from gamegpt.selfplay.runner import run_selfplay


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("card") / "held-out.jsonl"
    spec = "stockfish:skill=0,nodes=10,noise=0.3"
    run_selfplay("chess", [spec, spec], n_games=3, seed=5, out=path, max_plies=50, progress=False)
    return path


def test_the_card_states_what_was_measured(tmp_path: Path, untrained_chess_model: Path, held_out: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for file in untrained_chess_model.iterdir():
        (model / file.name).write_bytes(file.read_bytes())
    cfg = ChessCardConfig(model=str(model), name="toy", out_dir=str(tmp_path / "measured"),
                          held_out={"selfplay": str(held_out)}, legality_games=2, agreement_positions=2,
                          agreement_nodes=200, opening_count=1, ladder=["random"], workers=1)
    card = write_chess_card(cfg, intro="A toy.", commands=["gamegpt train ..."], notes=["nothing to note"])
    text = card.read_text()
    measured = measure_chess_model(cfg)  # from the cache: the same numbers
    ratings = {r["name"]: r for r in measured["tournament"]["ratings"]["players"]}
    assert set(ratings) == {f"toy{suffix}" for suffix, _ in SWEEP} | {"random"}
    for suffix, _ in SWEEP:
        assert f"| `toy{suffix}` |" in text
        assert ratings[f"toy{suffix}"]["games"] == 2  # one opening, both colours, against the one rung
    assert "avoid_repetition=true" in measured["tournament"]["subjects"]["toy-avoid-repetition"]
    assert set(measured["outcomes"]) == set(measured["tournament"]["subjects"])
    assert measured["outcomes"]["toy"]["random"]["games"] == 2 and "How each entrant's games ended" in text
    assert set(measured["legality"]) == {"selfplay T=1", "selfplay T=0.001"}
    first = measured["legality"]["selfplay T=1"]["by_move_number"]["1"]
    assert first["positions"] == 4 and f"{first['rate']:.1%}" in text
    assert measured["agreement"]["positions"] == 2 and "gamegpt train ..." in text and "nothing to note" in text
    cached = json.loads((tmp_path / "measured" / "agreement.json").read_text())
    assert cached["stockfish_top1_count"] == measured["agreement"]["stockfish_top1_count"]
    assert set(measured["mates"]) == {"selfplay"} and "## Mate in one" in text
    assert measured["mates"]["selfplay"]["table"] in text
    assert measured["puzzles"]["attempted"] == 0 and measured["puzzles"]["skipped"]  # FEN-only, read by no history
    assert "all 1000 were skipped" in text
    assert json.loads((model / "measurements.json").read_text())["agreement"] == measured["agreement"]


def test_the_card_command_reads_its_words_from_yaml_and_rejects_bad_input(
        tmp_path: Path, untrained_chess_model: Path, held_out: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for file in untrained_chess_model.iterdir():
        (model / file.name).write_bytes(file.read_bytes())
    (model / "card.yaml").write_text("intro: A toy from YAML.\ncommands:\n  - gamegpt train --data d\nnotes:\n  - a note\n")
    base = ["model", "card", str(model), "--out", str(tmp_path / "measured")]
    tiny = ["--legality-games", "1", "--agreement-positions", "1", "--agreement-nodes", "100", "--opening-count", "1",
            "--puzzle-limit", "3", "--rung", "stockfish:skill=0,nodes=10", "--workers", "1"]  # a spec with commas
    bad = {("--held-out", "no-label-here"): "expected LABEL=RECORDS",
           ("--held-out", f"x={tmp_path / 'missing.jsonl'}"): "no file",
           ("--held-out", f"x={held_out}", "--agreement-from", "y"): "not a --held-out label",
           ("--held-out", f"x={held_out}", "--text", str(tmp_path / "nothing.yaml")): "card text"}
    for args, message in bad.items():
        result = CliRunner().invoke(main, [*base, *args, *tiny])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "measured").exists()  # nothing measured on bad input
    result = CliRunner().invoke(main, [*base, "--held-out", f"selfplay={held_out}", "--name", "toy", *tiny])
    assert result.exit_code == 0, result.output
    text = (model / "README.md").read_text()
    assert text.startswith("# toy\n\nA toy from YAML.") and "gamegpt train --data d" in text and "- a note" in text
    assert "all 3 were skipped" in text and "stockfish:skill=0,nodes=10" in text
