"""`gamegpt activations`, `gamegpt probe`, `gamegpt intervene`, `gamegpt sae ...`: looking inside a model
(gamegpt.interp). Each writes JSON + PNG under --out and prints its table."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import click

from gamegpt.cli.common import Command, Group, set_threads

INTERP_THREADS = 1
"""Threads unless asked: these small models run fastest so, and the machine is shared."""

GAMES = click.Choice(["tictactoe", "chess"])


def _game_options(f):  # type: ignore[no-untyped-def]
    f = click.option("--expert-games", type=int, default=None,
                     help="expert games (tic-tac-toe: Newell–Simon self-play; chess: games of --pgn)  "
                          "[default: 300 tic-tac-toe, 60 chess]")(f)
    f = click.option("--random-games", type=int, default=None,
                     help="games of random legal moves  [default: 300 tic-tac-toe, 20 chess]")(f)
    f = click.option("--pgn", type=click.Path(dir_okay=False), default=None,
                     help="chess: the PGN of expert games  [default: the shared fischer.pgn]")(f)
    f = click.option("--seed", type=int, default=0, show_default=True)(f)
    f = click.option("--threads", type=int, default=None, help="torch and BLAS CPU threads  [default: 1]")(f)
    f = click.option("--no-progress", is_flag=True)(f)
    return f


def _counts(game: str, expert: int | None, random_games: int | None) -> tuple[int, int]:
    default = (300, 300) if game == "tictactoe" else (60, 20)
    return (default[0] if expert is None else expert, default[1] if random_games is None else random_games)


def _parse_models(models: Sequence[str]) -> list[tuple[str, str | None]]:
    """`PATH` or `LABEL=PATH`."""
    parsed: list[tuple[str, str | None]] = []
    for text in models:
        label, sep, path = text.partition("=")
        parsed.append((path, label) if sep and not Path(text).exists() else (text, None))
    return parsed


@click.command("activations", cls=Command)
@click.argument("game", type=GAMES)
@click.option("--model", "model_path", required=True, help="checkpoint path or shipped model name")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="the cache directory")
@_game_options
def activations(game: str, model_path: str, out: str, expert_games: int | None, random_games: int | None,
                pgn: str | None, seed: int, threads: int | None, no_progress: bool) -> None:
    """Cache a model's residual stream (every layer) and MLP outputs at the probe positions of seeded games,
    with the board and other labels of each position (numpy .npy memmaps + JSON)."""
    from gamegpt.interp.activations import build_cache, load_studied_model
    from gamegpt.interp.sources import make_games

    set_threads(threads, default=INTERP_THREADS)
    expert, rand = _counts(game, expert_games, random_games)
    cache = build_cache(load_studied_model(model_path, game), make_games(game, expert, rand, seed, pgn), out,
                        progress=not no_progress)
    click.echo(f"{len(cache)} positions x {cache.n_layer + 1} resid layers x width {cache.meta['width']}")
    click.echo(f"wrote {out}")


@click.command("probe", cls=Command)
@click.argument("game", type=GAMES)
@click.option("--model", "models", multiple=True,
              help="checkpoint path or shipped model name, or LABEL=PATH (repeatable: several models, one plot)")
@click.option("--noise-study", type=click.Path(file_okay=False), default=None,
              help="add the models of a `gamegpt experiment noise` directory (noise-*/model)")
@click.option("--layers", default=None, help="comma-separated resid layers (0 = embeddings)  [default: all]")
@click.option("--steps", type=int, default=30, show_default=True, help="L-BFGS iterations of each probe")
@click.option("--out", type=click.Path(file_okay=False), default="results/probe", show_default=True)
@_game_options
def probe(game: str, models: Sequence[str], noise_study: str | None, layers: str | None, steps: int, out: str,
          expert_games: int | None, random_games: int | None, pgn: str | None, seed: int, threads: int | None,
          no_progress: bool) -> None:
    """Linear board probes per layer (softmax per square; white/black and mine/theirs), side to move, check
    (chess) or the perfect-play value (tic-tac-toe), trained and scored on separate games, beside a randomly
    initialised model of the same shape and the majority class."""
    from gamegpt.errors import UserError
    from gamegpt.interp.probe_study import format_probe_table, run_probe_study

    set_threads(threads, default=INTERP_THREADS)
    specs = _parse_models(models)
    if noise_study is not None:
        found = sorted(Path(noise_study).glob("noise-*/model"), key=lambda p: float(p.parent.name[6:]))
        if not found:
            raise UserError(f"no noise-*/model in {noise_study}")
        specs += [(str(p), f"noise {p.parent.name[6:]}") for p in found]
    if not specs:
        raise UserError("give --model or --noise-study")
    layer_list = None
    if layers:
        try:
            layer_list = [int(x) for x in layers.split(",") if x.strip()]
        except ValueError:
            raise click.BadParameter(f"expected comma-separated integers, got {layers!r}") from None
    expert, rand = _counts(game, expert_games, random_games)
    summary = run_probe_study(specs, game, out, expert_games=expert, random_games=rand, seed=seed, steps=steps,
                              layers=layer_list, pgn=pgn, progress=not no_progress)
    click.echo(format_probe_table(summary))
    click.echo(f"wrote {Path(out) / 'probe.json'}, {Path(out) / 'probe-table.txt'}, "
               f"{Path(out) / 'probe-accuracy.png'} and {Path(out) / 'probe-position.png'}")


def _cache_for(game: str, model_path: str, cache_dir: str | None, out: Path, expert_games: int | None,
               random_games: int | None, pgn: str | None, seed: int, progress: bool):  # type: ignore[no-untyped-def]
    from gamegpt.interp.activations import ActivationCache, build_cache, load_studied_model
    from gamegpt.interp.sources import make_games

    studied = load_studied_model(model_path, game)
    if cache_dir is not None:
        cache = ActivationCache(cache_dir)
    else:
        expert, rand = _counts(game, expert_games, random_games)
        cache = build_cache(studied, make_games(game, expert, rand, seed, pgn), out / "activations", progress=progress)
    return studied, cache


@click.command("intervene", cls=Command)
@click.argument("game", type=GAMES)
@click.option("--model", "model_path", default="tictactoe", show_default=True)
@click.option("--probes", "probe_dir", type=click.Path(file_okay=False), required=True,
              help="the --out of a `gamegpt probe` run on this model (its probes and activations)")
@click.option("--layer", type=int, default=None, help="resid layer to edit  [default: the probe's best]")
@click.option("--positions", type=int, default=60, show_default=True, help="held-out positions to edit")
@click.option("--scales", default="1,2,4", show_default=True, help="how far past the probe's boundary to push")
@click.option("--out", type=click.Path(file_okay=False), default="results/intervene", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="torch and BLAS CPU threads  [default: 1]")
def intervene(game: str, model_path: str, probe_dir: str, layer: int | None, positions: int, scales: str, out: str,
              seed: int, threads: int | None) -> None:
    """Edit the board the model sees with the probe direction (tic-tac-toe: flip one square; chess: remove the
    piece of the model's top move); how often do its moves follow the edited board?"""
    import json

    import numpy as np

    from gamegpt.cli.common import floats
    from gamegpt.errors import UserError
    from gamegpt.interp.activations import ActivationCache, load_studied_model
    from gamegpt.interp.intervention import format_intervention_table, run_intervention
    from gamegpt.interp.probe_study import load_probe, slug, split_masks

    set_threads(threads, default=INTERP_THREADS)
    studied = load_studied_model(model_path, game)
    summary_path = Path(probe_dir) / "probe.json"
    if not summary_path.is_file():
        raise UserError(f"no probe.json in {probe_dir}: run `gamegpt probe` first")
    summary = json.loads(summary_path.read_text())
    row = summary["models"].get(studied.label)
    if row is None:
        raise UserError(f"the probe run in {probe_dir} has no model {studied.label} "
                        f"(it has {', '.join(summary['models'])})")
    if layer is None:
        accuracy = row["targets"]["board (white/black)"]["accuracy"]
        layer = summary["layers"][int(np.argmax(accuracy))]
    if not 0 <= layer <= studied.n_layer:
        raise UserError(f"layer {layer} is out of range: resid layers are 0-{studied.n_layer}")
    cache = ActivationCache(Path(probe_dir) / "activations" / slug(studied.label))
    probe = load_probe(Path(probe_dir) / "probes" / slug(studied.label), "board", layer)
    _, test = split_masks(cache, summary["seed"])
    chosen = np.flatnonzero(test)[:positions].tolist()
    result = run_intervention(studied, cache, probe, layer, out, positions=chosen, scales=floats(scales), seed=seed)
    click.echo(format_intervention_table(result))
    click.echo(f"wrote {Path(out) / 'intervention.json'}, {Path(out) / 'intervention-table.txt'} and "
               f"{Path(out) / 'intervention.png'}")


@click.group(cls=Group)
def sae() -> None:
    """Sparse autoencoders on a model's activations: train, report, meta-SAE."""


@sae.command("train")
@click.argument("game", type=GAMES)
@click.option("--model", "model_path", required=True, help="checkpoint path or shipped model name")
@click.option("--site", type=click.Choice(["resid", "mlp"]), default="mlp", show_default=True)
@click.option("--layer", type=int, default=2, show_default=True, help="resid 0..n_layer, mlp 1..n_layer")
@click.option("--kind", type=click.Choice(["topk", "relu"]), default="topk", show_default=True)
@click.option("--latents", type=int, default=256, show_default=True)
@click.option("--k", type=int, default=8, show_default=True, help="topk: latents kept per position")
@click.option("--l1", type=float, default=3e-3, show_default=True, help="relu: L1 coefficient")
@click.option("--sae-steps", "steps", type=int, default=3000, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
              help="an activation cache of this model to train on  [default: build one under --out]")
@click.option("--out", type=click.Path(file_okay=False), default="results/sae", show_default=True)
@_game_options
def sae_train(game: str, model_path: str, site: str, layer: int, kind: str, latents: int, k: int, l1: float,
              steps: int, lr: float, cache_dir: str | None, out: str, expert_games: int | None,
              random_games: int | None, pgn: str | None, seed: int, threads: int | None, no_progress: bool) -> None:
    """Train an SAE (TopK, or ReLU+L1 with unit-norm decoder rows) on one site, on the training games; resumes."""
    from gamegpt.interp.probe_study import split_masks
    from gamegpt.interp.sae import SAEConfig, reconstruction_metrics, train_sae

    set_threads(threads, default=INTERP_THREADS)
    out_path = Path(out)
    studied, cache = _cache_for(game, model_path, cache_dir, out_path, expert_games, random_games, pgn, seed,
                                not no_progress)
    x = cache.site(site, layer)
    train, test = split_masks(cache, seed)
    config = SAEConfig(width=x.shape[1], latents=latents, kind=kind, k=k, l1=l1, lr=lr, steps=steps, seed=seed)
    extra = {"model": model_path, "game": game, "site": site, "layer": layer, "cache": str(cache.path), "seed": seed}
    sae_model = train_sae(x[train], config, out_path, extra=extra, progress=not no_progress)
    metrics = reconstruction_metrics(sae_model, x[test])
    click.echo(f"held-out: L0 {metrics['l0']:.2f}, variance explained {metrics['variance_explained']:.3f}, "
               f"dead latents {metrics['dead_latents']}/{metrics['latents']}")
    click.echo(f"wrote {out_path / 'sae.safetensors'} and {out_path / 'sae-state.json'}")


@sae.command("report")
@click.argument("sae_dir", type=click.Path(file_okay=False))
@click.option("--threads", type=int, default=None, help="torch and BLAS CPU threads  [default: 1]")
def sae_report(sae_dir: str, threads: int | None) -> None:
    """Metrics and figures of a trained SAE: L0, variance explained, dead latents, loss recovered, coverage,
    board reconstruction, top-activating boards per latent, t-SNE (expert vs random), a latent zeroed/clamped."""
    from gamegpt.interp.activations import ActivationCache, load_studied_model
    from gamegpt.interp.sae import load_sae
    from gamegpt.interp.sae_study import format_sae_report, run_sae_report

    set_threads(threads, default=INTERP_THREADS)
    _, state = load_sae(sae_dir)
    studied = load_studied_model(state["model"], state["game"])
    cache = ActivationCache(state["cache"])
    report = run_sae_report(studied, cache, sae_dir, seed=state.get("seed", 0))
    click.echo(format_sae_report(report))
    click.echo(f"wrote {Path(sae_dir) / 'sae-report.json'}, sae-report.txt, sae-latents.png, sae-tsne.png"
               + (", sae-clamp.png" if studied.game == "tictactoe" else ""))


@sae.command("meta")
@click.argument("sae_dir", type=click.Path(file_okay=False))
@click.option("--meta-latents", type=int, default=32, show_default=True)
@click.option("--k", type=int, default=2, show_default=True, help="meta-latents kept per SAE latent")
@click.option("--steps", type=int, default=2000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="[default: SAE_DIR/meta-sae]")
def sae_meta(sae_dir: str, meta_latents: int, k: int, steps: int, seed: int, out: str | None) -> None:
    """A meta-SAE on the decoder directions of the SAE in SAE_DIR (Bussmann et al. 2024): which SAE latents
    each meta-latent groups, with their board features (after `gamegpt sae report`), and how often a group
    shares a square or a mark against random groups."""
    from gamegpt.interp.meta_sae import format_meta_sae_report, run_meta_sae

    out_path = Path(out) if out is not None else Path(sae_dir) / "meta-sae"
    report = run_meta_sae(sae_dir, out_path, meta_latents=meta_latents, k=k, steps=steps, seed=seed)
    click.echo(format_meta_sae_report(report))
    click.echo(f"wrote {out_path / 'meta-sae-report.json'}, meta-sae-report.txt and meta-sae-groups.png")
