"""Which way of writing chess teaches a small GPT the most chess per CPU-second: a compute-matched study.

Every recipe (a codec, a block length, a model size) trains on the same games for the same budget of
**CPU seconds** (the training process's CPU time, `time.process_time`, summed over its steps: unlike wall
time it does not grow when other work shares the machine). The budget becomes a step count from a short
probe of the recipe's own steps (`PROBE_STEPS`), so the cosine schedule ends where the budget does; the CPU
seconds actually spent are recorded. Snapshots at `SNAPSHOT_FRACTIONS` of the budget are measured the
same way as the end:

- the raw policy's first-sample legal-move rate (temperature 1) by move number on held-out games;
- top-1 agreement of the masked model (temperature 0.001) with Stockfish's best move on held-out positions
  (`gamegpt.eval.agreement`, labels made once and cached);
- and, for the final models only, Elo in one gauntlet against a ladder (default: the default ladder; mask,
  temperature 0.001), each rung also playing its neighbour.

A recipe with a teacher (distillation, `Recipe.teacher_games`) first has Stockfish value the positions of its
first games; that labelling time is reported beside the budget (`label_s`), not spent from it.

Every stage is skipped or continued when the study is re-run with the same settings (other settings are
refused). Files in `out_dir`: experiment.json, records/ (the train subset a recipe reads), shards/<codec>/,
teachers/ (move-value tables), runs/<recipe>/ (checkpoints, log, budget.json), models/<recipe>/<snapshot>/
(exported model, eval.json), agreement-positions.json, tournament/, summary.json, table.txt, recipes.png.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from gamegpt.arena.records import iter_records, read_records
from gamegpt.arena.runs import check_settings
from gamegpt.arena.specs import PlayerSpec
from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.core.checkpoint import export_model, read_checkpoint_config, resolve_checkpoint
from gamegpt.core.train import TrainConfig, train
from gamegpt.engine.model_player import load_model_player
from gamegpt.errors import UserError
from gamegpt.eval.agreement import LabelledPosition, label_positions, top1_agreement
from gamegpt.eval.legality import legal_move_rate
from gamegpt.eval.openings import openings_from_book
from gamegpt.eval.plots import pyplot, save_figure
from gamegpt.eval.tournament import Entrant, resolve_anchor, run_tournament
from gamegpt.experiments.chess_transcendence import ladder_of
from gamegpt.selfplay.dataset import records_to_shards
from gamegpt.selfplay.move_values import labelling_seconds, value_records


@dataclass(frozen=True)
class Recipe:
    """One way to train: the codec and its block length (None: the codec's sample length), the model's
    shape and the optimizer settings. Batches hold about 4096 tokens whatever the block length."""

    codec: str
    block_len: int | None
    n_layer: int
    n_head: int
    n_embd: int
    batch_size: int
    learning_rate: float
    description: str
    max_games: int | None = None
    """Read only the first games of the train file (a position codec makes ~80 samples of a game)."""
    board_head: bool = False
    """Train with the auxiliary board loss (`GPT.forward`'s board_targets: the 64 squares after each move)."""
    legal_loss_weight: float = 0.0
    """Train with the auxiliary legal-move loss at this weight (`TrainConfig.legal_loss_weight`); 0: off."""
    teacher_games: int = 0
    """Distillation: Stockfish values every position of the first `teacher_games` train games (a MultiPV search
    of `teacher_nodes`, `gamegpt data move-values`), and each move target whose position was valued also learns
    that distribution (`TrainConfig.distill_values`, at `distill_temperature` and `distill_loss_weight`). The
    labelling time is recorded beside the training budget, not taken from it. 0: no teacher."""
    teacher_nodes: int = 1000
    distill_temperature: float = 0.01
    distill_loss_weight: float = 2.0

    def train_options(self) -> dict[str, Any]:
        return {"n_layer": self.n_layer, "n_head": self.n_head, "n_embd": self.n_embd,
                "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "min_lr": self.learning_rate / 10, "warmup_steps": 50, "weight_decay": 0.1,
                "eval_batches": 8, "keep_checkpoints": 2, "board_head": self.board_head,
                "legal_loss_weight": self.legal_loss_weight,
                **({"distill_temperature": self.distill_temperature, "distill_loss_weight": self.distill_loss_weight}
                   if self.teacher_games else {})}

    def settings(self) -> dict[str, Any]:
        """The recipe as a study's experiment.json records it (the auxiliary losses and the teacher only when
        on, so studies made before they existed continue)."""
        optional = ("board_head", "legal_loss_weight", "teacher_games")
        teacher = ("teacher_nodes", "distill_temperature", "distill_loss_weight")
        return {k: v for k, v in asdict(self).items()
                if (k not in optional or v) and (k not in teacher or self.teacher_games)}


RECIPES: dict[str, Recipe] = {
    "pgn-chars": Recipe("chess-pgn-chars", 1024, 4, 4, 256, 4, 1e-3,
                        "Karvonen's character PGN, 1024-character blocks, 4x256"),
    "uci-moves": Recipe("chess-uci-moves", 512, 4, 4, 256, 8, 1e-3,
                        "one token per move (UCI), 512-move blocks, 4x256"),
    "position-move": Recipe("chess-position-move", None, 4, 4, 256, 56, 1e-3,
                            "the position as 64 squares + side/castling/en passant, then the move; 4x256",
                            max_games=4000),
    "position-move-legal": Recipe("chess-position-move", None, 4, 4, 256, 56, 1e-3,
                                  "the position, then the move, 4x256, plus the legal-move loss (weight 1)",
                                  max_games=4000, legal_loss_weight=1.0),
    "uci-moves-board": Recipe("chess-uci-moves", 512, 4, 4, 256, 8, 1e-3,
                              "one token per move, 512-move blocks, 4x256, plus an auxiliary loss that reads "
                              "the 64 squares after each move", board_head=True),
    "uci-moves-small-teacher": Recipe("chess-uci-moves", 512, 2, 4, 128, 8, 2e-3,
                                      "one token per move, 512-move blocks, 2x128, plus Stockfish's values of "
                                      "every move (1,000 nodes) in the first 16,000 games as a second target",
                                      teacher_games=16_000),
    "uci-moves-small": Recipe("chess-uci-moves", 512, 2, 4, 128, 8, 2e-3,
                              "one token per move, 512-move blocks, 2x128"),
    "uci-moves-large": Recipe("chess-uci-moves", 512, 6, 6, 384, 8, 6e-4,
                              "one token per move, 512-move blocks, 6x384"),
}
DEFAULT_RECIPES = ("pgn-chars", "uci-moves", "uci-moves-board", "position-move", "uci-moves-small", "uci-moves-large")
PROBE_STEPS = 20
SNAPSHOT_FRACTIONS = (0.25, 0.5, 1.0)
LEGALITY_MOVE_NUMBERS = (1, 2, 10, 20, 40, 60)
MODEL_TEMPERATURE = 0.001


@dataclass
class ChessRecipesConfig:
    """The study's settings. `train_records`/`held_out_records`: game records (JSONL, e.g. from
    `gamegpt data import-pgn`), the held-out games never trained on. `budget_seconds`: training CPU seconds
    per recipe. `threads`: torch threads while training (the budget counts the CPU time of all of them)."""

    out_dir: str
    train_records: str
    held_out_records: str
    recipes: Sequence[str] = DEFAULT_RECIPES
    budget_seconds: float = 1200.0
    legality_games: int = 100
    agreement_positions: int = 200
    agreement_nodes: int = 20_000
    opening_count: int = 4
    max_plies: int = 300
    workers: int = 2
    threads: int = 1
    seed: int = 0
    book: str | None = None
    ladder: str | Sequence[str] = "default"
    """A ladder preset (`gamegpt.eval.tournament.LADDERS`) or the rungs' `[NAME=]SPEC`s, strongest first."""
    extra_recipes: dict[str, Recipe] = field(default_factory=dict)
    """Recipes beyond RECIPES (tests use tiny ones), by name."""

    def recipe(self, name: str) -> Recipe:
        known = {**RECIPES, **self.extra_recipes}
        if name not in known:
            raise UserError(f"unknown recipe {name!r}; known: {', '.join(known)}")
        return known[name]

    def validate(self) -> None:
        if not self.recipes:
            raise UserError("give at least one recipe")
        for name in self.recipes:
            self.recipe(name)
        if len(set(self.recipes)) != len(self.recipes):
            raise UserError(f"recipes must differ, got {list(self.recipes)}")
        if not self.budget_seconds > 0:
            raise UserError(f"the budget must be > 0 CPU seconds, got {self.budget_seconds}")
        for name in ("legality_games", "agreement_positions", "agreement_nodes", "opening_count", "workers", "threads"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', ' ')} must be >= 1, got {getattr(self, name)}")
        for path in (self.train_records, self.held_out_records):
            if not Path(path).is_file():
                raise UserError(f"{path}: no such records file (make one with gamegpt data import-pgn)")


def _records_subset(cfg: ChessRecipesConfig, out: Path, max_games: int | None) -> Path:
    """The train file, or a file of its first `max_games` games (written once)."""
    if max_games is None:
        return Path(cfg.train_records)
    subset = out / "records" / f"train-first-{max_games}.jsonl"
    if not subset.exists():
        lines = []
        with open(cfg.train_records, encoding="utf-8") as source:
            for line in source:
                if len(lines) >= max_games:
                    break
                lines.append(line)
        write_text_atomic(subset, "".join(lines))
    return subset


def _shards(cfg: ChessRecipesConfig, out: Path, recipe: Recipe) -> Path:
    records = _records_subset(cfg, out, recipe.max_games)
    data_dir = out / "shards" / f"{recipe.codec}-{recipe.block_len or 'sample'}-{recipe.max_games or 'all'}"
    if not (data_dir / "meta.json").exists():
        records_to_shards([records], data_dir, game="chess", codec_name=recipe.codec, block_len=recipe.block_len,
                          seed=cfg.seed)
    return data_dir


def _teacher(cfg: ChessRecipesConfig, out: Path, recipe: Recipe, progress: bool) -> Path | None:
    """The recipe's move-value table (made, or continued, here; None without a teacher)."""
    if not recipe.teacher_games:
        return None
    table = out / "teachers" / f"nodes{recipe.teacher_nodes}-first{recipe.teacher_games}"
    value_records([_records_subset(cfg, out, recipe.teacher_games)], table, nodes=recipe.teacher_nodes,
                  workers=cfg.workers, progress=progress)
    return table


def _cpu_seconds(run_dir: Path) -> float:
    return float(read_checkpoint_config(resolve_checkpoint(run_dir))["meta"].get("train_cpu_seconds") or 0.0)


def _train_recipe(cfg: ChessRecipesConfig, out: Path, name: str, recipe: Recipe, data_dir: Path,
                  teacher: Path | None, progress: bool) -> list[tuple[float, Path]]:
    """Train `recipe` to its budget (probe, then the planned steps), exporting a model at each snapshot;
    returns (fraction, model dir) pairs."""
    run_dir = out / "runs" / name
    plan_path = run_dir / "budget.json"
    base = {**recipe.train_options(), "data_dir": str(data_dir), "out_dir": str(run_dir), "seed": cfg.seed,
            "threads": cfg.threads, "dtype": "auto", "distill_values": None if teacher is None else str(teacher)}
    if not plan_path.exists():
        resume = (run_dir / "checkpoints" / "latest").exists()
        probe = TrainConfig.from_dict({**base, "max_steps": 10**9, "eval_interval": 10**6,
                                       "checkpoint_interval": 10**6})
        train(probe, resume=resume, stop_after=PROBE_STEPS, progress=False)
        per_step = _cpu_seconds(run_dir) / PROBE_STEPS
        steps = max(PROBE_STEPS + 1, math.ceil(cfg.budget_seconds / per_step))
        write_json_atomic(plan_path, {"budget_cpu_seconds": cfg.budget_seconds, "probe_steps": PROBE_STEPS,
                                      "probe_cpu_seconds_per_step": per_step, "max_steps": steps})
    steps = int(json.loads(plan_path.read_text())["max_steps"])
    interval = max(1, steps // 8)
    full = TrainConfig.from_dict({**base, "max_steps": steps, "eval_interval": interval, "checkpoint_interval": interval})
    models = []
    for fraction in SNAPSHOT_FRACTIONS:
        stop = max(PROBE_STEPS + 1, round(steps * fraction))
        model_dir = out / "models" / name / f"{fraction:g}"
        if not (model_dir / "config.json").exists():
            train(full, resume=True, stop_after=stop, progress=progress)
            export_model(run_dir, model_dir, overwrite=True)
        models.append((fraction, model_dir))
    return models


def _labelled_positions(cfg: ChessRecipesConfig, out: Path) -> list[LabelledPosition]:
    path = out / "agreement-positions.json"
    if path.exists():
        return [LabelledPosition(p["start"], tuple(p["history"]), p["played"], p["best"])
                for p in json.loads(path.read_text())]
    held_out = [r for _, r in zip(range(cfg.agreement_positions * 2), iter_records(cfg.held_out_records))]
    positions = label_positions(held_out, count=cfg.agreement_positions, nodes=cfg.agreement_nodes, seed=cfg.seed)
    write_json_atomic(path, [asdict(p) for p in positions])
    return positions


def _evaluate(cfg: ChessRecipesConfig, model_dir: Path, held_out: list[Any],
              positions: list[LabelledPosition]) -> dict[str, Any]:
    path = model_dir / "eval.json"
    if path.exists():
        return json.loads(path.read_text())
    raw = load_model_player(str(model_dir), "chess", policy="raw", temperature=1.0)
    legality = legal_move_rate(raw, held_out, move_numbers=LEGALITY_MOVE_NUMBERS, seed=cfg.seed, progress=False)
    masked = load_model_player(str(model_dir), "chess", temperature=MODEL_TEMPERATURE)
    agreement = top1_agreement(masked, positions, label=str(model_dir), seed=cfg.seed)
    meta = read_checkpoint_config(model_dir)["meta"]
    result = {"legality": {str(n): legality.rate(n) for n in LEGALITY_MOVE_NUMBERS},
              "legality_positions": {str(n): legality.positions[n] for n in LEGALITY_MOVE_NUMBERS},
              "stockfish_top1": agreement.to_dict()["stockfish_top1"],
              "played_top1": agreement.to_dict()["played_top1"],
              "val_loss": meta.get("val_loss"), "train_cpu_seconds": meta.get("train_cpu_seconds"),
              "tokens_seen": meta.get("tokens_seen")}
    write_json_atomic(path, result)
    return result


def run_chess_recipes(cfg: ChessRecipesConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the study; returns the summary written to `out_dir/summary.json` (table.txt and
    recipes.png beside it). UserError for bad settings or an `out_dir` made with other settings."""
    cfg.validate()
    rungs = ladder_of(cfg.ladder)
    out = Path(cfg.out_dir)
    recipes = {name: cfg.recipe(name) for name in cfg.recipes}
    settings = {"train_records": str(Path(cfg.train_records).resolve()),
                "held_out_records": str(Path(cfg.held_out_records).resolve()),
                "budget_seconds": cfg.budget_seconds, "seed": cfg.seed,
                "recipes": {name: recipe.settings() for name, recipe in recipes.items()}}
    created = check_settings(out / "experiment.json", out, settings)
    write_json_atomic(out / "experiment.json", {"settings": settings, "created": created})

    held_out = read_records(cfg.held_out_records)[:cfg.legality_games]
    positions = _labelled_positions(cfg, out)
    rows: list[dict[str, Any]] = []
    for name, recipe in recipes.items():
        started = time.monotonic()
        data_dir = _shards(cfg, out, recipe)
        teacher = _teacher(cfg, out, recipe, progress)
        snapshots = _train_recipe(cfg, out, name, recipe, data_dir, teacher, progress)
        teacher_seconds = None if teacher is None else labelling_seconds(teacher)
        for fraction, model_dir in snapshots:
            measured = _evaluate(cfg, model_dir, held_out, positions)
            rows.append({"recipe": name, "fraction": fraction, "model": str(model_dir),
                         "teacher_seconds": teacher_seconds, **measured})
        if progress:
            print(f"recipe {name}: done in {time.monotonic() - started:.0f} s", flush=True)

    finals = [row for row in rows if row["fraction"] == SNAPSHOT_FRACTIONS[-1]]
    subjects = [Entrant(row["recipe"], str(PlayerSpec("model", {"path": row["model"],
                                                                 "temperature": MODEL_TEMPERATURE})))
                for row in finals]
    openings = openings_from_book(cfg.book, count=cfg.opening_count, seed=cfg.seed)
    anchor, anchor_rating = resolve_anchor(rungs, None, None)
    result = run_tournament(subjects + rungs, out_dir=out / "tournament", openings=openings, mode="gauntlet",
                            subjects=[s.name for s in subjects], neighbours=1, max_plies=cfg.max_plies,
                            workers=cfg.workers, seed=cfg.seed, anchor=anchor, anchor_rating=anchor_rating,
                            event="gamegpt chess recipes", progress=progress)
    assert result.ratings is not None
    for row in finals:
        rating = result.ratings.rating_of(row["recipe"])
        row["elo"], row["elo_low"], row["elo_high"] = rating.rating, rating.lower, rating.upper
        row["elo_text"] = f"{rating.rating_text()} {rating.interval_text()}"
    summary = {"settings": settings, "config": {k: v for k, v in asdict(cfg).items() if k != "extra_recipes"},
               "rows": rows, "tournament": {"out_dir": str(result.out_dir), "games": result.games_total,
                                            "openings": len(openings)},
               "ratings": result.ratings.to_dict()}
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "table.txt", format_recipes_table(rows) + "\n")
    plot_recipes(rows, out / "recipes.png")
    return summary


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_recipes_table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per recipe and snapshot: CPU seconds (and the teacher's labelling seconds, where it has one),
    tokens, held-out loss, legal rates, agreement, Elo."""
    moves = " ".join(f"{'m' + str(n):>6}" for n in LEGALITY_MOVE_NUMBERS)
    width = max([16] + [len(row["recipe"]) for row in rows])
    teachers = any(row.get("teacher_seconds") is not None for row in rows)
    label = f" {'label_s':>7}" if teachers else ""
    lines = [f"{'recipe':<{width}} {'budget':>6} {'cpu_s':>7}{label} {'tokens':>8} {'val':>6} {moves} {'sf_top1':>7}"
             "  elo [95% interval]"]
    for row in rows:
        legal = " ".join(f"{_percent(row['legality'][str(n)]):>6}" for n in LEGALITY_MOVE_NUMBERS)
        elo = row.get("elo_text", "")
        val = "-" if row["val_loss"] is None else f"{row['val_loss']:.3f}"
        seconds = row.get("teacher_seconds")
        label = (f" {'-' if seconds is None else f'{seconds:.0f}':>7}") if teachers else ""
        lines.append(f"{row['recipe']:<{width}} {row['fraction']:>6g} {row['train_cpu_seconds'] or 0:>7.0f}{label} "
                     f"{(row['tokens_seen'] or 0) / 1e6:>7.2f}M {val:>6} {legal} {_percent(row['stockfish_top1']):>7}  {elo}")
    return "\n".join(lines)


def plot_recipes(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Legal rate at move 20, Stockfish agreement and Elo against training CPU-hours, one line per recipe
    (an Elo with no finite estimate is drawn at its known end: v at most, ^ at least)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for name in dict.fromkeys(row["recipe"] for row in rows):
        mine = sorted((row for row in rows if row["recipe"] == name), key=lambda row: row["fraction"])
        hours = [(row["train_cpu_seconds"] or 0) / 3600 for row in mine]
        axes[0].plot(hours, [100 * (row["legality"]["20"] or 0) for row in mine], marker="o", label=name)
        axes[1].plot(hours, [100 * (row["stockfish_top1"] or 0) for row in mine], marker="o", label=name)
        final = mine[-1]
        if final.get("elo") is not None:
            low = final["elo"] - (final["elo_low"] if final["elo_low"] is not None else final["elo"])
            high = (final["elo_high"] if final["elo_high"] is not None else final["elo"]) - final["elo"]
            axes[2].errorbar([hours[-1]], [final["elo"]], yerr=[[low], [high]], marker="o", capsize=4, label=name)
        elif final.get("elo_high") is not None:  # no finite estimate: only the upper end is known
            axes[2].plot([hours[-1]], [final["elo_high"]], marker="v", linestyle="none", label=f"{name} (at most)")
        elif final.get("elo_low") is not None:
            axes[2].plot([hours[-1]], [final["elo_low"]], marker="^", linestyle="none", label=f"{name} (at least)")
    titles = ("raw first-sample legal rate at move 20 (%)", "top-1 agreement with Stockfish (%)",
              "Elo (anchor Stockfish UCI_Elo 1350), 95 % interval")
    for axis, title in zip(axes, titles):
        axis.set_xlabel("training CPU-hours")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if axes[2].get_legend_handles_labels()[0]:
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
