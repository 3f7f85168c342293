"""`gamegpt puzzles make`: chess puzzles cut from games with Stockfish."""

from __future__ import annotations

import click

from gamegpt.cli.common import Group


@click.group(cls=Group)
def puzzles() -> None:
    """Make chess puzzles (with the games that led to them) from game collections."""


@puzzles.command("make")
@click.option("--games", "games_path", type=click.Path(dir_okay=False), required=True,
              help="games: a PGN file or game records (JSONL)")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="puzzle CSV to write (Lichess columns + History); re-running continues it")
@click.option("--max", "max_puzzles", type=int, default=None, help="stop at N puzzles")
@click.option("--stockfish-nodes", type=int, default=50_000, show_default=True, help="nodes per analysed position")
@click.option("--win-cp", type=int, default=200, show_default=True,
              help="the best move wins by at least this (or mates)")
@click.option("--unclear-cp", type=int, default=50, show_default=True, help="the second-best scores at most this")
@click.option("--max-solver-moves", type=int, default=3, show_default=True)
@click.option("--min-ply", type=int, default=10, show_default=True, help="skip the opening's first plies")
@click.option("--per-game", type=int, default=1, show_default=True, help="at most this many puzzles from one game")
@click.option("--stockfish", default=None, help="Stockfish executable (default: on PATH or /usr/games/stockfish)")
@click.option("--overwrite", is_flag=True, help="start over instead of continuing an earlier run's --out")
@click.option("--no-progress", is_flag=True)
def puzzles_make(games_path: str, out: str, max_puzzles: int | None, stockfish_nodes: int, win_cp: int,
                 unclear_cp: int, max_solver_moves: int, min_ply: int, per_game: int, stockfish: str | None,
                 overwrite: bool, no_progress: bool) -> None:
    """Cut puzzles from games with Stockfish: positions where one move wins clearly (best >= --win-cp or
    mate, MultiPV 2) and the second-best does not (<= --unclear-cp); the solution follows Stockfish's line
    while that holds. Rows are unrated (bucket "unrated") and carry the game's History."""
    from functools import partial

    from tqdm import tqdm

    from gamegpt.selfplay.puzzle_maker import MakerSettings, make_puzzles

    settings = MakerSettings(nodes=stockfish_nodes, win_cp=win_cp, unclear_cp=unclear_cp,
                             max_solver_moves=max_solver_moves, min_ply=min_ply, per_game=per_game)
    report = make_puzzles(games_path, out, settings=settings, max_puzzles=max_puzzles, stockfish=stockfish,
                          overwrite=overwrite,
                          progress=None if no_progress else partial(tqdm, desc="games", unit="game"))
    click.echo(report.describe())
    click.echo(f"wrote {out}")
