"""`gamegpt bot lichess`: the model as a Lichess bot."""

from __future__ import annotations

from pathlib import Path

import click

from gamegpt.cli.common import Group, exit_now, set_threads


@click.group("bot", cls=Group)
def bot_group() -> None:
    """ChessGPT as a bot on a chess server."""


@bot_group.command("lichess")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML config (annotated example: configs/lichess-bot.yaml); defaults apply without it")
@click.option("--token-env", default="LICHESS_BOT_TOKEN", show_default=True,
              help="environment variable with the API token (scope bot:play); else `token:` in the config")
@click.option("--model", "model_path", default=None, help="checkpoint path or shipped model name (overrides engine.model)")
@click.option("--verbose", "-v", is_flag=True, help="log every request and move")
def bot_lichess(config_path: str | None, token_env: str, model_path: str | None, verbose: bool) -> None:
    """Play on Lichess as a BOT account until Ctrl-C: answer challenges by the config's rules, play each game
    with the model, save every finished game as PGN. Games running at Ctrl-C are picked up by the next start."""
    import logging

    from gamegpt.bots.config import load_config, resolve_token
    from gamegpt.bots.lichess import LichessBot
    from gamegpt.bots.redact import RedactingFilter

    config = load_config(config_path)
    if model_path:
        config.engine.model = model_path
    token = resolve_token(config, token_env)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s: %(message)s"))
    handler.addFilter(RedactingFilter([token]))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        logging.getLogger("urllib3").setLevel(logging.WARNING)
    set_threads(config.engine.threads)
    lichess_bot = LichessBot(config, token)  # loads the model: a bad model path stops here
    click.echo(f"finished games are saved as PGN under {Path(config.games.pgn_dir).resolve()}")
    try:
        lichess_bot.run()  # returns after its bounded joins; every finished game is already saved
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        exit_now(130)
    exit_now(0)
