"""A one-layer model trained for a few steps on shards: the A/B runs of the auxiliary-loss tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gamegpt.core.train import TrainConfig, train


def train_tiny(shards: Path, out: Path, *, steps: int, batch_size: int, **settings: Any) -> list[dict[str, Any]]:
    """Train a 1-layer, 32-wide model on `shards` into `out` (seed 0, one thread, lr 3e-3 to 3e-4, a log line
    every 10 steps) with the extra TrainConfig `settings`; return the train events of its log."""
    cfg = TrainConfig(data_dir=str(shards), out_dir=str(out), n_layer=1, n_head=2, n_embd=32, batch_size=batch_size,
                      max_steps=steps, learning_rate=3e-3, min_lr=3e-4, warmup_steps=5, eval_interval=steps,
                      eval_batches=2, checkpoint_interval=steps, log_interval=10, seed=0, threads=1, **settings)
    train(cfg, progress=False)
    events = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [event for event in events if event["event"] == "train"]
