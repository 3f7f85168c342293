"""`gamegpt eval`: score models (tic-tac-toe, legal-move rate, Stockfish agreement, mate in one, puzzles)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import click

from gamegpt.cli.common import Group, THREADS_HELP, floats, set_threads
from gamegpt.engine.settings import DEFAULTS
from gamegpt.errors import UserError


@click.group(cls=Group)
def eval() -> None:  # noqa: A001 - the command is called eval
    """Score players in arenas."""


@eval.command("tictactoe")
@click.option("--model", "model_path", default="tictactoe", show_default=True, help="checkpoint path or shipped model name")
@click.option("--temperatures", default="1.0,0.001", show_default=True, help="comma-separated; 0 = argmax")
@click.option("--policy", type=click.Choice(["raw", "mask"]), default="raw", show_default=True,
              help="raw: an illegal sample loses the game and is counted; mask: only legal moves")
@click.option("--games", type=int, default=200, show_default=True, help="games per setting (opponent × side × temperature)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/eval-tictactoe", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help=THREADS_HELP)
def eval_tictactoe(model_path: str, temperatures: str, policy: str, games: int, seed: int, out_dir: str,
                   threads: int) -> None:
    """A model against the perfect (Newell–Simon) and the random player, as X and as O."""
    from gamegpt.engine.model_player import load_model_player
    from gamegpt.eval.tictactoe import evaluate, format_table, plot_results
    from gamegpt.atomic import write_json_atomic

    set_threads(threads)
    if games < 1:
        raise UserError("--games must be at least 1")
    subjects = {f"T={t:g}": load_model_player(model_path, "tictactoe", temperature=t, policy=policy)
                for t in floats(temperatures)}
    results = evaluate(subjects, games=games, seed=seed)
    click.echo(format_table(results))
    out = Path(out_dir)
    write_json_atomic(out / "results.json", {"model": model_path, "policy": policy, "games_per_setting": games,
                                             "seed": seed, "results": [r.to_dict() for r in results]})
    plot_results(results, out / "results.png", title=f"{model_path} ({policy} policy)")
    click.echo(f"wrote {out / 'results.json'} and {out / 'results.png'}")


@eval.command("legality")
@click.option("--model", "models", multiple=True, required=True, help="checkpoint path or shipped name (repeatable)")
@click.option("--records", type=click.Path(dir_okay=False), default=None, help="held-out game records (JSONL)")
@click.option("--pgn", type=click.Path(dir_okay=False), default=None, help="held-out games as PGN (chess)")
@click.option("--games", type=int, default=500, show_default=True, help="use the first N games")
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--move-numbers", default="1,2,10,20,40,50,60", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/legality", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help=THREADS_HELP)
def eval_legality(models: Sequence[str], records: str | None, pgn: str | None, games: int, temperature: float,
                  move_numbers: str, seed: int, out_dir: str, threads: int) -> None:
    """Legal-move rate of each model's first sampled move, by move number, on held-out games."""
    import tempfile

    from gamegpt.engine.model_player import load_model_player
    from gamegpt.eval.legality import format_legality_table, format_reasons_table, legal_move_rate, plot_legality
    from gamegpt.arena.records import iter_records
    from gamegpt.arena.pgn_import import import_pgn
    from gamegpt.atomic import write_json_atomic

    set_threads(threads)
    if (records is None) == (pgn is None):
        raise UserError("give exactly one of --records or --pgn")
    with tempfile.TemporaryDirectory() as tmp:
        if pgn is not None:
            report = import_pgn([pgn], Path(tmp) / "games.jsonl")
            click.echo(f"{pgn}: {report.describe()}")
            records = str(Path(tmp) / "games.jsonl")
        held_out = []
        for record in iter_records(records):
            if len(held_out) >= games:
                break
            held_out.append(record)
    numbers = [int(n) for n in floats(move_numbers)]
    results = []
    for name in models:
        player = load_model_player(name, None, temperature=temperature, policy="raw")
        results.append(legal_move_rate(player, held_out, move_numbers=numbers, seed=seed, label=name))
    click.echo(format_legality_table(results))
    for result in results:
        if sum(result.positions.values()) > sum(result.legal.values()):
            click.echo(f"why {result.model}'s illegal samples were illegal:\n{format_reasons_table(result)}")
    out = Path(out_dir)
    write_json_atomic(out / "legality.json", {"games": len(held_out), "source": pgn or records,
                                              "results": [r.to_dict() for r in results]})
    plot_legality(results, out / "legality.png", title=f"legal first samples on {Path(pgn or records or '').name}")
    click.echo(f"wrote {out / 'legality.json'} and {out / 'legality.png'}")


