"""`gamegpt model`: inspect and export checkpoints."""

from __future__ import annotations

import json

import click

from gamegpt.cli.common import Group


@click.group(cls=Group)
def model() -> None:
    """Inspect and export checkpoints."""


@model.command("export")
@click.argument("source", type=click.Path())
@click.argument("destination", type=click.Path(file_okay=False))
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True)
@click.option("--overwrite", is_flag=True)
def model_export(source: str, destination: str, dtype: str, overwrite: bool) -> None:
    """Copy a run's latest (or a given) checkpoint's model for shipping: config.json + model.safetensors."""
    from gamegpt.core.checkpoint import export_model

    path = export_model(source, destination, dtype=dtype, overwrite=overwrite)
    click.echo(f"wrote {path}")


@model.command("info")
@click.argument("path", type=click.Path())
def model_info(path: str) -> None:
    """Print a checkpoint's architecture, codec and training summary."""
    from gamegpt.core.checkpoint import read_checkpoint_config
    from gamegpt.engine.model_player import resolve_model_path

    config = read_checkpoint_config(resolve_model_path(path))
    meta = config.get("meta", {})
    click.echo(json.dumps({"path": str(config.get("path")), "model": config["model"], "codec": config.get("codec"),
                           "step": config.get("step", meta.get("step")), "train_loss": meta.get("train_loss"),
                           "val_loss": meta.get("val_loss")}, indent=2, default=str))
