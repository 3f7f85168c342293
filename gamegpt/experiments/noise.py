"""The noise (transcendence) experiment on tic-tac-toe.

For each noise rate p: Newell–Simon self-play where each move is random with probability p → a model
trained on those games → the model at temperatures 1.0 and 0.001 and the noisy player that made the data,
all against the perfect player and the random player, as X and as O. The model *transcends* its teachers
when, at low temperature, it scores more than they do against the same opponents.

Every step writes its output into the experiment directory and is skipped when that output is already
complete, so an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from gamegpt.core.checkpoint import read_checkpoint_config
from gamegpt.core.train import TrainConfig
from gamegpt.engine.model_player import load_model_player
from gamegpt.errors import UserError
from gamegpt.eval.plots import pyplot, save_figure
from gamegpt.eval.tictactoe import SettingResult, evaluate, format_table
from gamegpt.players.base import Noisy
from gamegpt.players.newell_simon import NewellSimonPlayer
from gamegpt.experiments.pipeline import train_model_on_records
from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.selfplay.runner import run_selfplay

DEFAULT_NOISE = (0.0, 0.05, 0.5, 0.8)
DEFAULT_TEMPERATURES = (1.0, 0.001)
OPPONENTS = ("newell-simon", "random")


@dataclass
class NoiseExperimentConfig:
    """Sizes of the experiment; the defaults finish in a few minutes on a 2-core CPU."""

    out_dir: str
    noise_rates: Sequence[float] = DEFAULT_NOISE
    temperatures: Sequence[float] = DEFAULT_TEMPERATURES
    train_games: int = 10000
    eval_games: int = 200
    seed: int = 0
    policy: str = "mask"
    train_overrides: dict[str, Any] = field(default_factory=dict)


def default_train_config(data_dir: Path, out_dir: Path, seed: int) -> dict[str, Any]:
    """The training recipe for one model of the experiment (a 2x64 GPT; ~1.5 min on one CPU core)."""
    return dict(
        data_dir=str(data_dir), out_dir=str(out_dir), n_layer=2, n_head=4, n_embd=64, batch_size=64,
        max_steps=1000, learning_rate=3e-3, min_lr=3e-4, warmup_steps=50, weight_decay=0.1,
        eval_interval=250, eval_batches=10, checkpoint_interval=250, keep_checkpoints=1, seed=seed,
    )


def _rate_dir(out: Path, rate: float) -> Path:
    return out / f"noise-{rate:g}"


def _train_config(cfg: NoiseExperimentConfig, rate_dir: Path) -> TrainConfig:
    """The training config of one noise rate's model: `default_train_config` under `cfg.train_overrides`."""
    return TrainConfig.from_dict({**default_train_config(rate_dir / "data", rate_dir / "run", cfg.seed),
                                  **cfg.train_overrides})


def _mean_score(results: Sequence[SettingResult], subject: str, opponent: str | None = None) -> tuple[float, float]:
    """Mean score of a subject over sides (and opponents unless one is named), with its standard error."""
    rows = [r for r in results if r.subject == subject and (opponent is None or r.opponent == opponent)]
    mean = sum(r.score for r in rows) / len(rows)
    stderr = math.sqrt(sum(r.score_stderr ** 2 for r in rows if not math.isnan(r.score_stderr))) / len(rows)
    return mean, stderr


