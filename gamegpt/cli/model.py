"""`gamegpt model`: inspect and export checkpoints, and write a chess model's measured card."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gamegpt.cli.common import Group
from gamegpt.errors import UserError


@click.group(cls=Group)
def model() -> None:
    """Inspect and export checkpoints."""


@model.command("export")
@click.argument("source", type=click.Path())
@click.argument("destination", type=click.Path(file_okay=False))
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True)
@click.option("--overwrite", is_flag=True,
              help="replace DESTINATION as a whole (atomically): files beside the model there, such as a card, go too")
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


@model.command("card")
@click.argument("model_name")
@click.option("--held-out", "held_out", multiple=True, required=True, metavar="LABEL=RECORDS",
              help="held-out game records (JSONL) never trained on, with a label, e.g. human=data/twic-heldout.jsonl "
                   "(repeatable; the first gives the agreement positions unless --agreement-from says otherwise)")
@click.option("--text", "text_path", type=click.Path(dir_okay=False), default=None,
              help="YAML with the card's words: intro (text), commands (list of lines), notes (list)  "
                   "[default: card.yaml in the model's directory]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="where the measurements are cached (a re-run continues from them)")
@click.option("--name", default=None, help="the model's name in tables [default: its directory's name]")
@click.option("--agreement-from", default=None, help="the --held-out label whose games give the agreement positions")
@click.option("--legality-games", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--agreement-positions", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--agreement-nodes", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--mate-positions", type=click.IntRange(min=1), default=200, show_default=True,
              help="mate-in-one positions per held-out set (the first of each game that has one)")
@click.option("--opening-count", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--puzzle-limit", type=click.IntRange(min=1), default=None, help="the first N shipped puzzles only")
@click.option("--ladder", default="default", show_default=True, help="ladder preset (see gamegpt tournament)")
@click.option("--rung", "rungs", multiple=True, metavar="[NAME=]SPEC",
              help="a ladder rung, strongest first (repeatable; replaces --ladder)")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="tournament processes")
def model_card(model_name: str, held_out: tuple[str, ...], text_path: str | None, out_dir: str, name: str | None,
               agreement_from: str | None, legality_games: int, agreement_positions: int, agreement_nodes: int,
               mate_positions: int, opening_count: int, puzzle_limit: int | None, ladder: str, rungs: tuple[str, ...],
               workers: int) -> None:
    """Measure a chess model and write its card (README.md and measurements.json in the model's directory).

    Measures the raw legal-move rate by move number on each held-out set (T=1 and 0.001), masked top-1 agreement
    with Stockfish, mate in one on each held-out set, the shipped Lichess puzzles and one gauntlet against the
    ladder with the temperature sweep and the repetition aid. About 10 minutes on 2 cores for the shipped
    chessgpt at the defaults."""
    import yaml

    from gamegpt.engine.model_player import resolve_model_path
    from gamegpt.experiments.chess_card import ChessCardConfig, write_chess_card

    model_dir = resolve_model_path(model_name)
    sets: dict[str, str] = {}
    for item in held_out:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise UserError(f"--held-out {item!r}: expected LABEL=RECORDS")
        if not Path(path).is_file():
            raise UserError(f"--held-out {label}: no file {path}")
        sets[label] = path
    if agreement_from is not None and agreement_from not in sets:
        raise UserError(f"--agreement-from {agreement_from!r} is not a --held-out label ({', '.join(sets)})")
    text_file = Path(text_path) if text_path else model_dir / "card.yaml"
    try:
        words = yaml.safe_load(text_file.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"card text {text_file}: {e}") from None
    if not isinstance(words, dict) or not isinstance(words.get("intro"), str) or not isinstance(words.get("commands"), list):
        raise UserError(f"card text {text_file}: needs 'intro' (text) and 'commands' (a list), optionally 'notes' (a list)")
    cfg = ChessCardConfig(model=model_name, name=name or model_dir.name, out_dir=out_dir, held_out=sets,
                          legality_games=legality_games, agreement_from=agreement_from,
                          agreement_positions=agreement_positions, agreement_nodes=agreement_nodes,
                          mate_positions=mate_positions, opening_count=opening_count, puzzle_limit=puzzle_limit,
                          ladder=list(rungs) if rungs else ladder, workers=workers)
    path = write_chess_card(cfg, intro=words["intro"].strip(), commands=[str(c) for c in words["commands"]],
                            notes=[str(n) for n in words.get("notes") or []])
    click.echo(f"wrote {path}")
