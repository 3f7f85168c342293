"""`gamegpt match`: two players in colour-swapped pairs, with cutechess/fastchess summary lines and an
optional SPRT that stops the match at a decision (see `gamegpt.eval.match` and `gamegpt.eval.sprt`)."""

from __future__ import annotations

import click

from gamegpt.cli.common import Command, game_limit_options, stockfish_for_workers
from gamegpt.errors import UserError

DEFAULT_PAIRS = 50
DEFAULT_SPRT_PAIRS = 1000


@click.command("match", cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("first", metavar="[NAME=]SPEC")
@click.argument("second", metavar="[NAME=]SPEC")
@click.option("--sprt", "sprt_text", default=None, metavar="elo0=E0,elo1=E1[,alpha=A,beta=B,model=M]",
              help="stop at a decision of the SPRT of H0 'FIRST is E0 Elo stronger' against H1 'E1 stronger' "
                   "(alpha, beta default 0.05; model normalized, as fastchess, or logistic)")
@click.option("--max-pairs", type=int, default=None,
              help=f"game pairs to play (each opening with both colours); with --sprt the most before stopping "
                   f"undecided  [default: {DEFAULT_SPRT_PAIRS} with --sprt, else {DEFAULT_PAIRS}]")
@click.option("--openings", "book", default=None,
              help="opening book: .pgn, or .tsv with columns eco,name,pgn; 'none' for the start position  "
                   "[default: the tournament's default book]")
@click.option("--opening-count", type=int, default=None,
              help="openings used, pair k playing opening k mod N  [default: one per pair, as far as the book goes]")
@game_limit_options
@click.option("--workers", type=int, default=None, help="processes playing games  [default: the number of CPUs]")
@click.option("--seed", type=int, default=0, show_default=True, help="seeds the games and the opening order")
@click.option("--report-every", type=int, default=10, show_default=True,
              help="print the summary lines after every N complete pairs")
@click.option("--stockfish", "stockfish_path", default=None,
              help="Stockfish executable  [default: $GAMEGPT_STOCKFISH, else stockfish on PATH, else /usr/games/stockfish]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="results directory; re-running the same command continues the match")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def match(first: str, second: str, sprt_text: str | None, max_pairs: int | None, book: str | None,
          opening_count: int | None, opening_order: str, opening_plies: int | None, time_control: str | None,
          nodes: int | None, movetime: int | None, max_plies: int, workers: int | None, seed: int,
          report_every: int, stockfish_path: str | None, out_dir: str, no_progress: bool) -> None:
    """A chess match FIRST against SECOND in colour-swapped pairs (each opening once with each colour), with
    the lines engine testers read: Score of FIRST vs SECOND W - L - D, Elo difference +/- 95 % margin, LOS,
    DrawRatio, and the pentanomial counts Ptnml(0-2). With --sprt it stops when the log-likelihood ratio
    leaves [ln(beta/(1-alpha)), ln((1-beta)/alpha)]. Player specs as for `gamegpt tournament`. Writes
    games.jsonl, games.pgn and match.json to --out."""
    from tqdm import tqdm

    from gamegpt.arena.play import TimeControl
    from gamegpt.arena.runs import default_workers
    from gamegpt.eval.match import run_match
    from gamegpt.eval.openings import openings_from_book
    from gamegpt.eval.sprt import SprtSettings
    from gamegpt.players.limits import SearchLimits

    sprt = SprtSettings.parse(sprt_text) if sprt_text is not None else None
    if max_pairs is None:
        max_pairs = DEFAULT_SPRT_PAIRS if sprt else DEFAULT_PAIRS
    if max_pairs < 1:
        raise UserError(f"--max-pairs must be at least 1, got {max_pairs}")
    if report_every < 1:
        raise UserError(f"--report-every must be at least 1, got {report_every}")
    clock = TimeControl.from_option(time_control)
    openings = openings_from_book(book, count=opening_count or max_pairs, seed=seed, order=opening_order,
                                  max_plies=opening_plies)
    if workers is None:
        workers = default_workers()

    def report(text: str) -> None:
        if no_progress:
            click.echo(text + "\n")
        else:
            tqdm.write(text + "\n")  # above the progress bar

    with stockfish_for_workers(stockfish_path):
        result = run_match(first, second, out_dir=out_dir, openings=openings, max_pairs=max_pairs, sprt=sprt,
                           time_control=clock, engine_limits=SearchLimits(nodes=nodes, movetime=movetime),
                           max_plies=max_plies, workers=workers, seed=seed, progress=not no_progress,
                           report=report, report_every=report_every)
    if sprt is not None:
        click.echo(f"SPRT {sprt}: bounds {sprt.lower:.2f}, {sprt.upper:.2f}")
    click.echo(f"{result.games_new} new games, {result.stats.games} in all, {result.pairs} complete pairs "
               f"({len(openings)} openings)")
    click.echo(result.report())
    click.echo("wrote " + ", ".join(str(p) for p in result.paths))
