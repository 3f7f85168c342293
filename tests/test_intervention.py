"""Probe interventions: the edit moves the probe's reading by exactly the asked margin; on a chess model with one
token per move the whole command runs end to end on real games (the shipped model, a real probe); a model whose
moves are several tokens is one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import chess
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gamegpt.cli import main
from gamegpt.core.checkpoint import save_model
from gamegpt.core.model import GPT, GPTConfig
from gamegpt.games import PgnCharCodec
from gamegpt.interp.intervention import _edit_vectors
from gamegpt.interp.probes import ProbeWeights

OPERA = str(Path(__file__).parent / "data" / "pgn" / "opera-game-1858.pgn")


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_the_edit_makes_the_probe_read_the_new_class_by_scale_times_the_margin(scale: float) -> None:
    rng = np.random.default_rng(0)
    probe = ProbeWeights(rng.standard_normal((32, 64, 13)), rng.standard_normal((64, 13)))
    x = rng.standard_normal(32)
    logits = probe.logits(x[None])[0]
    square = 10
    old = int(np.argmax(logits[square]))
    new = (old + 1) % 13
    margin = logits[square, new] - logits[square, old]
    assert margin < 0
    vector, random_vector = _edit_vectors(probe, x, square, old, new, scale, rng)
    after = probe.logits((x + vector)[None])[0]
    assert after[square, new] - after[square, old] == pytest.approx(scale * abs(margin))
    assert np.linalg.norm(random_vector) == pytest.approx(np.linalg.norm(vector))


@pytest.fixture(scope="module")
def chess_probes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Probes of the shipped chessgpt on a real game and 6 random ones (and their activation cache)."""
    probes = tmp_path_factory.mktemp("chess") / "probes"
    result = CliRunner().invoke(main, ["probe", "chess", "--model", "chessgpt", "--pgn", OPERA, "--expert-games", "1",
                                       "--random-games", "6", "--layers", "2", "--out", str(probes), "--no-progress"])
    assert result.exit_code == 0, result.output
    return probes


def test_chess_intervention_end_to_end(chess_probes: Path, tmp_path: Path) -> None:
    probes, out = chess_probes, tmp_path / "intervene"
    result = CliRunner().invoke(main, ["intervene", "chess", "--model", "chessgpt", "--probes", str(probes),
                                       "--layer", "2", "--positions", "40", "--scales", "1,8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "is its new top move legal on the edited board" in result.output
    summary = json.loads((out / "intervention.json").read_text())
    assert summary["game"] == "chess" and [r["scale"] for r in summary["rates"]] == [1.0, 8.0]
    rows = summary["rows"]
    assert rows and all(row["piece"] not in "Kk" for row in rows)
    for row in rows:  # the top move's piece is gone: no probability on its move, whatever the scale
        assert 0.0 <= row["clean_mass_on_edited_legal"] <= 1.0 and 0.0 <= row["probe_mass_on_edited_legal"] <= 1.0
    moved_piece = {scale: np.mean([r["probe_moves_removed_piece"] for r in rows if r["scale"] == scale])
                   for scale in (1.0, 8.0)}
    assert moved_piece[8.0] <= moved_piece[1.0]  # a larger edit moves the removed piece no more often
    assert (out / "intervention.png").stat().st_size > 0


def test_a_chess_sae_latent_clamped_shows_the_move_before_and_after(chess_probes: Path, tmp_path: Path) -> None:
    sae = tmp_path / "sae"
    result = CliRunner().invoke(main, ["sae", "train", "chess", "--model", "chessgpt", "--site", "resid", "--layer", "2",
                                       "--latents", "64", "--k", "4", "--sae-steps", "100", "--cache",
                                       str(chess_probes / "activations" / "chessgpt"), "--out", str(sae), "--no-progress"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["sae", "report", str(sae)])
    assert result.exit_code == 0, result.output
    clamp = json.loads((sae / "sae-report.json").read_text())["clamp"]
    for key in ("clean_move", "zeroed_move", "clamped_move"):  # one token per move: each is a UCI move
        assert chess.Move.from_uci(clamp[key])
    assert (sae / "sae-clamp.png").stat().st_size > 0


def test_a_character_pgn_chess_model_is_one_line(tmp_path: Path) -> None:
    torch.manual_seed(0)
    codec = PgnCharCodec()
    model = GPT(GPTConfig(codec.vocab_size, 64, n_layer=1, n_head=2, n_embd=16))
    save_model(tmp_path / "model", model, codec.spec(), {})
    probes = tmp_path / "probes"
    result = CliRunner().invoke(main, ["probe", "chess", "--model", str(tmp_path / "model"), "--pgn", OPERA,
                                       "--expert-games", "1", "--random-games", "2", "--out", str(probes),
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["intervene", "chess", "--model", str(tmp_path / "model"), "--probes",
                                       str(probes), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "one token per move" in result.output and len(result.output.strip().splitlines()) == 1
