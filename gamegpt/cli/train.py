"""`gamegpt train`: a GPT trained on token shards."""

from __future__ import annotations

from typing import Sequence

import click

from gamegpt.cli.common import Command


@click.command(cls=Command)
@click.option("--data", "data_dir", type=click.Path(), default=None, help="token shard directory")
@click.option("--out", "out_dir", type=click.Path(), default=None, help="run directory (checkpoints, log)")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="YAML train config")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a config option (repeatable)")
@click.option("--resume", is_flag=True, help="continue exactly from the run's latest checkpoint")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def train(data_dir: str | None, out_dir: str | None, config_path: str | None, overrides: Sequence[str],
          resume: bool, no_progress: bool) -> None:
    """Train a GPT on token shards (CPU or CUDA, picked automatically; several processes under torchrun).

    \b
    Options (YAML keys or --set): n_layer n_head n_embd dropout batch_size max_steps learning_rate min_lr
    warmup_steps weight_decay grad_clip eval_interval checkpoint_interval keep_checkpoints seed device dtype
    threads board_head board_loss_weight legal_loss_weight distill_values distill_loss_weight
    distill_temperature init_from. Ctrl-C saves a checkpoint; --resume
    continues from it.
    """
    from gamegpt.core.train import load_train_config, parse_overrides, train as run_training

    options = parse_overrides(overrides)
    if data_dir:
        options["data_dir"] = data_dir  # a path as given, never read as YAML
    if out_dir:
        options["out_dir"] = out_dir
    cfg = load_train_config(config_path, options)
    result = run_training(cfg, resume=resume, progress=not no_progress)
    if result.checkpoint is not None:
        losses = f"train loss {result.train_loss:.4f}" if result.train_loss is not None else ""
        if result.val_loss is not None:
            losses += f", val loss {result.val_loss:.4f}"
        click.echo(f"step {result.step}: {losses}")
        click.echo(f"wrote {result.checkpoint}")