@eval.command("agreement")
@click.option("--model", "models", multiple=True, required=True, help="checkpoint path or shipped name (repeatable)")
@click.option("--records", type=click.Path(dir_okay=False), required=True, help="held-out chess game records (JSONL)")
@click.option("--positions", type=int, default=300, show_default=True, help="one position from each of the first N games")
@click.option("--nodes", type=int, default=20_000, show_default=True, help="Stockfish nodes per label")
@click.option("--temperature", type=float, default=DEFAULTS.temperature, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="picks the positions and seeds the models")
@click.option("--stockfish", default=None, help="Stockfish executable (default: on PATH or /usr/games/stockfish)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/agreement", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help=THREADS_HELP)
def eval_agreement(models: Sequence[str], records: str, positions: int, nodes: int, temperature: float, seed: int,
                   stockfish: str | None, out_dir: str, threads: int) -> None:
    """Top-1 agreement with Stockfish's best move (masked decoding): a cheap strength proxy. One position per
    held-out game, labelled by Stockfish at --nodes; the move played in the game is compared too."""
    from gamegpt.arena.records import iter_records
    from gamegpt.atomic import write_json_atomic
    from gamegpt.engine.model_player import load_model_player
    from gamegpt.eval.agreement import format_agreement_table, label_positions, top1_agreement

    set_threads(threads)
    if positions < 1 or nodes < 1:
        raise UserError("--positions and --nodes must be at least 1")
    labelled = label_positions(list(iter_records(records)), count=positions, nodes=nodes, seed=seed,
                               stockfish=stockfish)
    if not labelled:
        raise UserError(f"{records}: no chess game long enough for a position")
    results = [top1_agreement(load_model_player(name, "chess", temperature=temperature, policy="mask"), labelled,
                              label=name, seed=seed) for name in models]
    click.echo(format_agreement_table(results))
    out = Path(out_dir) / "agreement.json"
    write_json_atomic(out, {"records": records, "positions": len(labelled), "nodes": nodes, "seed": seed,
                            "temperature": temperature, "results": [r.to_dict() for r in results]})
    click.echo(f"wrote {out}")


@eval.command("mates")
@click.option("--model", "models", multiple=True, required=True, help="checkpoint path or shipped name (repeatable)")
@click.option("--records", type=click.Path(dir_okay=False), required=True, help="held-out chess game records (JSONL)")
@click.option("--positions", type=int, default=200, show_default=True,
              help="the first mate-in-one position of each game, up to N")
@click.option("--temperature", type=float, default=DEFAULTS.temperature, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="seeds the models")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/mates", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help=THREADS_HELP)
def eval_mates(models: Sequence[str], records: str, positions: int, temperature: float, seed: int, out_dir: str,
               threads: int) -> None:
    """Mate in one (masked decoding): on positions of held-out games where the side to move can mate at once,
    how often each model mates, beside the rate of a random legal mover."""
    from gamegpt.arena.records import iter_records
    from gamegpt.atomic import write_json_atomic
    from gamegpt.engine.model_player import load_model_player
    from gamegpt.eval.mates import find_mate_positions, format_mate_table, mate_in_one_rate

    set_threads(threads)
    if positions < 1:
        raise UserError("--positions must be at least 1")
    found = find_mate_positions(iter_records(records), count=positions)
    if not found:
        raise UserError(f"{records}: no position with a mate in one")
    results = [mate_in_one_rate(load_model_player(name, "chess", temperature=temperature, policy="mask"), found,
                                label=name, seed=seed) for name in models]
    click.echo(format_mate_table(results))
    out = Path(out_dir) / "mates.json"
    write_json_atomic(out, {"records": records, "positions": len(found), "seed": seed, "temperature": temperature,
                            "results": [r.to_dict() for r in results]})
    click.echo(f"wrote {out}")


@eval.command("puzzles")
@click.option("--model", "models", multiple=True, required=True, help="checkpoint path or shipped name (repeatable)")
@click.option("--puzzles", "puzzles_path", type=click.Path(dir_okay=False), default=None,
              help="Lichess-format puzzle CSV (optional History column: the game's moves from the start)  "
                   "[default: the 1000 Lichess puzzles shipped in the package]")
@click.option("--temperature", type=float, default=DEFAULTS.temperature, show_default=True, help="0 = the most likely move")
@click.option("--policy", type=click.Choice(["raw", "retry", "mask"]), default="retry", show_default=True,
              help="retry: Karvonen's 5 samples; raw: an illegal first sample fails the puzzle; mask: only legal moves")
@click.option("--limit", type=int, default=None, help="use the first N rows of the file")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/puzzles", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help=THREADS_HELP)
@click.option("--no-progress", is_flag=True)
def eval_puzzles(models: Sequence[str], puzzles_path: str | None, temperature: float, policy: str, limit: int | None,
                 seed: int, out_dir: str, threads: int, no_progress: bool) -> None:
    """Puzzle solve rate by rating bucket (<900, 900, ..., 1400+, unrated), with a random-legal-move baseline.

    A puzzle is solved when every solver move matches the solution (a mating move always counts). Models
    without start-position encoding need the History column; FEN-only puzzles are skipped for them and
    counted. Malformed rows are skipped and counted."""
    from gamegpt.engine.model_player import load_model_player
    from gamegpt.arena.puzzle_file import read_puzzles
    from gamegpt.eval.puzzles import evaluate_puzzles, format_puzzle_table, plot_puzzles
    from gamegpt.atomic import write_json_atomic

    set_threads(threads)
    if len(set(models)) != len(models):
        raise UserError("a --model is given twice")
    if puzzles_path is None:
        from gamegpt.resources import PUZZLE_SAMPLE, data_file

        puzzles_path = str(data_file(*PUZZLE_SAMPLE))
    puzzle_set = read_puzzles(puzzles_path, limit=limit)
    players = {name: load_model_player(name, "chess", temperature=temperature, policy=policy) for name in models}
    settings = {"temperature": temperature, "policy": policy, "limit": limit, "seed": seed}
    evaluation = evaluate_puzzles(players, puzzle_set, seed=seed, settings=settings, progress=not no_progress)
    click.echo(format_puzzle_table(evaluation))
    out = Path(out_dir)
    write_json_atomic(out / "puzzles.json", evaluation.to_dict())
    plot_puzzles(evaluation, out / "puzzles.png", title=f"puzzles solved: {Path(puzzles_path).name} ({policy} policy)")
    click.echo(f"wrote {out / 'puzzles.json'} and {out / 'puzzles.png'}")
