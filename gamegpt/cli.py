"""The `gamegpt` command: one group per area (selfplay, data, train, model, eval, experiment, play, uci).

User errors (bad path, malformed file, corrupt checkpoint, unknown player) print one line and exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from gamegpt.cliutil import Group, with_noise
from gamegpt.errors import UserError
from gamegpt.selfplay.chess_command import selfplay_chess

THREADS_HELP = "torch CPU threads (1 is fastest for play and evaluation of small models)"


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}") from None


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gamegpt")
def main() -> None:
    """gamegpt: small GPTs that learn games from transcripts, and play them.

    \b
    The pipeline, tic-tac-toe:
      gamegpt selfplay tictactoe --games 5000 --out data/ttt.jsonl   # game records
      gamegpt data shards data/ttt.jsonl --out data/ttt              # token shards
      gamegpt train --data data/ttt --out runs/ttt                   # checkpoints
      gamegpt eval tictactoe --model runs/ttt                        # scores, JSON, PNG
      gamegpt play tictactoe                                         # you against the shipped model
      gamegpt experiment noise                                       # the transcendence study
    """


# --------------------------------------------------------------------------- selfplay
@main.group(cls=Group)
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
def selfplay_tictactoe(first: str, second: str, noise: float | None, games: int, seed: int, out: str,
                       enumerate_: bool, threads: int) -> None:
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
        _set_threads(threads)
        specs = [with_noise(spec, noise) for spec in (first, second)]
        result = run_selfplay("tictactoe", specs, n_games=games, seed=seed, out=out)
        click.echo(f"{result.games_new} new games, {result.games_total} in all; results {result.results}")
    click.echo(f"wrote {result.records_path} and {result.summary_path}")


selfplay.add_command(selfplay_chess, "chess")


# --------------------------------------------------------------------------- data
@main.group(cls=Group)
def data() -> None:
    """Game records → token shards."""


@data.command("shards")
@click.argument("records", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), required=True, help="shard directory to create")
@click.option("--game", default="tictactoe", show_default=True)
@click.option("--codec", default=None, help="codec name (default: the game's)")
@click.option("--block-len", type=int, default=None, help="tokens per block (default: 64 tic-tac-toe, 1024 chess)")
@click.option("--val-fraction", type=float, default=0.05, show_default=True, help="share of games held out")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="replace --out if it exists")
def data_shards(records: Sequence[str], out: str, game: str, codec: str | None, block_len: int | None,
                val_fraction: float, seed: int, overwrite: bool) -> None:
    """Encode game records with a codec and pack them into train/val token shards."""
    from gamegpt.selfplay.dataset import records_to_shards

    meta = records_to_shards(list(records), out, game=game, codec_name=codec, block_len=block_len,
                             val_fraction=val_fraction, seed=seed, overwrite=overwrite)
    click.echo(f"{meta['n_games']['train']} train / {meta['n_games']['val']} val games, "
               f"{meta['n_blocks']['train']} / {meta['n_blocks']['val']} blocks of {meta['block_len']} tokens")
    click.echo(f"wrote {out}")


@data.command("import-pgn")
@click.argument("pgn_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="records file (JSONL) to write")
def data_import_pgn(pgn_files: Sequence[str], out: str) -> None:
    """Turn PGN files into chess game records; variants and broken games are skipped and counted."""
    from gamegpt.selfplay.pgn_import import import_pgn

    report = import_pgn(list(pgn_files), out)
    click.echo(report.describe())
    click.echo(f"wrote {out}")


# --------------------------------------------------------------------------- train
@main.command()
@click.option("--data", "data_dir", type=click.Path(), default=None, help="token shard directory")
@click.option("--out", "out_dir", type=click.Path(), default=None, help="run directory (checkpoints, log)")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="YAML train config")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a config option (repeatable)")
@click.option("--resume", is_flag=True, help="continue exactly from the run's latest checkpoint")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def train(data_dir: str | None, out_dir: str | None, config_path: str | None, overrides: Sequence[str],
          resume: bool, no_progress: bool) -> None:
    """Train a GPT on token shards (CPU or CUDA, picked automatically; several processes under torchrun).

    \b
    Options (YAML keys or --set): n_layer n_head n_embd dropout batch_size max_steps learning_rate min_lr
    warmup_steps weight_decay grad_clip eval_interval checkpoint_interval keep_checkpoints seed device dtype
    threads. Ctrl-C saves a checkpoint; --resume continues from it.
    """
    from gamegpt.core.train import load_train_config, train as run_training

    items = list(overrides)
    if data_dir:
        items.append(f"data_dir={data_dir}")
    if out_dir:
        items.append(f"out_dir={out_dir}")
    cfg = load_train_config(config_path, items)
    result = run_training(cfg, resume=resume, progress=not no_progress)
    if result.checkpoint is not None:
        losses = f"train loss {result.train_loss:.4f}" if result.train_loss is not None else ""
        if result.val_loss is not None:
            losses += f", val loss {result.val_loss:.4f}"
        click.echo(f"step {result.step}: {losses}")
        click.echo(f"wrote {result.checkpoint}")




# --------------------------------------------------------------------------- model
@main.group(cls=Group)
def model() -> None:
    """Inspect and export checkpoints."""


@model.command("export")
@click.argument("source", type=click.Path())
@click.argument("destination", type=click.Path(file_okay=False))
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True)
@click.option("--overwrite", is_flag=True)
def model_export(source: str, destination: str, dtype: str, overwrite: bool) -> None:
    """Copy a run's latest (or a given) checkpoint's model for shipping: config.json + model.safetensors."""
    from gamegpt.core.checkpoint import export_model

    path = export_model(source, destination, dtype=dtype, overwrite=overwrite)
    click.echo(f"wrote {path}")


@model.command("info")
@click.argument("path", type=click.Path())
def model_info(path: str) -> None:
    """Print a checkpoint's architecture, codec and training summary."""
    from gamegpt.core.checkpoint import read_checkpoint_config
    from gamegpt.engine.model_player import resolve_model_path

    config = read_checkpoint_config(resolve_model_path(path))
    meta = config.get("meta", {})
    click.echo(json.dumps({"path": str(config.get("path")), "model": config["model"], "codec": config.get("codec"),
                           "step": config.get("step", meta.get("step")), "train_loss": meta.get("train_loss"),
                           "val_loss": meta.get("val_loss")}, indent=2, default=str))


