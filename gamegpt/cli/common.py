"""Pieces shared by the click commands: user errors as one line and exit code 2, option parsing, threads."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import click

from gamegpt.errors import EngineError, UserError


class _UserErrorsExit2:
    """Turns a UserError into `error: <message>` on stderr and exit code 2, an engine's failure (crash,
    hang, broken protocol: not the user's doing) into one line and exit code 1, Ctrl-C into exit code 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except EngineError as exc:
            click.echo(f"error: engine failure: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


class Group(_UserErrorsExit2, click.Group):
    """A click group whose commands report user errors in one line (exit code 2)."""


class Command(_UserErrorsExit2, click.Command):
    """A click command that reports user errors in one line (exit code 2), also when run on its own."""


def game_limit_options(command: Any) -> Any:
    """The options of `gamegpt match` and `gamegpt tournament` that shape each game: --opening-order,
    --opening-plies, --tc (time_control), --nodes, --movetime, --max-plies."""
    options = [
        click.option("--opening-order", type=click.Choice(["random", "sequential"]), default="random",
                     show_default=True),
        click.option("--opening-plies", type=int, default=None, help="cut book lines to their first K plies"),
        click.option("--tc", "time_control", default=None, metavar="BASE+INC",
                     help="clock per side in seconds (e.g. 10+0.1), enforced by the arena: a fallen flag loses"),
        click.option("--nodes", type=int, default=None, help="nodes a move for engine specs that state no limit"),
        click.option("--movetime", type=int, default=None, help="ms a move for engine specs that state no limit"),
        click.option("--max-plies", type=int, default=400, show_default=True,
                     help="a longer game is adjudicated a draw"),
    ]
    for option in reversed(options):  # click applies decorators bottom-up: keep the help in this order
        command = option(command)
    return command


THREADS_HELP = "torch CPU threads (1 is fastest for play and evaluation of small models)"
RAY_HELP = ("play the games on a Ray cluster: auto (the one `ray start` runs on this machine), local (a private "
            "one), or its ADDRESS; records are written here as usual (needs pip install 'gamegpt[ray]')")
GAMES_AT_ONCE_HELP = "games each process plays at once, their model moves decoded in one batched forward pass"


def workers_or_default(workers: int | None, ray: str | None, local_default: int) -> int:
    """`workers` if given, else one per CPU of the Ray cluster with `ray`, else `local_default`."""
    if workers is not None:
        return workers
    if ray is not None:
        from gamegpt.arena.ray_runs import cluster_cpus

        return cluster_cpus(ray)
    return local_default


def floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}") from None


@contextmanager
def stockfish_for_workers(path: str | None) -> Iterator[None]:
    """With a `path`, make it the Stockfish that `find_stockfish` returns (in this process and in the worker
    processes it starts, through the environment) for the block; the executable is no part of the player
    specs, which a re-run must repeat. Without one, nothing changes."""
    from gamegpt.players.uci import STOCKFISH_ENV, find_stockfish

    saved = os.environ.get(STOCKFISH_ENV)
    if path is not None:
        os.environ[STOCKFISH_ENV] = find_stockfish(path)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(STOCKFISH_ENV, None)
        else:
            os.environ[STOCKFISH_ENV] = saved


def set_threads(threads: int | None, default: int | None = None) -> None:
    """torch's CPU threads (and BLAS's, where threadpoolctl is installed): `threads`, else `default`; with
    neither, the libraries' own defaults are left alone."""
    count = threads or default
    if not count:
        return
    import torch

    torch.set_num_threads(count)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(count)  # stays in force: not used as a context manager
    except ImportError:  # threadpoolctl comes with scikit-learn, an optional dependency
        pass


def exit_now(code: int) -> None:
    """Flush and end the process without interpreter shutdown, which can abort on a daemon thread still
    inside torch (an abandoned decoding), as `gamegpt uci` showed."""
    import logging
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
