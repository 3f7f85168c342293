"""`gamegpt uci`: the model as a UCI engine on stdin/stdout."""

from __future__ import annotations

import click

from gamegpt.cli.common import Command


@click.command(cls=Command)
@click.option("--model", "model_path", default=None,
              help="checkpoint path, shipped model name or nanoGPT ckpt.pt (default: chessgpt; "
                   "also the UCI option Model)")
def uci(model_path: str | None) -> None:
    """Run ChessGPT as a UCI engine on stdin/stdout: add `gamegpt uci` as an engine in any chess GUI or
    tournament manager. Options (Model, Policy, Temperature, Seed, ...) are set through the GUI."""
    from gamegpt.engine.uci import main as uci_main

    uci_main(model_path)
