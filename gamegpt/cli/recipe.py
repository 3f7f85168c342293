"""`gamegpt recipe`: one-command recipes that make the shipped default models."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import click

from gamegpt.cli.common import Group, set_threads


@click.group(cls=Group)
def recipe() -> None:
    """One-command recipes that make the shipped default models."""


@recipe.command("tictactoe")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/tictactoe-default", show_default=True)
@click.option("--games", type=int, default=5000, show_default=True, help="self-play games per match-up")
@click.option("--eval-games", type=int, default=500, show_default=True, help="games per evaluation setting")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a training option")
@click.option("--install", is_flag=True, help="copy the model and its card to gamegpt/models/tictactoe, among the "
              "shipped models ($GAMEGPT_MODELS/tictactoe if that is set)")
@click.option("--threads", type=int, default=None, help="torch CPU threads for training (default: torch's)")
@click.option("--no-progress", is_flag=True)
def recipe_tictactoe(out_dir: str, games: int, eval_games: int, seed: int, overrides: Sequence[str],
                     install: bool, threads: int | None, no_progress: bool) -> None:
    """Self-play → shards → training → export → evaluation → model card, for the default tic-tac-toe model."""
    from gamegpt.core.train import parse_overrides
    from gamegpt.resources import install_dir
    from gamegpt.eval.tictactoe import SettingResult, format_table
    from gamegpt.experiments.recipes import tictactoe_default

    set_threads(threads)
    target = install_dir() / "tictactoe"
    summary = tictactoe_default(out_dir, games_per_matchup=games, eval_games=eval_games, seed=seed,
                                install_to=target if install else None,
                                progress=not no_progress, train_overrides=parse_overrides(overrides))
    results = [SettingResult(**{k: v for k, v in r.items() if k in SettingResult.__dataclass_fields__})
               for r in summary["results"]]
    click.echo(format_table(results))
    click.echo(f"wrote {Path(out_dir) / 'model'}" + (f" and {target}" if install else ""))


@recipe.command("chess")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/chessgpt-pgn", show_default=True)
@click.option("--games", type=int, default=8000, show_default=True, help="Stockfish self-play games to train on")
@click.option("--held-out-games", type=int, default=200, show_default=True)
@click.option("--workers", type=int, default=2, show_default=True, help="self-play processes")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fischer", type=click.Path(dir_okay=False), default=None,
              help="real games for the legality table (default: games/fischer.pgn of the shared data, "
                   "$GAMEGPT_DATA, if present)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a training option")
@click.option("--install", is_flag=True, help="copy the model and its card to gamegpt/models/chessgpt-pgn, among the "
              "shipped models ($GAMEGPT_MODELS/chessgpt-pgn if that is set)")
@click.option("--threads", type=int, default=None, help="torch CPU threads for training (default: torch's)")
@click.option("--no-progress", is_flag=True)
def recipe_chess(out_dir: str, games: int, held_out_games: int, workers: int, seed: int, fischer: str | None,
                 overrides: Sequence[str], install: bool, threads: int | None, no_progress: bool) -> None:
    """Stockfish self-play → char-PGN shards → training → export → legality tables → model card."""
    from gamegpt.core.train import parse_overrides
    from gamegpt.experiments.recipes import chess_default
    from gamegpt.resources import install_dir

    set_threads(threads)
    target = install_dir() / "chessgpt-pgn"
    if fischer is None:
        from gamegpt.shared_data import shared_file

        default = shared_file("games", "fischer.pgn")
        fischer = str(default) if default else None
        if fischer is None:
            click.echo("note: no games/fischer.pgn in the shared data directory (set $GAMEGPT_DATA): the card "
                       "gets no legality table on real games (give one with --fischer PGN)", err=True)
    chess_default(out_dir, games=games, held_out_games=held_out_games, workers=workers, seed=seed,
                  fischer_pgn=fischer, install_to=target if install else None,
                  progress=not no_progress, train_overrides=parse_overrides(overrides))
    model_dir = Path(out_dir) / "model"
    click.echo((model_dir / "README.md").read_text())
    click.echo(f"wrote {model_dir}" + (f" and {target}" if install else ""))