# --------------------------------------------------------------------------- eval
@main.group(cls=Group)
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
    from gamegpt.selfplay.runner import write_json_atomic

    _set_threads(threads)
    if games < 1:
        raise UserError("--games must be at least 1")
    subjects = {f"T={t:g}": load_model_player(model_path, "tictactoe", temperature=t, policy=policy)
                for t in _floats(temperatures)}
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
    from gamegpt.eval.legality import format_legality_table, legal_move_rate, plot_legality
    from gamegpt.records import iter_records
    from gamegpt.selfplay.pgn_import import import_pgn
    from gamegpt.selfplay.runner import write_json_atomic

    _set_threads(threads)
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
    numbers = [int(n) for n in _floats(move_numbers)]
    results = []
    for name in models:
        player = load_model_player(name, None, temperature=temperature, policy="raw")
        results.append(legal_move_rate(player, held_out, move_numbers=numbers, seed=seed, label=name))
    click.echo(format_legality_table(results))
    out = Path(out_dir)
    write_json_atomic(out / "legality.json", {"games": len(held_out), "source": pgn or records,
                                              "results": [r.to_dict() for r in results]})
    plot_legality(results, out / "legality.png", title=f"legal first samples on {Path(pgn or records or '').name}")
    click.echo(f"wrote {out / 'legality.json'} and {out / 'legality.png'}")


@eval.command("puzzles")
@click.option("--model", "models", multiple=True, required=True, help="checkpoint path or shipped name (repeatable)")
@click.option("--puzzles", "puzzles_path", type=click.Path(dir_okay=False), required=True,
              help="Lichess-format puzzle CSV (optional History column: the game's moves from the start)")
@click.option("--temperature", type=float, default=0.001, show_default=True, help="0 = the most likely move")
@click.option("--policy", type=click.Choice(["raw", "retry", "mask"]), default="retry", show_default=True,
              help="retry: Karvonen's 5 samples; raw: an illegal first sample fails the puzzle; mask: only legal moves")
@click.option("--limit", type=int, default=None, help="use the first N rows of the file")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results/puzzles", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help=THREADS_HELP)
@click.option("--no-progress", is_flag=True)
def eval_puzzles(models: Sequence[str], puzzles_path: str, temperature: float, policy: str, limit: int | None,
                 seed: int, out_dir: str, threads: int, no_progress: bool) -> None:
    """Puzzle solve rate by rating bucket (<900, 900, ..., 1400+, unrated), with a random-legal-move baseline.

    A puzzle is solved when every solver move matches the solution (a mating move always counts). Models
    without start-position encoding need the History column; FEN-only puzzles are skipped for them and
    counted. Malformed rows are skipped and counted."""
    from gamegpt.engine.model_player import load_model_player
    from gamegpt.eval.puzzles import evaluate_puzzles, format_puzzle_table, plot_puzzles, read_puzzles
    from gamegpt.selfplay.runner import write_json_atomic

    _set_threads(threads)
    if len(set(models)) != len(models):
        raise UserError("a --model is given twice")
    puzzle_set = read_puzzles(puzzles_path, limit=limit)
    players = {name: load_model_player(name, "chess", temperature=temperature, policy=policy) for name in models}
    settings = {"temperature": temperature, "policy": policy, "limit": limit, "seed": seed}
    evaluation = evaluate_puzzles(players, puzzle_set, seed=seed, settings=settings, progress=not no_progress)
    click.echo(format_puzzle_table(evaluation))
    out = Path(out_dir)
    write_json_atomic(out / "puzzles.json", evaluation.to_dict())
    plot_puzzles(evaluation, out / "puzzles.png", title=f"puzzles solved: {Path(puzzles_path).name} ({policy} policy)")
    click.echo(f"wrote {out / 'puzzles.json'} and {out / 'puzzles.png'}")


