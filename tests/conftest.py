"""Shared fixtures: a tiny trained tic-tac-toe model, built once per test session from real self-play."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.pop("PYTHONUNBUFFERED", None)
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model trained for 400 steps on Newell–Simon vs random games (a few seconds)."""
    from gamegpt.core.checkpoint import export_model
    from gamegpt.core.train import TrainConfig, train
    from gamegpt.selfplay.dataset import records_to_shards
    from gamegpt.selfplay.runner import run_selfplay

    root = tmp_path_factory.mktemp("tiny-model")
    records = []
    for number, specs in enumerate((["newell-simon", "random"], ["random", "newell-simon"])):
        path = root / f"games-{number}.jsonl"
        run_selfplay("tictactoe", specs, n_games=1500, seed=number, out=path, progress=False)
        records.append(path)
    records_to_shards(records, root / "data", game="tictactoe", seed=0)
    cfg = TrainConfig(data_dir=str(root / "data"), out_dir=str(root / "run"), n_layer=2, n_head=4, n_embd=64,
                      batch_size=32, max_steps=400, learning_rate=3e-3, min_lr=3e-4, warmup_steps=20,
                      eval_interval=400, eval_batches=2, checkpoint_interval=400, seed=0)
    train(cfg, progress=False)
    return export_model(root / "run", root / "model")


@pytest.fixture(scope="session")
def untrained_chess_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight char-PGN model (1 layer, 32 wide): its raw samples are mostly illegal (every fallback
    gets exercised) and with the legality mask it plays legal, aimless chess."""
    from gamegpt.core.checkpoint import save_model
    from gamegpt.core.model import GPT, GPTConfig
    from gamegpt.games.chess_codecs import PgnCharCodec

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=32, block_size=1024, n_layer=1, n_head=2, n_embd=32))
    return save_model(tmp_path_factory.mktemp("untrained") / "model", model, PgnCharCodec().spec(), {})



@pytest.fixture(scope="session")
def tictactoe_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Token shards of 40 tic-tac-toe games (Newell–Simon against random): data of a game without chess labels."""
    from gamegpt.selfplay.dataset import records_to_shards
    from gamegpt.selfplay.runner import run_selfplay

    folder = tmp_path_factory.mktemp("tictactoe-shards")
    run_selfplay("tictactoe", ["newell-simon", "random"], n_games=40, seed=0, out=folder / "games.jsonl",
                 progress=False)
    records_to_shards([folder / "games.jsonl"], folder / "shards", game="tictactoe", block_len=16, val_fraction=0.2)
    return folder / "shards"