def run_noise_experiment(cfg: NoiseExperimentConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the experiment; returns the summary also written to `out_dir/summary.json`."""
    out = Path(cfg.out_dir)
    if not cfg.noise_rates:
        raise UserError("give at least one noise rate")
    for rate in cfg.noise_rates:
        if not 0.0 <= rate <= 1.0:
            raise UserError(f"noise rates must be in [0, 1], got {rate}")
    train_configs = {rate: _train_config(cfg, _rate_dir(out, rate)) for rate in cfg.noise_rates}  # checked up front
    rows: list[dict[str, Any]] = []
    all_results: list[SettingResult] = []
    for rate in cfg.noise_rates:
        rate_dir = _rate_dir(out, rate)
        teacher_spec = f"newell-simon:noise={rate:g}"
        records = rate_dir / "selfplay.jsonl"
        run_selfplay("tictactoe", [teacher_spec, teacher_spec], n_games=cfg.train_games, seed=cfg.seed,
                     out=records, progress=progress)
        model_dir = rate_dir / "model"
        train_model_on_records([records], train_configs[rate], model_dir, game="tictactoe", seed=cfg.seed,
                               progress=progress)
        results_path = rate_dir / "eval.json"
        if results_path.exists():
            results = [SettingResult(**{k: v for k, v in r.items() if k in SettingResult.__dataclass_fields__})
                       for r in json.loads(results_path.read_text())["results"]]
        else:
            teacher = f"teacher (noise {rate:g})"
            subjects = {teacher: Noisy(NewellSimonPlayer(), rate)}
            for temperature in cfg.temperatures:
                subjects[f"model (noise {rate:g}) T={temperature:g}"] = load_model_player(
                    str(model_dir), "tictactoe", temperature=temperature, policy=cfg.policy)
            results = evaluate(subjects, games=cfg.eval_games, seed=cfg.seed, progress=progress)
            write_json_atomic(results_path, {"noise": rate, "results": [r.to_dict() for r in results]})
        all_results += results
        rows.append(_summary_row(rate, results, cfg.temperatures, read_checkpoint_config(model_dir)))
    summary = {"config": {**cfg.__dict__, "noise_rates": list(cfg.noise_rates),
                          "temperatures": list(cfg.temperatures)}, "rows": rows}
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "table.txt", format_noise_table(rows) + "\n\n" + format_table(all_results) + "\n")
    plot_noise_experiment(rows, out / "transcendence.png")
    return summary


def _summary_row(rate: float, results: list[SettingResult], temperatures: Sequence[float],
                 model_config: dict[str, Any]) -> dict[str, Any]:
    teacher = f"teacher (noise {rate:g})"
    row: dict[str, Any] = {"noise": rate, "val_loss": model_config.get("meta", {}).get("val_loss")}
    subjects = {"teacher": teacher, **{f"T={t:g}": f"model (noise {rate:g}) T={t:g}" for t in temperatures}}
    for key, subject in subjects.items():
        row[key] = {
            "vs_newell_simon": _mean_score(results, subject, "newell-simon")[0],
            "vs_random": _mean_score(results, subject, "random")[0],
            "overall": _mean_score(results, subject)[0],
            "overall_stderr": _mean_score(results, subject)[1],
            "illegal_rate": sum(r.illegal_moves for r in results if r.subject == subject)
            / max(1, sum(r.subject_moves for r in results if r.subject == subject)),
        }
    coldest = f"T={min(temperatures):g}"
    gain = row[coldest]["overall"] - row["teacher"]["overall"]
    stderr = math.hypot(row[coldest]["overall_stderr"], row["teacher"]["overall_stderr"])
    row["gain"] = gain
    row["gain_stderr"] = stderr
    row["transcends"] = "yes" if gain > 2 * stderr else ("no" if gain < -2 * stderr else "tie")
    return row


def format_noise_table(rows: list[dict[str, Any]]) -> str:
    """One line per noise rate: score (win 1, draw 1/2, mean over X and O) of the teacher and of each model
    temperature against the perfect and the random player, and whether the coldest model beats its teacher."""
    columns = [k for k in rows[0] if k == "teacher" or k.startswith("T=")]
    head = f"{'noise':>5} | " + " | ".join(f"{c:^15}" for c in columns) + " | gain (±2se)       | transcends"
    sub = f"{'':>5} | " + " | ".join(f"{'vsNS':>7} {'vsRnd':>7}" for _ in columns) + " |                   |"
    lines = [head, sub, "-" * len(head)]
    for row in rows:
        cells = " | ".join(f"{row[c]['vs_newell_simon']:>7.3f} {row[c]['vs_random']:>7.3f}" for c in columns)
        lines.append(f"{row['noise']:>5g} | {cells} | {row['gain']:+.3f} ± {2 * row['gain_stderr']:.3f}    | {row['transcends']}")
    lines.append("score = (wins + draws/2) / games, mean over playing X and O; 0.5 vs the perfect player is the best possible.")
    return "\n".join(lines)


def plot_noise_experiment(rows: list[dict[str, Any]], path: Path) -> Path:
    """Score against each opponent by noise rate: the teacher and each model temperature, one line each."""
    columns = [k for k in rows[0] if k == "teacher" or k.startswith("T=")]
    noise = [row["noise"] for row in rows]
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4.2))
    for ax, (key, title) in zip(axes, (("vs_newell_simon", "vs perfect player"), ("vs_random", "vs random player"))):
        for column in columns:
            style = "k--o" if column == "teacher" else "-o"
            label = "noisy teacher" if column == "teacher" else f"model {column}"
            ax.plot(noise, [row[column][key] for row in rows], style, label=label)
        if key == "vs_newell_simon":
            ax.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="perfect play (all draws)")
        ax.set_xlabel("noise rate of the training data")
        ax.set_ylabel("score (win 1, draw 1/2)")
        ax.set_title(title)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("tic-tac-toe: does the low-temperature model beat the noisy players it learned from?")
    return save_figure(fig, path)