# --------------------------------------------------------------------------- experiment
@main.group(cls=Group)
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
    from gamegpt.eval.transcendence import NoiseExperimentConfig, format_noise_table, run_noise_experiment

    _set_threads(threads)
    train_overrides = _parse_overrides(overrides)
    cfg = NoiseExperimentConfig(out_dir=out_dir, noise_rates=_floats(noise_rates), temperatures=_floats(temperatures),
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
@click.option("--codec", type=click.Choice(["chess-pgn-chars", "chess-uci-moves"]), default="chess-pgn-chars",
              show_default=True, help="Karvonen's character PGN, or one token per move")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override any training option")
@click.option("--temperatures", default="1.0,0.1,0.001", show_default=True, help="the model's temperatures")
@click.option("--policy", type=click.Choice(["mask", "raw"]), default="mask", show_default=True,
              help="the model's decoding policy in the tournament (raw: an illegal move loses the game)")
@click.option("--ladder", default="default", show_default=True, help="ladder preset (see gamegpt tournament)")
@click.option("--rung", "rungs", multiple=True, metavar="[NAME=]SPEC",
              help="a ladder rung, strongest first (repeatable; replaces --ladder)")
@click.option("--openings", "book", default=None,
              help="opening book (.pgn/.tsv; 'none': start position)  [default: ../shared/data/openings/2moves_v2.pgn]")
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
    from gamegpt.eval.chess_transcendence import (
        ChessTranscendenceConfig,
        format_chess_transcendence_table,
        run_chess_transcendence,
        with_noise_rate,
    )

    if not 0.0 < confidence < 1.0:
        raise UserError(f"--confidence must be between 0 and 1, got {confidence:g}")
    _set_threads(threads)
    sizes = {"n_layer": layers, "n_head": heads, "n_embd": width, "max_steps": steps, "batch_size": batch_size}
    cfg = ChessTranscendenceConfig(out_dir=out_dir, generator=with_noise_rate(generator, noise), games=games,
                                   temperatures=_floats(temperatures), policy=policy,
                                   ladder=list(rungs) if rungs else ladder, book=book, opening_count=opening_count,
                                   max_plies=max_plies, workers=workers, seed=seed, confidence=confidence,
                                   codec=codec, train_overrides={**sizes, **_parse_overrides(overrides)})
    summary = run_chess_transcendence(cfg, progress=not no_progress)
    click.echo(format_chess_transcendence_table(summary))
    out = Path(out_dir)
    click.echo(f"wrote {out / 'summary.json'}, {out / 'table.txt'}, {out / 'transcendence.png'} and "
               f"{out / 'tournament'} (games, PGN, ratings)")


# --------------------------------------------------------------------------- recipe
@main.group(cls=Group)
def recipe() -> None:
    """One-command recipes that make the shipped default models."""


@recipe.command("tictactoe")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/tictactoe-default", show_default=True)
@click.option("--games", type=int, default=5000, show_default=True, help="self-play games per match-up")
@click.option("--eval-games", type=int, default=500, show_default=True, help="games per evaluation setting")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a training option")
@click.option("--install", is_flag=True, help="copy the model and its card to models/tictactoe")
@click.option("--threads", type=int, default=None, help="torch CPU threads for training (default: torch's)")
@click.option("--no-progress", is_flag=True)
def recipe_tictactoe(out_dir: str, games: int, eval_games: int, seed: int, overrides: Sequence[str],
                     install: bool, threads: int | None, no_progress: bool) -> None:
    """Self-play → shards → training → export → evaluation → model card, for the default tic-tac-toe model."""
    from gamegpt.engine.model_player import MODELS_DIR
    from gamegpt.eval.tictactoe import SettingResult, format_table
    from gamegpt.recipes import tictactoe_default

    _set_threads(threads)
    summary = tictactoe_default(out_dir, games_per_matchup=games, eval_games=eval_games, seed=seed,
                                install_to=MODELS_DIR / "tictactoe" if install else None,
                                progress=not no_progress, train_overrides=_parse_overrides(overrides))
    results = [SettingResult(**{k: v for k, v in r.items() if k in SettingResult.__dataclass_fields__})
               for r in summary["results"]]
    click.echo(format_table(results))
    click.echo(f"wrote {Path(out_dir) / 'model'}" + (f" and {MODELS_DIR / 'tictactoe'}" if install else ""))


@recipe.command("chess")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/chessgpt-default", show_default=True)
@click.option("--games", type=int, default=8000, show_default=True, help="Stockfish self-play games to train on")
@click.option("--held-out-games", type=int, default=200, show_default=True)
@click.option("--workers", type=int, default=2, show_default=True, help="self-play processes")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fischer", type=click.Path(dir_okay=False), default=None,
              help="real games for the legality table (default: ../shared/data/games/fischer.pgn if present)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a training option")
