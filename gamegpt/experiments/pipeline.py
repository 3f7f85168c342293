"""Game records → token shards → training → exported model, each step done once and resumable: what every
recipe and experiment runs between its self-play and its evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from gamegpt.core.checkpoint import export_model
from gamegpt.core.train import TrainConfig, train
from gamegpt.selfplay.dataset import records_to_shards


def train_model_on_records(records: Sequence[str | Path], cfg: TrainConfig, model_dir: str | Path, *, game: str,
                           codec_name: str | None = None, block_len: int | None = None, seed: int = 0,
                           progress: bool = True) -> bool:
    """Shards in `cfg.data_dir` (made unless there), training in `cfg.out_dir` (resumed from its latest
    checkpoint after an interruption), the model exported to `model_dir` (skipped, with everything before it,
    once that holds a model). Returns True if it trained."""
    model_dir = Path(model_dir)
    if (model_dir / "config.json").exists():
        return False
    if not (Path(cfg.data_dir) / "meta.json").exists():
        records_to_shards(records, cfg.data_dir, game=game, codec_name=codec_name, block_len=block_len, seed=seed)
    train(cfg, resume=(Path(cfg.out_dir) / "checkpoints" / "latest").exists(), progress=progress)
    export_model(cfg.out_dir, model_dir)
    return True
