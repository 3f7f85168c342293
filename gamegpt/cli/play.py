"""`gamegpt play`: a person against a model, in the terminal."""

from __future__ import annotations

from typing import Any, Callable

import click

from gamegpt.cli.common import Group, set_threads
from gamegpt.engine.settings import DEFAULTS
from gamegpt.errors import UserError


@click.group(cls=Group)
def play() -> None:
    """Play a model yourself, in the terminal."""


@play.command("tictactoe")
@click.option("--model", "model_path", default="tictactoe", show_default=True, help="checkpoint path or shipped model name")
@click.option("--as", "side", type=click.Choice(["x", "o"]), default="x", show_default=True, help="the side you play")
@click.option("--temperature", type=float, default=DEFAULTS.temperature, show_default=True,
              help="the model's temperature (0 = its most likely move)")
@click.option("--seed", type=int, default=None, help="seed for the model's sampling")
def play_tictactoe(model_path: str, side: str, temperature: float, seed: int | None) -> None:
    """You against the model. Type a cell number 0-8 (row by row), or 'quit'."""
    from gamegpt.games.tictactoe import TicTacToe

    click.echo("cells:\n0 | 1 | 2\n3 | 4 | 5\n6 | 7 | 8\n")
    _play_in_terminal(TicTacToe(), model_path, temperature, seed, you=0 if side == "x" else 1,
                      render=lambda game: game.render())


@play.command("chess")
@click.option("--model", "model_path", default="chessgpt", show_default=True, help="checkpoint path or shipped model name")
@click.option("--as", "side", type=click.Choice(["white", "black"]), default="white", show_default=True,
              help="the side you play")
@click.option("--temperature", type=float, default=DEFAULTS.temperature, show_default=True,
              help="the model's temperature (0 = its most likely move)")
@click.option("--seed", type=int, default=None, help="seed for the model's sampling")
@click.option("--fen", default=None, help="start from this position (models without start-position encoding play it "
                                           "off their training distribution)")
def play_chess(model_path: str, side: str, temperature: float, seed: int | None, fen: str | None) -> None:
    """You against the model. Type moves in SAN (Nf3, O-O, e8=Q) or UCI (g1f3, e1g1, e7e8q), or 'quit'.
    The model plays with the legality mask, so its moves are always legal."""
    import chess

    from gamegpt.games.chess import ChessGame

    try:
        game = ChessGame(fen)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    perspective = chess.WHITE if side == "white" else chess.BLACK
    you = 0 if game.board.turn == perspective else 1
    _play_in_terminal(game, model_path, temperature, seed, you=you,
                      render=lambda g: g.render(perspective), describe=lambda g, m: g.board.san(m))


def _play_in_terminal(game: Any, model_path: str, temperature: float, seed: int | None, *, you: int,
                      render: Callable[[Any], str], describe: Callable[[Any, Any], str] = lambda g, m: str(m)) -> None:
    """A person (side `you`) against the model (masked decoding) until the game ends or the person quits."""
    import random

    from gamegpt.engine.model_player import load_model_player
    from gamegpt.players.human import HumanPlayer

    set_threads(1)
    bot = load_model_player(model_path, game.name, temperature=temperature, policy="mask")
    bot.reset(seed if seed is not None else random.randrange(1 << 30))
    human = HumanPlayer()
    while game.outcome() is None:
        if game.to_move == you:
            click.echo(render(game) + "\n")
            try:
                move = human.choose(game)
            except EOFError:
                click.echo("\nyou left the game")
                return
        else:
            move = bot.choose(game)
            click.echo(f"model plays {describe(game, move)}")
        game.push(move)
    outcome = game.outcome()
    click.echo(render(game) + "\n")
    if outcome is None or outcome.winner is None:
        click.echo(f"draw ({outcome.termination})" if outcome else "draw")
    else:
        click.echo(f"you win ({outcome.termination})" if outcome.winner == you
                   else f"the model wins ({outcome.termination})")
