"""gamegpt.interp on tiny models and planted signals: probes reach ~100 % where the board is encoded by
construction and stay at the baseline on noise, an SAE recovers a planted sparse code, and bad input (a model
of another game, a layer out of range, a corrupt cache) is one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gamegpt.core.checkpoint import save_model
from gamegpt.core.model import GPT, GPTConfig
from gamegpt.interp.activations import ActivationCache, build_cache, load_studied_model, logits_all
from gamegpt.interp.labels import board_classes, position_labels, to_relative
from gamegpt.interp.probe_study import probe_cache
from gamegpt.interp.probes import majority_baseline, probe_layer
from gamegpt.interp.sae import SAEConfig, reconstruction_metrics, train_sae
from gamegpt.interp.sources import tictactoe_games
from gamegpt.games import TicTacToe, TicTacToeCodec


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _tiny_model(path: Path, codec_spec: dict, vocab: int, block: int = 16) -> Path:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab, block, n_layer=2, n_head=2, n_embd=16))
    save_model(path, model, codec_spec, {})
    return path


def _planted_cache(tmp_path: Path, encode_board: bool) -> ActivationCache:
    """A cache written by hand: tic-tac-toe positions of real games, whose layer-1 activations are a random
    projection of the one-hot board (plus a little noise) or pure noise."""
    games = tictactoe_games(60, 60, seed=1)
    boards, plies, game_index, sides = [], [], [], []
    for g, record in enumerate(games):
        game = TicTacToe()
        for ply, move in enumerate(record["moves"]):
            boards.append(board_classes(game))
            sides.append(game.to_move)
            plies.append(ply)
            game_index.append(g)
            game.push(int(move))
    rng = np.random.default_rng(0)
    n, width = len(boards), 24
    onehot = np.zeros((n, 27))
    onehot[np.arange(n)[:, None], np.arange(9)[None, :] * 3 + np.array(boards)] = 1
    signal = onehot @ rng.standard_normal((27, width)) if encode_board else 0
    resid = np.stack([rng.standard_normal((n, width)), signal + 0.05 * rng.standard_normal((n, width))]).astype(np.float32)
    path = tmp_path / ("board" if encode_board else "noise")
    path.mkdir()
    np.save(path / "resid.npy", resid)
    np.save(path / "mlp.npy", resid[1:])
    positions = {"game_index": game_index, "ply": plies, "board": boards, "side_to_move": sides,
                 "board_relative": [to_relative(b, s, "tictactoe") for b, s in zip(boards, sides)]}
    (path / "labels.json").write_text(json.dumps({"games": games, "positions": positions}))
    (path / "meta.json").write_text(json.dumps({"game": "tictactoe", "n_layer": 1, "width": width, "positions": n,
                                                "model": "planted", "fingerprint": "x"}))
    return ActivationCache(path)


def test_probe_reads_a_board_encoded_by_construction_and_not_noise(tmp_path: Path) -> None:
    encoded = probe_cache(_planted_cache(tmp_path, True), [0, 1], seed=0, steps=20)
    assert encoded["board (white/black)"]["accuracy"][1] > 0.99
    noise_cache = _planted_cache(tmp_path, False)
    noise = probe_cache(noise_cache, [1], seed=0, steps=20)
    board = noise_cache.labels["board"]
    baseline = majority_baseline(board[:300], board[300:], 3)
    assert abs(noise["board (white/black)"]["accuracy"][0] - baseline) < 0.1
    assert encoded["board (white/black)"]["accuracy"][0] < 0.8  # layer 0 is noise in both


def test_probe_on_pure_noise_stays_at_the_majority_baseline() -> None:
    rng = np.random.default_rng(1)
    y = rng.choice(3, size=(600, 4), p=[0.6, 0.3, 0.1])
    x = rng.standard_normal((600, 32))
    scores, _ = probe_layer(x[:400], y[:400], x[400:], y[400:], 3, steps=20)
    assert scores["accuracy"] < majority_baseline(y[:400], y[400:], 3) + 0.05


def test_labels_of_a_position() -> None:
    game = TicTacToe([4, 0, 8])
    labels = position_labels(game)
    assert labels["board"] == [2, 0, 0, 0, 1, 0, 0, 0, 1]
    assert labels["board_relative"] == [1, 0, 0, 0, 2, 0, 0, 0, 2]  # O to move: O's marks are "mine"
    assert labels["side_to_move"] == 1
    assert labels["value"] == 1  # centre, opposite corners: O draws with a corner
    assert position_labels(TicTacToe([4, 1]))["value"] == 2  # O took an edge after the centre: X wins by force
    assert position_labels(TicTacToe())["value"] == 1  # the empty board is a draw


def test_cache_of_a_tiny_model_matches_its_forward_pass_and_is_reused(tmp_path: Path) -> None:
    codec = TicTacToeCodec()
    path = _tiny_model(tmp_path / "ttt", codec.spec(), codec.vocab_size)
    studied = load_studied_model(str(path), "tictactoe")
    games = tictactoe_games(3, 3, seed=0)
    cache = build_cache(studied, games, tmp_path / "cache")
    assert cache.resid.shape == (3, sum(len(g["moves"]) for g in games), 16)
    record: dict = {}
    tokens = codec.encode_game([int(m) for m in games[0]["moves"]])
    logits_all(studied.model, tokens, record=record)
    np.testing.assert_allclose(cache.site("resid", 2)[:len(games[0]["moves"])],
                               record[("resid", 2)][0, :len(games[0]["moves"])].numpy(), atol=1e-5)
    stamp = (tmp_path / "cache" / "meta.json").stat().st_mtime_ns
    build_cache(studied, games, tmp_path / "cache")
    assert (tmp_path / "cache" / "meta.json").stat().st_mtime_ns == stamp


def test_sae_recovers_a_planted_sparse_code() -> None:
    rng = np.random.default_rng(0)
    n, width, features = 4000, 16, 24
    directions = rng.standard_normal((features, width))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    codes = (rng.random((n, features)) < 0.08) * rng.uniform(1, 2, (n, features))
    x = (codes @ directions).astype(np.float32)
    sae = train_sae(x, SAEConfig(width=width, latents=48, kind="topk", k=4, steps=600, lr=1e-2, batch_size=256))
    metrics = reconstruction_metrics(sae, x)
    assert metrics["variance_explained"] > 0.9
    assert metrics["l0"] <= 4
    learned = sae.W_dec.detach().numpy()
    best = np.abs(directions @ learned.T).max(axis=1)
    assert np.mean(best > 0.9) > 0.8  # most planted directions have a latent that points along them


def _cli(args: list[str]) -> tuple[int, str]:
    from gamegpt.cli import main

    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    codec = TicTacToeCodec()
    path = _tiny_model(tmp_path / "ttt", codec.spec(), codec.vocab_size)
    code, output = _cli(["probe", "chess", "--model", str(path), "--out", str(tmp_path / "o"), "--random-games", "2",
                         "--expert-games", "0"])
    assert code == 2 and output.strip().startswith("error:") and "plays tictactoe, not chess" in output
    assert len(output.strip().splitlines()) == 1
    code, output = _cli(["probe", "tictactoe", "--model", str(path), "--layers", "7", "--out", str(tmp_path / "o")])
    assert code == 2 and "layer 7 is out of range" in output and len(output.strip().splitlines()) == 1
    cache = build_cache(load_studied_model(str(path), "tictactoe"), tictactoe_games(2, 2, 0), tmp_path / "cache")
    (cache.path / "resid.npy").write_bytes(b"not an array")
    code, output = _cli(["sae", "train", "tictactoe", "--model", str(path), "--cache", str(cache.path),
                         "--out", str(tmp_path / "sae")])
    assert code == 2 and "corrupt" in output and len(output.strip().splitlines()) == 1
