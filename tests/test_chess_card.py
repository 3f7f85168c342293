"""A chess model card is written from measurements made by the real tools (legality, Stockfish agreement,
a real gauntlet with the temperature sweep and the repetition aid), cached so a re-run measures nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    assert set(measured["legality"]) == {"selfplay T=1", "selfplay T=0.001"}
    first = measured["legality"]["selfplay T=1"]["by_move_number"]["1"]
    assert first["positions"] == 4 and f"{first['rate']:.1%}" in text
    assert measured["agreement"]["positions"] == 2 and "gamegpt train ..." in text and "nothing to note" in text
    cached = json.loads((tmp_path / "measured" / "agreement.json").read_text())
    assert cached["stockfish_top1_count"] == measured["agreement"]["stockfish_top1_count"]
