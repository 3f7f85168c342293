"""Grokking: training accuracy first, validation accuracy much later, and weight decay bringing it sooner.

Two tasks, each a fixed split of a finite table into training and validation halves:

- `modular`: a + b mod p for every pair (a, b), half the pairs to train on (Power et al. 2022).
- `tictactoe`: the Newell–Simon player's move in every reachable unfinished tic-tac-toe position (4520),
  half of them to train on. The player may allow several cells (its rule's candidates); the model is trained
  towards all of them equally and is right when its top cell is one of them.

The model is the same for both: an embedding per input token (the two operands; the nine cells, each as
cell-and-mark), concatenated, one ReLU hidden layer, one logit per answer. Full-batch AdamW at a constant
learning rate, for a sweep of weight decays and seeds; train and validation accuracy are measured at
log-spaced steps. *Steps to generalise* is the first measured step with validation accuracy at least
`threshold`; a run that never gets there within its steps has none.

Each run (task, weight decay, seed) writes `runs/<task>-wd<wd>-seed<seed>.json` when it ends; a re-run
skips the finished ones, and a re-run with other settings is refused.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from gamegpt.arena.runs import check_settings, study_settings
from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.errors import UserError
from gamegpt.eval.plots import pyplot, save_figure
from gamegpt.games.tictactoe import TicTacToe
from gamegpt.players.newell_simon import candidate_moves

TASKS = ("modular", "tictactoe")


@dataclass
class GrokkingConfig:
    """The sweep. The defaults take 30 minutes of one CPU core (measured: 24 runs); `PRESETS` has smaller ones."""

    out_dir: str
    tasks: Sequence[str] = TASKS
    weight_decays: Sequence[float] = (0.0, 0.1, 0.3, 1.0)
    seeds: Sequence[int] = (0, 1, 2)
    modulus: int = 97
    train_fraction: float = 0.5
    steps: int = 3000
    learning_rate: float = 3e-3
    embedding: int = 64
    hidden: int = 128
    threshold: float = 0.95
    evaluations: int = 40
    """Measurements per run, at log-spaced steps (plus step 0)."""
    split_seed: int = 0
    """The seed of the train/validation split, the same for every run (the run's seed sets the weights)."""

    def settings(self) -> dict[str, Any]:
        return study_settings(self)

    def validate(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise UserError(f"unknown grokking task(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(TASKS)}")
        if len(self.weight_decays) < 1 or any(not (math.isfinite(w) and w >= 0) for w in self.weight_decays):
            raise UserError(f"weight decays must be numbers >= 0, got {list(self.weight_decays)}")
        if len(set(self.weight_decays)) != len(self.weight_decays) or len(set(self.seeds)) != len(self.seeds):
            raise UserError("a weight decay or seed is given twice")
        if not self.seeds:
            raise UserError("give at least one seed")
        if self.modulus < 3:
            raise UserError(f"the modulus must be at least 3, got {self.modulus}")
        if not 0.0 < self.train_fraction < 1.0:
            raise UserError(f"the train fraction must be between 0 and 1, got {self.train_fraction}")
        for name in ("steps", "embedding", "hidden", "evaluations"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 < self.threshold <= 1.0:
            raise UserError(f"the threshold must be in (0, 1], got {self.threshold}")
        if not self.learning_rate > 0:
            raise UserError(f"the learning rate must be positive, got {self.learning_rate}")


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "small": {"modulus": 59, "steps": 2000, "evaluations": 30},
    "tiny": {"weight_decays": (0.0, 1.0), "seeds": (0,), "modulus": 23, "steps": 300, "hidden": 64,
             "embedding": 32, "evaluations": 12, "learning_rate": 1e-2},
}


# ------------------------------------------------------------------------------------------ tasks


@dataclass
class Task:
    """A table of inputs (n, tokens) → targets (n, answers) as probabilities, split into train and validation."""

    name: str
    inputs: torch.Tensor
    targets: torch.Tensor
    vocab: int
    train: torch.Tensor = field(repr=False)
    val: torch.Tensor = field(repr=False)

    def accuracy(self, logits: torch.Tensor, rows: torch.Tensor) -> float:
        """Share of `rows` whose top logit is an answer the target allows."""
        top = logits.argmax(dim=1)
        return float((self.targets[rows].gather(1, top[:, None]) > 0).float().mean())


def _split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    cut = int(round(n * fraction))
    return order[:cut], order[cut:]


def modular_task(modulus: int, train_fraction: float, split_seed: int) -> Task:
    """Every pair (a, b) of 0..p-1 → (a + b) mod p."""
    pairs = torch.cartesian_prod(torch.arange(modulus), torch.arange(modulus))
    targets = F.one_hot((pairs[:, 0] + pairs[:, 1]) % modulus, modulus).float()
    train, val = _split(len(pairs), train_fraction, split_seed)
    return Task("modular", pairs, targets, modulus, train, val)


def reachable_positions() -> list[tuple[list[int], int]]:
    """Every reachable tic-tac-toe position not yet over, as (cells, side to move), in a fixed order."""
    seen: dict[tuple[int, ...], int] = {}
    stack = [TicTacToe()]
    while stack:
        game = stack.pop()
        cells = tuple(game.cells)
        if cells in seen or game.outcome() is not None:
            continue
        seen[cells] = game.to_move
        for move in game.legal_moves():
            stack.append(TicTacToe(game.history + [move]))
    return [(list(cells), side) for cells, side in sorted(seen.items())]


def tictactoe_task(train_fraction: float, split_seed: int) -> Task:
    """Every reachable unfinished position → the Newell–Simon player's candidate moves, equally likely."""
    positions = reachable_positions()
    inputs = torch.tensor([[3 * cell + mark + 1 for cell, mark in enumerate(cells)] for cells, _ in positions])
    targets = torch.zeros(len(positions), 9)
    for row, (cells, side) in enumerate(positions):
        _, moves = candidate_moves(cells, side)
        targets[row, moves] = 1.0 / len(moves)
    train, val = _split(len(positions), train_fraction, split_seed)
    return Task("tictactoe", inputs, targets, 27, train, val)


def make_task(name: str, cfg: GrokkingConfig) -> Task:
    if name == "modular":
        return modular_task(cfg.modulus, cfg.train_fraction, cfg.split_seed)
    return tictactoe_task(cfg.train_fraction, cfg.split_seed)


class TableMLP(nn.Module):
    """Token embeddings, concatenated → ReLU hidden layer → one logit per answer."""

    def __init__(self, vocab: int, tokens: int, answers: int, embedding: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embedding)
        self.hidden = nn.Linear(tokens * embedding, hidden)
        self.out = nn.Linear(hidden, answers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.out(F.relu(self.hidden(self.embed(inputs).flatten(1))))
        return logits


# ------------------------------------------------------------------------------------------ runs


def evaluation_steps(steps: int, evaluations: int) -> list[int]:
    """Step 0 and about `evaluations` log-spaced steps up to and including `steps`."""
    spaced = np.unique(np.round(np.logspace(0, math.log10(steps), evaluations)).astype(int))
    return [0] + [int(s) for s in spaced if 1 <= s <= steps] + ([steps] if steps not in spaced else [])


def first_step_at(steps: Sequence[int], accuracy: Sequence[float], threshold: float) -> int | None:
    """The first measured step whose accuracy reaches `threshold`, or None."""
    return next((s for s, a in zip(steps, accuracy) if a >= threshold), None)


def train_run(task: Task, cfg: GrokkingConfig, weight_decay: float, seed: int) -> dict[str, Any]:
    """One run: the curves (step, train and validation accuracy and loss) and the steps to fit and generalise."""
    torch.manual_seed(seed)
    model = TableMLP(task.vocab, task.inputs.shape[1], task.targets.shape[1], cfg.embedding, cfg.hidden)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=weight_decay,
                                  betas=(0.9, 0.98))
    x_train, y_train = task.inputs[task.train], task.targets[task.train]
    x_val, y_val = task.inputs[task.val], task.targets[task.val]
    measure_at = set(evaluation_steps(cfg.steps, cfg.evaluations))
    curve: dict[str, list[float]] = {"step": [], "train_accuracy": [], "val_accuracy": [], "train_loss": [],
                                     "val_loss": []}
    started = time.process_time()

    def measure(step: int) -> None:
        with torch.no_grad():
            train_logits, val_logits = model(x_train), model(x_val)
        curve["step"].append(step)
        curve["train_accuracy"].append(task.accuracy(train_logits, task.train))
        curve["val_accuracy"].append(task.accuracy(val_logits, task.val))
        curve["train_loss"].append(float(F.cross_entropy(train_logits, y_train)))
        curve["val_loss"].append(float(F.cross_entropy(val_logits, y_val)))

    measure(0)
    for step in range(1, cfg.steps + 1):
        loss = F.cross_entropy(model(x_train), y_train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step in measure_at:
            measure(step)
    return {"task": task.name, "weight_decay": weight_decay, "seed": seed, "curve": curve,
            "steps_to_fit": first_step_at(curve["step"], curve["train_accuracy"], cfg.threshold),
            "steps_to_generalise": first_step_at(curve["step"], curve["val_accuracy"], cfg.threshold),
            "final_train_accuracy": curve["train_accuracy"][-1], "final_val_accuracy": curve["val_accuracy"][-1],
            "cpu_seconds": round(time.process_time() - started, 2)}


def _run_path(out: Path, task: str, weight_decay: float, seed: int) -> Path:
    return out / "runs" / f"{task}-wd{weight_decay:g}-seed{seed}.json"


def run_grokking(cfg: GrokkingConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the sweep; returns the summary also written to `out_dir/summary.json`, with the
    table (`table.txt`) and the two plots (`grokking_curves.png`, `steps_to_generalise.png`)."""
    cfg.validate()
    out = Path(cfg.out_dir)
    settings = cfg.settings()
    created = check_settings(out / "experiment.json", out, settings)
    write_json_atomic(out / "experiment.json", {"settings": settings, "created": created})
    runs: list[dict[str, Any]] = []
    jobs = [(task, wd, seed) for task in cfg.tasks for wd in cfg.weight_decays for seed in cfg.seeds]
    tasks: dict[str, Task] = {}
    bar = tqdm(jobs, disable=not progress, desc="grokking", unit="run", dynamic_ncols=True)
    for task_name, weight_decay, seed in bar:
        path = _run_path(out, task_name, weight_decay, seed)
        if path.exists():
            runs.append(json.loads(path.read_text()))
            continue
        bar.set_postfix(task=task_name, wd=f"{weight_decay:g}", seed=seed, refresh=True)
        if task_name not in tasks:
            tasks[task_name] = make_task(task_name, cfg)
        run = train_run(tasks[task_name], cfg, weight_decay, seed)
        write_json_atomic(path, run)
        runs.append(run)
    bar.close()
    rows = summary_rows(runs, cfg)
    summary = {"settings": settings, "created": created, "rows": rows,
               "runs": [{k: v for k, v in r.items() if k != "curve"} for r in runs]}
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "table.txt", format_grokking_table(summary) + "\n")
    plot_curves(runs, cfg, out / "grokking_curves.png")
    plot_steps_to_generalise(rows, runs, cfg, out / "steps_to_generalise.png")
    return summary


def summary_rows(runs: list[dict[str, Any]], cfg: GrokkingConfig) -> list[dict[str, Any]]:
    """One row per (task, weight decay): seeds, steps to fit and to generalise (median over the seeds
    that got there, and how many did), the final accuracies' means."""
    rows = []
    for task in cfg.tasks:
        for wd in cfg.weight_decays:
            group = [r for r in runs if r["task"] == task and r["weight_decay"] == wd]
            fit = [r["steps_to_fit"] for r in group if r["steps_to_fit"] is not None]
            general = [r["steps_to_generalise"] for r in group if r["steps_to_generalise"] is not None]
            rows.append({
                "task": task, "weight_decay": wd, "seeds": len(group),
                "fitted": len(fit), "median_steps_to_fit": float(np.median(fit)) if fit else None,
                "generalised": len(general),
                "median_steps_to_generalise": float(np.median(general)) if general else None,
                "steps_to_generalise": [r["steps_to_generalise"] for r in group],
                "final_train_accuracy": float(np.mean([r["final_train_accuracy"] for r in group])),
                "final_val_accuracy": float(np.mean([r["final_val_accuracy"] for r in group])),
            })
    return rows


def format_grokking_table(summary: dict[str, Any]) -> str:
    """The rows as text: per task and weight decay, steps to fit and to generalise and final accuracies."""
    settings = summary["settings"]
    threshold, steps = settings["threshold"], settings["steps"]
    head = (f"{'task':<10} {'wd':>6} | {'fit (n)':>12} | {'generalise (n)':>16} | per seed          | "
            f"{'train':>6} {'val':>6}")
    lines = [head, "-" * len(head)]
    for row in summary["rows"]:
        def median(value: float | None, count: int) -> str:
            return f"{value:>7.0f} ({count}/{row['seeds']})" if value is not None else f"{'never':>7} (0/{row['seeds']})"
        per_seed = ",".join("-" if s is None else str(s) for s in row["steps_to_generalise"])
        lines.append(f"{row['task']:<10} {row['weight_decay']:>6g} | {median(row['median_steps_to_fit'], row['fitted']):>12} | "
                     f"{median(row['median_steps_to_generalise'], row['generalised']):>16} | {per_seed:<17} | "
                     f"{row['final_train_accuracy']:>6.3f} {row['final_val_accuracy']:>6.3f}")
    lines.append(f"steps to fit / generalise: first measured step with train / validation accuracy >= {threshold:g} "
                 f"(median over the seeds that got there within {steps} steps; '-': not within them); "
                 "train, val: final accuracies, mean over seeds")
    return "\n".join(lines)


def _colours(n: int) -> list[Any]:
    cmap = pyplot().get_cmap("viridis")
    return [cmap(i / max(1, n - 1) * 0.9) for i in range(n)]


def plot_curves(runs: list[dict[str, Any]], cfg: GrokkingConfig, path: Path) -> Path:
    """Train (dashed) and validation (solid) accuracy against log step, per weight decay (mean over seeds,
    the band is the seeds' range); one panel per task."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(cfg.tasks), figsize=(6.2 * len(cfg.tasks), 4.3), squeeze=False)
    for ax, task in zip(axes[0], cfg.tasks):
        for wd, colour in zip(cfg.weight_decays, _colours(len(cfg.weight_decays))):
            group = [r["curve"] for r in runs if r["task"] == task and r["weight_decay"] == wd]
            steps = np.array(group[0]["step"]) + 1  # step 0 drawn at 1 on the log axis
            for key, style in (("train_accuracy", "--"), ("val_accuracy", "-")):
                values = np.array([c[key] for c in group])
                ax.plot(steps, values.mean(0), style, color=colour,
                        label=f"wd {wd:g} {'train' if key.startswith('train') else 'val'}")
                if key == "val_accuracy" and len(group) > 1:
                    ax.fill_between(steps, values.min(0), values.max(0), color=colour, alpha=0.15)
        ax.set_xscale("log")
        ax.set_xlabel("training step + 1 (log)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        title = f"a + b mod {cfg.modulus}" if task == "modular" else "tic-tac-toe: Newell–Simon's move"
        ax.set_title(f"{title}, {cfg.train_fraction:.0%} train")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(f"grokking: train (dashed) and validation (solid) accuracy, mean of {len(cfg.seeds)} seed(s)")
    return save_figure(fig, path)


def plot_steps_to_generalise(rows: list[dict[str, Any]], runs: list[dict[str, Any]], cfg: GrokkingConfig,
                             path: Path) -> Path:
    """Steps to generalise against weight decay: each seed a dot (a run that never got there an open
    triangle at the top), the median a line; one panel per task."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(cfg.tasks), figsize=(5.5 * len(cfg.tasks), 4.0), squeeze=False)
    positions = list(range(len(cfg.weight_decays)))
    for ax, task in zip(axes[0], cfg.tasks):
        rng = np.random.default_rng(0)
        for x, wd in zip(positions, cfg.weight_decays):
            for run in (r for r in runs if r["task"] == task and r["weight_decay"] == wd):
                jitter = x + rng.uniform(-0.08, 0.08)
                if run["steps_to_generalise"] is None:
                    ax.plot(jitter, cfg.steps * 1.5, "^", color="tab:red", markerfacecolor="none")
                else:
                    ax.plot(jitter, run["steps_to_generalise"], "o", color="tab:blue", alpha=0.7)
                    ax.plot(jitter, run["steps_to_fit"] or 1, "s", color="grey", alpha=0.5, markersize=4)
        medians = [next(r["median_steps_to_generalise"] for r in rows if r["task"] == task and r["weight_decay"] == wd)
                   for wd in cfg.weight_decays]
        ax.plot([x for x, m in zip(positions, medians) if m is not None], [m for m in medians if m is not None],
                "-D", color="tab:blue", markerfacecolor="none", markersize=9, label="median, seeds that generalised")
        ax.axhline(cfg.steps * 1.5, color="tab:red", linestyle=":", linewidth=1,
                   label=f"never within {cfg.steps} steps (open triangles)")
        ax.plot([], [], "s", color="grey", label="steps to fit the training half")
        ax.set_xticks(positions, [f"{wd:g}" for wd in cfg.weight_decays])
        ax.set_yscale("log")
        ax.set_xlabel("weight decay (AdamW)")
        ax.set_ylabel(f"first step with validation accuracy >= {cfg.threshold:g}")
        ax.set_title(f"a + b mod {cfg.modulus}" if task == "modular" else "tic-tac-toe held-out positions")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("steps to generalise against weight decay (one dot per seed)")
    return save_figure(fig, path)
