"""`gamegpt tournament`: a chess tournament between player specs, with Elo ratings (see
`gamegpt.eval.tournament` for the schedule, limits and adjudication, `gamegpt.eval.elo` for the ratings)."""

from __future__ import annotations

from typing import Sequence

import click

from gamegpt.cli.common import (GAMES_AT_ONCE_HELP, RAY_HELP, Command, game_limit_options, stockfish_for_workers,
                                workers_or_default)
from gamegpt.errors import UserError


@click.command("tournament", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--player", "-p", "players", multiple=True, metavar="[NAME=]SPEC",
              help="a player (repeatable): the subjects of a gauntlet, or entrants of a round robin")
@click.option("--opponent", "opponents", multiple=True, metavar="[NAME=]SPEC",
              help="an opponent (repeatable), after the ladder's rungs")
@click.option("--ladder", default=None, help="a ladder preset of opponents: default = Stockfish UCI_Elo 1700, 1500, "
              "1350 (the anchor), Skill Level 0 at 20 nodes with noise 0.1, 0.25 and 0.5, random")
@click.option("--mode", type=click.Choice(["gauntlet", "round-robin"]), default=None,
              help="gauntlet: each --player against every opponent; round-robin: everybody against everybody  "
                   "[default: gauntlet with --ladder/--opponent, else round-robin]")
@click.option("--neighbours", type=int, default=2, show_default=True,
              help="gauntlet: each opponent also plays the next K opponents (rates the ladder in the same fit)")
@click.option("--openings", "book", default=None,
              help="opening book: .pgn, or .tsv with columns eco,name,pgn; 'none' for the start position  "
                   "[default: Stockfish's 2moves_v2.pgn, shipped in the package]")
@click.option("--opening-count", type=int, default=4, show_default=True,
              help="openings used; each pairing plays each one with both colours (2N games a pairing)")
@game_limit_options
@click.option("--workers", type=int, default=None, help="processes (or Ray actors) playing games  [default: the "
              "number of CPUs; with --ray, of the cluster's CPUs]")
@click.option("--games-at-once", type=int, default=1, show_default=True, help=GAMES_AT_ONCE_HELP)
@click.option("--ray", "ray", default=None, metavar="auto|local|ADDRESS", help=RAY_HELP)
@click.option("--seed", type=int, default=0, show_default=True, help="seeds the games and the opening order")
@click.option("--anchor", default=None, help="the player whose rating is fixed  [default: Stockfish at UCI_Elo "
              "1350 if playing, else the first player]")
@click.option("--anchor-rating", type=float, default=None,
              help="the anchor's rating  [default: a Stockfish anchor's UCI_Elo, else 0]")
@click.option("--confidence", type=float, default=0.95, show_default=True, help="interval coverage")
@click.option("--stockfish", "stockfish_path", default=None,
              help="Stockfish executable  [default: $GAMEGPT_STOCKFISH, else stockfish on PATH, else /usr/games/stockfish]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="results directory; re-running the same command continues the tournament")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def tournament(players: Sequence[str], opponents: Sequence[str], ladder: str | None, mode: str | None,
               neighbours: int, book: str | None, opening_count: int, opening_order: str,
               opening_plies: int | None, time_control: str | None, nodes: int | None, movetime: int | None,
               max_plies: int, workers: int | None, games_at_once: int, ray: str | None, seed: int,
               anchor: str | None, anchor_rating: float | None,
               confidence: float, stockfish_path: str | None, out_dir: str, no_progress: bool) -> None:
    """A chess tournament with Elo ratings. Player specs: model:path=P,temperature=T,policy=mask|retry|raw,
    stockfish:elo=E|skill=N,nodes=N,movetime=MS, uci:cmd=ENGINE, random; any takes noise=P. Name a player
    with NAME=SPEC. Every pairing plays every opening with both colours; games end by the rules, by a
    claimable draw (threefold repetition, 50 moves), a fallen flag (--tc), an illegal move, or as a draw
    after --max-plies. Each pairing's cutechess/fastchess lines (Score W - L - D, Elo difference, LOS, DrawRatio,
    Ptnml) are printed when its last game is in, and at the end. Writes games.jsonl, games.pgn, tournament.json,
    standings.txt, pairings.txt and ratings.txt/json/png."""
    from tqdm import tqdm

    from gamegpt.arena.play import TimeControl
    from gamegpt.eval.openings import openings_from_book
    from gamegpt.eval.match_stats import MatchStats, format_match
    from gamegpt.eval.tournament import (format_pairings, format_standings, ladder_entrants, parse_entrant,
                                         run_tournament)
    from gamegpt.players.limits import SearchLimits
    from gamegpt.arena.runs import default_workers

    if not 0.0 < confidence < 1.0:
        raise UserError(f"--confidence must be between 0 and 1, got {confidence:g}")
    subjects = [parse_entrant(p) for p in players]
    rivals = (ladder_entrants(ladder) if ladder else []) + [parse_entrant(p) for p in opponents]
    if mode is None:
        mode = "gauntlet" if rivals else "round-robin"
    if mode == "gauntlet" and not subjects:
        raise UserError("a gauntlet needs at least one --player")
    clock = TimeControl.from_option(time_control)
    openings = openings_from_book(book, count=opening_count, seed=seed, order=opening_order,
                                  max_plies=opening_plies)
    workers = workers_or_default(workers, ray, default_workers())

    def pairing_done(stats: MatchStats) -> None:
        """A pairing's lines as soon as its last game is in (above the progress bar)."""
        if no_progress:
            click.echo(format_match(stats) + "\n")
        else:
            tqdm.write(format_match(stats) + "\n")

    with stockfish_for_workers(stockfish_path):
        result = run_tournament(subjects + rivals, out_dir=out_dir, openings=openings, mode=mode,
                                subjects=[s.name for s in subjects] if mode == "gauntlet" else [],
                                neighbours=neighbours, time_control=clock,
                                engine_limits=SearchLimits(nodes=nodes, movetime=movetime), max_plies=max_plies,
                                workers=workers, seed=seed, anchor=anchor, anchor_rating=anchor_rating,
                                confidence=confidence, progress=not no_progress, on_pairing=pairing_done,
                                games_at_once=games_at_once, ray=ray)
    click.echo(f"{result.games_new} new games, {result.games_total} of {result.games_scheduled} in all "
               f"({len(openings)} openings, both colours)")
    click.echo(format_standings(result.standings))
    click.echo("")
    click.echo(format_pairings(result.pairings))
    click.echo("")
    if result.ratings is not None:
        click.echo(result.ratings.table())
    paths = [result.records_path, result.pgn_path, result.summary_path, result.out_dir / "pairings.txt",
             *result.rating_paths]
    click.echo("wrote " + ", ".join(str(p) for p in paths))
