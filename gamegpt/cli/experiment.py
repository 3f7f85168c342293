"""`gamegpt experiment`: studies that chain self-play, training and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import click

from gamegpt.cli.common import Group, THREADS_HELP, floats, set_threads
from gamegpt.errors import UserError


@click.group(cls=Group)
def experiment() -> None:
    """Studies that chain self-play, training and evaluation."""


@experiment.command("noise")
@click.option("--noise", "noise_rates", default="0,0.05,0.5,0.8", show_default=True, help="comma-separated noise rates")
@click.option("--train-games", type=int, default=10000, show_default=True, help="self-play games per noise rate")
@click.option("--eval-games", type=int, default=200, show_default=True, help="games per evaluation setting")
@click.option("--temperatures", default="1.0,0.001", show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a training option")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/noise-tictactoe", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help=THREADS_HELP)
@click.option("--no-progress", is_flag=True)
def experiment_noise(noise_rates: str, train_games: int, eval_games: int, temperatures: str,
                     overrides: Sequence[str], seed: int, out_dir: str, threads: int, no_progress: bool) -> None:
    """The tic-tac-toe transcendence study: noisy Newell–Simon data → a model per noise rate → the model at
    each temperature and its noisy teachers against the perfect and the random player. Re-running continues."""
    from gamegpt.core.train import parse_overrides
    from gamegpt.experiments.noise import NoiseExperimentConfig, format_noise_table, run_noise_experiment

    set_threads(threads)
    train_overrides = parse_overrides(overrides)
    cfg = NoiseExperimentConfig(out_dir=out_dir, noise_rates=floats(noise_rates), temperatures=floats(temperatures),
                                train_games=train_games, eval_games=eval_games, seed=seed,
                                train_overrides=train_overrides)
    summary = run_noise_experiment(cfg, progress=not no_progress)
    click.echo(format_noise_table(summary["rows"]))
    click.echo(f"wrote {Path(out_dir) / 'summary.json'}, {Path(out_dir) / 'table.txt'} and "
               f"{Path(out_dir) / 'transcendence.png'}")


@experiment.command("chess-transcendence")
@click.option("--generator", default="stockfish:skill=3,nodes=200,noise=0.3", show_default=True,
              help="the noisy player spec that plays both sides of the training games")
@click.option("--noise", type=float, default=None, help="the generator's noise rate (replaces its spec's noise=)")
@click.option("--games", type=int, default=8000, show_default=True, help="self-play games to train on")
@click.option("--layers", type=int, default=4, show_default=True, help="model layers")
@click.option("--heads", type=int, default=4, show_default=True, help="attention heads")
@click.option("--width", type=int, default=128, show_default=True, help="embedding width")
@click.option("--steps", type=int, default=800, show_default=True, help="training steps")
@click.option("--batch-size", type=int, default=16, show_default=True,
              help="blocks a step (1024 characters, or 256 moves with chess-uci-moves)")
@click.option("--codec", type=click.Choice(["chess-pgn-chars", "chess-uci-moves", "chess-position-move"]),
              default="chess-pgn-chars", show_default=True,
              help="Karvonen's character PGN, one token per move, or the position then the move")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override any training option")
@click.option("--temperatures", default="1.0,0.1,0.001", show_default=True, help="the model's temperatures")
@click.option("--policy", type=click.Choice(["mask", "raw"]), default="mask", show_default=True,
              help="the model's decoding policy in the tournament (raw: an illegal move loses the game)")
@click.option("--ladder", default="default", show_default=True, help="ladder preset (see gamegpt tournament)")
@click.option("--rung", "rungs", multiple=True, metavar="[NAME=]SPEC",
              help="a ladder rung, strongest first (repeatable; replaces --ladder)")
@click.option("--openings", "book", default=None,
              help="opening book (.pgn/.tsv; 'none': start position)  [default: Stockfish's 2moves_v2.pgn, shipped in the package]")
@click.option("--opening-count", type=int, default=10, show_default=True,
              help="openings; each pairing plays each with both colours")
@click.option("--max-plies", type=int, default=400, show_default=True, help="tournament games longer are drawn")
@click.option("--workers", type=int, default=2, show_default=True, help="processes for self-play and the tournament")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--confidence", type=float, default=0.95, show_default=True, help="interval coverage")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/transcendence-chess",
              show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads for training (default: torch's)")
@click.option("--no-progress", is_flag=True)
def experiment_chess_transcendence(generator: str, noise: float | None, games: int, layers: int, heads: int,
                                   width: int, steps: int, batch_size: int, codec: str, overrides: Sequence[str],
                                   temperatures: str, policy: str, ladder: str, rungs: Sequence[str],
                                   book: str | None, opening_count: int, max_plies: int, workers: int, seed: int,
                                   confidence: float, out_dir: str, threads: int | None, no_progress: bool) -> None:
    """The chess transcendence study: a noisy Stockfish's self-play → a GPT (char-PGN or one token per
    move) → one gauntlet in which the model at each temperature and the generator play the same ladder,
    rated in one Elo fit. Prints the rating table and whether the coldest model rates above its generator.
    Defaults take about 40 minutes on 2 CPU cores; re-running continues."""
    from gamegpt.core.train import parse_overrides
    from gamegpt.experiments.chess_transcendence import (
        ChessTranscendenceConfig,
        format_chess_transcendence_table,
        run_chess_transcendence,
        with_noise_rate,
    )

    if not 0.0 < confidence < 1.0:
        raise UserError(f"--confidence must be between 0 and 1, got {confidence:g}")
    set_threads(threads)
    sizes = {"n_layer": layers, "n_head": heads, "n_embd": width, "max_steps": steps, "batch_size": batch_size}
    cfg = ChessTranscendenceConfig(out_dir=out_dir, generator=with_noise_rate(generator, noise), games=games,
                                   temperatures=floats(temperatures), policy=policy,
                                   ladder=list(rungs) if rungs else ladder, book=book, opening_count=opening_count,
                                   max_plies=max_plies, workers=workers, seed=seed, confidence=confidence,
                                   codec=codec, train_overrides={**sizes, **parse_overrides(overrides)})
    summary = run_chess_transcendence(cfg, progress=not no_progress)
    click.echo(format_chess_transcendence_table(summary))
    out = Path(out_dir)
    click.echo(f"wrote {out / 'summary.json'}, {out / 'table.txt'}, {out / 'transcendence.png'} and "
               f"{out / 'tournament'} (games, PGN, ratings)")


@experiment.command("chess-recipes")
@click.option("--train-records", required=True, type=click.Path(dir_okay=False),
              help="game records to train on (JSONL, e.g. from gamegpt data import-pgn)")
@click.option("--held-out", "held_out", required=True, type=click.Path(dir_okay=False),
              help="held-out game records (JSONL), never trained on")
@click.option("--recipes", default=",".join(["pgn-chars", "uci-moves", "uci-moves-board", "position-move",
                                             "uci-moves-small", "uci-moves-large"]),
              show_default=True, help="comma-separated recipes")
@click.option("--budget-seconds", type=float, default=1200.0, show_default=True,
              help="training CPU seconds per recipe (the training process's CPU time)")
@click.option("--legality-games", type=int, default=100, show_default=True, help="held-out games for legal rates")
@click.option("--agreement-positions", type=int, default=200, show_default=True,
              help="held-out positions labelled by Stockfish for top-1 agreement")
@click.option("--agreement-nodes", type=int, default=20000, show_default=True, help="Stockfish nodes per label")
@click.option("--opening-count", type=int, default=4, show_default=True,
              help="openings of the Elo gauntlet; each pairing plays each with both colours")
@click.option("--openings", "book", default=None,
              help="opening book (.pgn/.tsv; 'none': start position)  [default: the shipped book]")
@click.option("--max-plies", type=int, default=300, show_default=True, help="gauntlet games longer are drawn")
@click.option("--workers", type=int, default=2, show_default=True, help="processes for the gauntlet")
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads while training")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/chess-recipes", show_default=True)
@click.option("--no-progress", is_flag=True)
def experiment_chess_recipes(train_records: str, held_out: str, recipes: str, budget_seconds: float,
                             legality_games: int, agreement_positions: int, agreement_nodes: int, opening_count: int,
                             book: str | None, max_plies: int, workers: int, threads: int, seed: int, out_dir: str,
                             no_progress: bool) -> None:
    """Which way of writing chess teaches the most per CPU-second: every recipe (codec, block length, model
    size) trains on the same games for the same CPU seconds, then is measured the same way (raw legal rate
    by move number, top-1 agreement with Stockfish, Elo against the default ladder). Re-running continues."""
    from gamegpt.experiments.chess_recipes import ChessRecipesConfig, format_recipes_table, run_chess_recipes

    cfg = ChessRecipesConfig(out_dir=out_dir, train_records=train_records, held_out_records=held_out,
                             recipes=[r.strip() for r in recipes.split(",") if r.strip()],
                             budget_seconds=budget_seconds, legality_games=legality_games,
                             agreement_positions=agreement_positions, agreement_nodes=agreement_nodes,
                             opening_count=opening_count, max_plies=max_plies, workers=workers, threads=threads,
                             seed=seed, book=book)
    summary = run_chess_recipes(cfg, progress=not no_progress)
    click.echo(format_recipes_table(summary["rows"]))
    out = Path(out_dir)
    click.echo(f"wrote {out / 'summary.json'}, {out / 'table.txt'}, {out / 'recipes.png'} and {out / 'tournament'}")


def _number_list(text: str, option: str, kind: type = float) -> list:  # type: ignore[type-arg]
    """Comma-separated numbers, or a UserError (one line) naming the option."""
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{option}: expected comma-separated {'integers' if kind is int else 'numbers'}, "
                        f"got {text!r}") from None


@experiment.command("grokking")
@click.option("--preset", type=click.Choice(["default", "small", "tiny"]), default="default", show_default=True,
              help="sizes: default (30 min on one CPU core, measured), small (~10 min), tiny (seconds, for tests); "
                   "the options below override it")
@click.option("--tasks", default=None, help="comma-separated: modular, tictactoe  [default: both]")
@click.option("--weight-decays", default=None, help="comma-separated AdamW weight decays  [default: 0,0.1,0.3,1]")
@click.option("--seeds", default=None, help="comma-separated seeds  [default: 0,1,2]")
@click.option("--steps", type=int, default=None, help="full-batch training steps per run  [default: 3000]")
@click.option("--modulus", type=int, default=None, help="p of a + b mod p  [default: 97]")
@click.option("--threshold", type=float, default=None, help="validation accuracy that counts as generalised  [0.95]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/grokking", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads")
@click.option("--no-progress", is_flag=True)
def experiment_grokking(preset: str, tasks: str | None, weight_decays: str | None, seeds: str | None,
                        steps: int | None, modulus: int | None, threshold: float | None, out_dir: str, threads: int,
                        no_progress: bool) -> None:
    """Grokking: a weight-decay sweep over seeds on a + b mod p (half the pairs to train on) and on
    Newell–Simon's move in held-out tic-tac-toe positions; train and validation accuracy against log steps,
    and steps to generalise against weight decay. Re-running continues; other settings are refused."""
    from gamegpt.experiments.grokking import PRESETS, GrokkingConfig, format_grokking_table, run_grokking

    set_threads(threads)
    options: dict = PRESETS[preset].copy()  # type: ignore[type-arg]
    if tasks is not None:
        options["tasks"] = tuple(t.strip() for t in tasks.split(",") if t.strip())
    if weight_decays is not None:
        options["weight_decays"] = tuple(_number_list(weight_decays, "--weight-decays"))
    if seeds is not None:
        options["seeds"] = tuple(_number_list(seeds, "--seeds", int))
    for name, value in (("steps", steps), ("modulus", modulus), ("threshold", threshold)):
        if value is not None:
            options[name] = value
    summary = run_grokking(GrokkingConfig(out_dir=out_dir, **options), progress=not no_progress)
    click.echo(format_grokking_table(summary))
    out = Path(out_dir)
    click.echo(f"wrote {out / 'summary.json'}, {out / 'table.txt'}, {out / 'grokking_curves.png'}, "
               f"{out / 'steps_to_generalise.png'} and one JSON per run in {out / 'runs'}")


@experiment.command("platonic")
@click.option("--preset", type=click.Choice(["default", "small", "tiny"]), default="default", show_default=True,
              help="sizes: default (33 min on one CPU core, measured), small (~3 CPU minutes), tiny (seconds, for tests); "
                   "the options below override it")
@click.option("--noise", "noise_rates", default=None, help="comma-separated noise rates  [default: 0,0.05,0.5,0.8]")
@click.option("--seeds", default=None, help="comma-separated seeds, at least two  [default: 0,1,2]")
@click.option("--train-games", type=int, default=None, help="self-play games per noise rate  [default: 2000]")
@click.option("--steps", type=int, default=None, help="training steps per model  [default: 1000]")
@click.option("--positions", type=int, default=None, help="common positions the models are compared on  [600]")
@click.option("--k", type=int, default=None, help="neighbours of the mutual k-NN metric  [default: 10]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/platonic", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads")
@click.option("--no-progress", is_flag=True)
def experiment_platonic(preset: str, noise_rates: str | None, seeds: str | None, train_games: int | None,
                        steps: int | None, positions: int | None, k: int | None, out_dir: str, threads: int,
                        no_progress: bool) -> None:
    """The platonic representation study on tic-tac-toe: text models (the GPT on move transcripts) and image
    models (a CNN on pictures of the board) learn the next move from the same noisy Newell–Simon games;
    their layers are compared on common positions (mutual k-NN, debiased CKA) across seeds, noise rates and
    training steps, and a linear probe reads the board from each layer. Re-running continues; other
    settings are refused."""
    from gamegpt.experiments.platonic import PRESETS, PlatonicConfig, format_platonic_tables, run_platonic

    set_threads(threads)
    options: dict = PRESETS[preset].copy()  # type: ignore[type-arg]
    if noise_rates is not None:
        options["noise_rates"] = tuple(_number_list(noise_rates, "--noise"))
    if seeds is not None:
        options["seeds"] = tuple(_number_list(seeds, "--seeds", int))
    for name, value in (("train_games", train_games), ("steps", steps), ("positions", positions), ("k", k)):
        if value is not None:
            options[name] = value
    summary = run_platonic(PlatonicConfig(out_dir=out_dir, **options), progress=not no_progress)
    click.echo(format_platonic_tables(summary))
    out = Path(out_dir)
    click.echo(f"wrote {out / 'summary.json'}, {out / 'table.txt'}, {out / 'alignment_vs_layer.png'}, "
               f"{out / 'alignment_vs_step.png'}, {out / 'probe_by_layer.png'} and the models' activations in "
               f"{out / 'models'}")
