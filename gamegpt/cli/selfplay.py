"""`gamegpt selfplay`: arena runs whose game records become training data.

`gamegpt selfplay chess`: parallel, resumable chess self-play with Stockfish (or any player spec).

Chess defaults, and why: both sides are `stockfish:nodes=1000` (Skill Level 20, ~3 ms a move on one core, club
strength or better) with noise 0.05. A node limit makes Stockfish deterministic (Threads=1), so games are
reproducible from --seed, and independent of machine speed and load; but two deterministic players would
play the same game every time, so the variety comes from the seeded noise moves (~5 random moves in a
100-ply game). Use --noise 0 with players that vary on their own (e.g. stockfish:skill=0-9).

`--preset karvonen` follows Karvonen's Stockfish data set: White is Stockfish at full skill, Black plays at
a Skill Level drawn per game from 0..9 (from the game seed; the drawn level is in each record). Karvonen
limited time per move (0.1 s a move in his evaluation); we limit nodes instead, so the games do not depend
on the machine: White 20000 nodes (~0.06 s a move at ~330 k nodes/s on one core here), Black 5000 nodes
(below Skill Level 20 the level's random pick, not the search, sets its strength). Black's moves below
Skill Level 20 use Stockfish's clock-seeded random choice: those games are not reproducible from a seed.
"""

from __future__ import annotations

import json

import click

from gamegpt.arena.specs import with_noise
from gamegpt.cli.common import (GAMES_AT_ONCE_HELP, Group, RAY_HELP, THREADS_HELP, set_threads, stockfish_for_workers,
                                workers_or_default)
from gamegpt.errors import UserError


@click.group(cls=Group)
def selfplay() -> None:
    """Arena runs whose game records become training data."""


@selfplay.command("tictactoe")
@click.option("--x", "first", default="newell-simon", show_default=True, help="player spec for X (moves first)")
@click.option("--o", "second", default="newell-simon", show_default=True, help="player spec for O")
@click.option("--noise", type=float, default=None, help="noise rate for both sides (a spec's own noise= wins)")
@click.option("--games", type=int, default=1000, show_default=True, help="total games wanted in --out")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="records file (JSONL); re-running continues it")
@click.option("--enumerate", "enumerate_", is_flag=True,
              help="write every game where one side follows Newell–Simon and the other plays every legal move")
@click.option("--threads", type=int, default=1, show_default=True, help=THREADS_HELP)
@click.option("--workers", type=int, default=None, help="processes (or Ray actors) playing games  [default: 1; "
              "with --ray, one per CPU of the cluster]")
@click.option("--games-at-once", type=int, default=1, show_default=True, help=GAMES_AT_ONCE_HELP)
@click.option("--ray", "ray", default=None, metavar="auto|local|ADDRESS", help=RAY_HELP)
@click.option("--no-progress", is_flag=True, help="no progress bar")
def selfplay_tictactoe(first: str, second: str, noise: float | None, games: int, seed: int, out: str,
                       enumerate_: bool, threads: int, workers: int | None, games_at_once: int, ray: str | None,
                       no_progress: bool) -> None:
    """Tic-tac-toe self-play. Player specs: newell-simon, random, human, model:path=P,temperature=T;
    any spec takes noise=P (a random legal move with probability P)."""
    from gamegpt.selfplay.runner import run_selfplay, write_enumeration

    if enumerate_:
        result = write_enumeration(out)
        summary = json.loads(result.summary_path.read_text())
        click.echo(f"{result.games_total} games in which at least one side follows the Newell–Simon rules "
                   f"({summary['newell_simon_as_x']} with it as X, {summary['newell_simon_as_o']} as O); "
                   f"results {result.results}")
    else:
        set_threads(threads)
        specs = [with_noise(spec, noise) for spec in (first, second)]
        result = run_selfplay("tictactoe", specs, n_games=games, seed=seed, out=out, progress=not no_progress,
                              workers=workers_or_default(workers, ray, 1), games_at_once=games_at_once, ray=ray)
        click.echo(f"{result.games_new} new games, {result.games_total} in all; results {result.results}")
    click.echo(f"wrote {result.records_path} and {result.summary_path}")


DEFAULT_SPEC = "stockfish:nodes=1000"
DEFAULT_NOISE = 0.05
PRESETS: dict[str, tuple[str, str]] = {
    "karvonen": ("stockfish:skill=20,nodes=20000", "stockfish:skill=0-9,nodes=5000"),
}


@selfplay.command("chess")
@click.option("--white", default=None, help=f"player spec for White  [default: {DEFAULT_SPEC}]")
@click.option("--black", default=None, help=f"player spec for Black  [default: {DEFAULT_SPEC}]")
@click.option("--noise", type=float, default=None,
              help=f"noise rate for both sides (a spec's own noise= wins)  [default: {DEFAULT_NOISE:g}; "
                   "none with --preset]")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
              help="karvonen: White Stockfish at full skill (20000 nodes), Black at a Skill Level drawn per game "
                   "from 0-9 (5000 nodes)")
@click.option("--games", type=int, default=1000, show_default=True, help="total games wanted in --out")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=None, help="processes (or Ray actors) playing games  [default: the "
              "number of CPUs; with --ray, of the cluster's CPUs]")
@click.option("--games-at-once", type=int, default=1, show_default=True, help=GAMES_AT_ONCE_HELP)
@click.option("--ray", "ray", default=None, metavar="auto|local|ADDRESS", help=RAY_HELP)
@click.option("--max-plies", type=int, default=400, show_default=True, help="a longer game is adjudicated a draw")
@click.option("--stockfish", "stockfish_path", type=str, default=None,
              help="Stockfish executable  [default: $GAMEGPT_STOCKFISH, else stockfish on PATH, else "
                   "/usr/games/stockfish]")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="records file (JSONL; the PGN is written beside it); re-running continues it")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def selfplay_chess(white: str | None, black: str | None, noise: float | None, preset: str | None, games: int,
                   seed: int, workers: int | None, games_at_once: int, ray: str | None, max_plies: int,
                   stockfish_path: str | None, out: str, no_progress: bool) -> None:
    """Chess self-play. Player specs: stockfish:skill=N|A-B,elo=E,nodes=N,depth=D,movetime=MS,
    uci:cmd=ENGINE,nodes=N, random, model:path=P; any spec takes noise=P (a random legal move with
    probability P). Games end by the rules, by a claimable draw (50 moves, threefold repetition), or as a
    draw after --max-plies. Re-running the same command continues to --games without replaying a game."""
    from gamegpt.arena.runs import default_workers
    from gamegpt.selfplay.runner import run_selfplay

    if preset is not None:
        if white is not None or black is not None:
            raise UserError("give --preset or --white/--black, not both")
        white, black = PRESETS[preset]
    if noise is None:
        noise = None if preset is not None else DEFAULT_NOISE
    if noise is not None and not 0.0 <= noise <= 1.0:
        raise UserError(f"--noise must be in [0, 1], got {noise:g}")
    specs = [with_noise(spec or DEFAULT_SPEC, noise) for spec in (white, black)]
    with stockfish_for_workers(stockfish_path):
        result = run_selfplay("chess", specs, n_games=games, seed=seed, out=out, max_plies=max_plies,
                              progress=not no_progress, workers=workers_or_default(workers, ray, default_workers()),
                              game_options={"claim_draws": True}, games_at_once=games_at_once, ray=ray)
    click.echo(f"{result.games_new} new games, {result.games_total} in all; results {result.results}")
    click.echo(f"wrote {result.records_path}, {result.pgn_path} and {result.summary_path}")