@click.option("--install", is_flag=True, help="copy the model and its card to models/chessgpt")
@click.option("--threads", type=int, default=None, help="torch CPU threads for training (default: torch's)")
@click.option("--no-progress", is_flag=True)
def recipe_chess(out_dir: str, games: int, held_out_games: int, workers: int, seed: int, fischer: str | None,
                 overrides: Sequence[str], install: bool, threads: int | None, no_progress: bool) -> None:
    """Stockfish self-play → char-PGN shards → training → export → legality tables → model card."""
    from gamegpt.engine.model_player import MODELS_DIR
    from gamegpt.recipes import chess_default

    _set_threads(threads)
    if fischer is None:
        from gamegpt.shared_data import shared_file

        default = shared_file("games", "fischer.pgn")
        fischer = str(default) if default else None
    chess_default(out_dir, games=games, held_out_games=held_out_games, workers=workers, seed=seed,
                  fischer_pgn=fischer, install_to=MODELS_DIR / "chessgpt" if install else None,
                  progress=not no_progress, train_overrides=_parse_overrides(overrides))
    model_dir = Path(out_dir) / "model"
    click.echo((model_dir / "README.md").read_text())
    click.echo(f"wrote {model_dir}" + (f" and {MODELS_DIR / 'chessgpt'}" if install else ""))


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    import yaml

    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


# --------------------------------------------------------------------------- puzzles
@main.group(cls=Group)
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

    from gamegpt.eval.puzzle_maker import MakerSettings, make_puzzles

    settings = MakerSettings(nodes=stockfish_nodes, win_cp=win_cp, unclear_cp=unclear_cp,
                             max_solver_moves=max_solver_moves, min_ply=min_ply, per_game=per_game)
    report = make_puzzles(games_path, out, settings=settings, max_puzzles=max_puzzles, stockfish=stockfish,
                          overwrite=overwrite,
                          progress=None if no_progress else partial(tqdm, desc="games", unit="game"))
    click.echo(report.describe())
    click.echo(f"wrote {out}")


# --------------------------------------------------------------------------- tournament
from gamegpt.eval.tournament_command import tournament  # noqa: E402 - light: heavy imports run inside it

main.add_command(tournament, "tournament")


# --------------------------------------------------------------------------- play
@main.group(cls=Group)
def play() -> None:
    """Play a model yourself, in the terminal."""


@play.command("tictactoe")
@click.option("--model", "model_path", default="tictactoe", show_default=True, help="checkpoint path or shipped model name")
@click.option("--as", "side", type=click.Choice(["x", "o"]), default="x", show_default=True, help="the side you play")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="the model's temperature (0 = its best move)")
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
@click.option("--temperature", type=float, default=0.0, show_default=True, help="the model's temperature (0 = its best move)")
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

    _set_threads(1)
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


# --------------------------------------------------------------------------- uci
@main.command()
@click.option("--model", "model_path", default=None,
              help="checkpoint path, shipped model name or nanoGPT ckpt.pt (default: chessgpt; "
                   "also the UCI option Model)")
def uci(model_path: str | None) -> None:
    """Run ChessGPT as a UCI engine on stdin/stdout: add `gamegpt uci` as an engine in any chess GUI or
    tournament manager. Options (Model, Policy, Temperature, Seed, ...) are set through the GUI."""
    from gamegpt.engine.uci import main as uci_main

    uci_main(model_path)


# --------------------------------------------------------------------------- bot
@main.group("bot", cls=Group)
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
    _set_threads(config.engine.threads)
    lichess_bot = LichessBot(config, token)  # loads the model: a bad model path stops here
    click.echo(f"finished games are saved as PGN under {Path(config.games.pgn_dir).resolve()}")
    try:
        lichess_bot.run()  # returns after its bounded joins; every finished game is already saved
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        _exit_now(130)
    _exit_now(0)


def _exit_now(code: int) -> None:
    """Flush and end the process without interpreter shutdown, which can abort on a daemon thread still
    inside torch (an abandoned decoding), as `gamegpt uci` showed."""
    import logging
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
