"""The transcendence study on chess: does a model rate above the noisy Stockfish whose games it read?

Three stages, each writing into the experiment directory and skipped (or continued) when re-run:

1. **Self-play.** The *generator*, a noisy Stockfish (default `stockfish:skill=3,nodes=200,noise=0.3`: Skill
   Level 3 at 200 nodes, a uniformly random legal move 30 % of the time), plays both sides of `games` games.
2. **Training.** Shards in the chosen codec (default Karvonen's character PGN in 1024-character blocks;
   `chess-uci-moves`: one token per move, 256-token blocks) and a GPT trained on them, exported to `model/`.
3. **One tournament** (a gauntlet): the model at temperatures 1.0, 0.1 and 0.001 (mask policy: every move
   legal) and the generator itself each play every rung of the same ladder (`ladder_entrants("default")`:
   Stockfish UCI_Elo 1700, 1500, 1350, Skill Level 0 with 10/25/50 % random moves, the random player),
   every opening with both colours; each rung also plays its two neighbours. Everybody is rated in one
   maximum-likelihood Elo fit (anchor: Stockfish UCI_Elo 1350 = 1350 when on the ladder).

Verdict (`transcendence_verdict`). The same games are rated a second time with the generator as the anchor
(at 0). In that fit a model's rating *is* its difference from the generator, and its 95 % profile-likelihood
interval is the interval of that difference, with every other rating maximized out (the anchor's own
uncertainty, which cancels in a difference, is not in it). The model at temperature T transcends its
generator:

- "yes" when the lower end of the interval of (model - generator) is above 0;
- "no" when its upper end is below 0 (the model rates below its generator);
- "undetermined" otherwise: the interval contains 0, or the games bound it on neither needed side.

A player with no finite estimate (it, or its group, never took a point from the generator's group, say)
has only one end; the verdict uses that end as above. The headline verdict is the coldest temperature's.

Sizes and times (defaults; measured on this project's idle 2-core CPU, `stage_seconds` in summary.json):

- self-play: 8000 games, ~430 characters each (3.39M characters of training data): 383 s (21 games/s on 2
  workers);
- training: a 4-layer, 128-wide GPT (0.8M parameters besides the embeddings), 800 steps of 16 blocks of 1023
  characters (13M characters, ≈ 4 passes): 1776 s (2.2 s a step, ~7400 characters/s);
- tournament: 39 pairings (4 subjects x 7 rungs, and each rung against its next two) x 10 openings x 2
  colours = 780 games, 420 of them with the model: 213 s on 2 workers;
- the two Elo fits, the table and the plot: well under a minute.

In all 40 minutes; on a loaded machine proportionally longer. Smaller sizes: `games`,
`train_overrides` (n_layer, n_embd, max_steps, batch_size, ...), `opening_count`, a shorter `ladder`.

Files in `out_dir`: experiment.json (the settings of stages 1-2; other settings are refused),
selfplay/games.jsonl + games.pgn, data/ (shards), run/ (training checkpoints and log), model/, tournament/
(games.jsonl, games.pgn, tournament.json, standings.txt, ratings.txt/json/png: the anchored fit),
summary.json, table.txt, transcendence.png.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from gamegpt.core.checkpoint import read_checkpoint_config
from gamegpt.core.train import TrainConfig
from gamegpt.errors import UserError
from gamegpt.eval.elo import EloFit, PlayerRating
from gamegpt.eval.openings import openings_from_book
from gamegpt.eval.plots import pyplot, save_figure
from gamegpt.eval.tournament import (
    Entrant,
    check_specs,
    ladder_entrants,
    parse_entrant,
    rate_records,
    resolve_anchor,
    run_tournament,
)
from gamegpt.arena.specs import PlayerSpec
from gamegpt.arena.records import read_records
from gamegpt.arena.runs import check_settings
from gamegpt.atomic import write_json_atomic, write_text_atomic
from gamegpt.experiments.pipeline import train_model_on_records
from gamegpt.selfplay.runner import run_selfplay

DEFAULT_GENERATOR = "stockfish:skill=3,nodes=200,noise=0.3"
DEFAULT_TEMPERATURES = (1.0, 0.1, 0.001)
GENERATOR_NAME = "generator"
VERDICTS = ("yes", "no", "undetermined")  # the values of Verdict.transcends
CHESS_TRANSCENDENCE_TRAIN: dict[str, Any] = dict(
    n_layer=4, n_head=4, n_embd=128, batch_size=16, max_steps=800, learning_rate=2e-3, min_lr=2e-4,
    warmup_steps=50, weight_decay=0.1, eval_interval=100, eval_batches=8, checkpoint_interval=50,
    keep_checkpoints=2,
)
SELFPLAY_MAX_PLIES = 400
CODEC_BLOCK_LEN: dict[str, int | None] = {"chess-pgn-chars": 1024, "chess-uci-moves": 256, "chess-position-move": None}
"""The codecs the study trains with, and their block lengths (tokens): a game of ~90 plies is ~430
characters but ~90 move tokens; the position codec's blocks are its 74-token samples (None)."""


@dataclass
class ChessTranscendenceConfig:
    """Sizes of the study; the defaults finish in about 40 minutes on a 2-core CPU (see the module docstring).

    `ladder` is a preset name (`gamegpt.eval.tournament.LADDERS`) or the rungs' `[NAME=]SPEC`s, strongest
    first. `book`: an opening book (.pgn or .tsv); None for `eval.openings.default_book()` (Stockfish's
    2moves_v2.pgn, shipped in the package), "none" for the start
    position. `policy`: "mask" (every move legal) or "raw" (an illegal sample loses); "retry" would ignore
    the temperatures. `train_overrides` go over `CHESS_TRANSCENDENCE_TRAIN`. `codec`: a key of
    `CODEC_BLOCK_LEN`.
    """

    out_dir: str
    generator: str = DEFAULT_GENERATOR
    games: int = 8000
    temperatures: Sequence[float] = DEFAULT_TEMPERATURES
    policy: str = "mask"
    ladder: str | Sequence[str] = "default"
    book: str | None = None
    opening_count: int = 10
    max_plies: int = 400
    workers: int = 2
    seed: int = 0
    confidence: float = 0.95
    codec: str = "chess-pgn-chars"
    train_overrides: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """UserError for a setting no run can use."""
        if self.games < 1:
            raise UserError(f"the self-play game count must be >= 1, got {self.games}")
        if not self.temperatures:
            raise UserError("give at least one model temperature")
        if any(t < 0 for t in self.temperatures):
            raise UserError(f"temperatures must be >= 0, got {list(self.temperatures)}")
        if len({f"{t:g}" for t in self.temperatures}) != len(self.temperatures):
            raise UserError(f"temperatures must differ, got {list(self.temperatures)}")
        if self.opening_count < 1:
            raise UserError(f"the opening count must be >= 1, got {self.opening_count}")
        if self.policy not in ("mask", "raw"):
            raise UserError(f"the model's policy must be mask or raw (retry ignores the temperature), got {self.policy!r}")
        if self.workers < 1:
            raise UserError(f"the worker count must be >= 1, got {self.workers}")
        if self.codec not in CODEC_BLOCK_LEN:
            raise UserError(f"unknown codec {self.codec!r}; choose one of {', '.join(CODEC_BLOCK_LEN)}")

    def train_config(self) -> dict[str, Any]:
        """The training options (without the directories and the seed)."""
        return {**CHESS_TRANSCENDENCE_TRAIN, **self.train_overrides}


@dataclass(frozen=True)
class Verdict:
    """Whether `subject` rates above `reference`: `transcends` is "yes", "no" or "undetermined" (see the module
    docstring); `difference` is subject - reference in Elo (None without a finite estimate), `lower`/`upper`
    the ends of its interval (None where unbounded)."""

    subject: str
    reference: str
    transcends: str
    difference: float | None
    lower: float | None
    upper: float | None
    confidence: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def difference_text(self) -> str:
        """`+120 [+30, +210]`, `<= -80`, `>= +40`, or `-`."""
        def signed(value: float) -> str:
            return f"{value:+.0f}"
        if self.difference is not None:
            low = "?" if self.lower is None else signed(self.lower)
            high = "?" if self.upper is None else signed(self.upper)
            return f"{signed(self.difference)} [{low}, {high}]"
        if self.upper is not None and self.lower is None:
            return f"<= {signed(self.upper)}"
        if self.lower is not None and self.upper is None:
            return f">= {signed(self.lower)}"
        return "-"


def transcendence_verdict(difference_fit: EloFit, subject: str) -> Verdict:
    """The verdict for `subject` from a fit anchored at the reference player (the generator): "yes" when the
    lower end of (subject - reference)'s interval is above 0, "no" when its upper end is below 0, else
    "undetermined". Raises KeyError for a subject not in the fit, ValueError when it is the anchor."""
    rating = difference_fit.rating_of(subject)
    reference, base, confidence = difference_fit.anchor, difference_fit.anchor_rating, difference_fit.confidence
    if rating.kind == "anchor":
        raise ValueError(f"{subject!r} is the fit's anchor: it cannot be compared with itself")
    if rating.kind not in ("estimate", "upper_bound", "lower_bound"):
        return Verdict(subject, reference, "undetermined", None, None, None, confidence,
                       f"the games do not rate {subject} against {reference} ({rating.kind})")
    difference = None if rating.rating is None else rating.rating - base
    lower = None if rating.lower is None else rating.lower - base
    upper = None if rating.upper is None else rating.upper - base
    percent = f"{confidence * 100:g}%"
    if lower is not None and lower > 0:
        transcends, why = "yes", f"the lower end of the {percent} interval of {subject} - {reference} is {lower:+.0f} > 0"
    elif upper is not None and upper < 0:
        transcends, why = "no", f"the upper end of the {percent} interval of {subject} - {reference} is {upper:+.0f} < 0"
    else:
        ends = f"[{'-inf' if lower is None else f'{lower:+.0f}'}, {'+inf' if upper is None else f'{upper:+.0f}'}]"
        transcends, why = "undetermined", f"the {percent} interval of {subject} - {reference}, {ends}, contains 0"
    return Verdict(subject, reference, transcends, difference, lower, upper, confidence, why)


def with_noise_rate(spec: str, noise: float | None) -> str:
    """`spec` with its noise rate set to `noise` (replacing any `noise=` of its own); unchanged for None."""
    if noise is None:
        return spec
    if not 0.0 <= noise <= 1.0:
        raise UserError(f"the noise rate must be in [0, 1], got {noise:g}")
    return str(PlayerSpec.parse(spec).with_options(noise=noise))


def model_name(temperature: float) -> str:
    """The tournament name of the model at a temperature: `model T=0.001`."""
    return f"model T={temperature:g}"


def ladder_of(ladder: str | Sequence[str]) -> list[Entrant]:
    """The rungs: a preset's entrants, or the given `[NAME=]SPEC`s (UserError for none)."""
    rungs = ladder_entrants(ladder) if isinstance(ladder, str) else [parse_entrant(spec) for spec in ladder]
    if not rungs:
        raise UserError("the ladder needs at least one rung")
    return rungs


def run_chess_transcendence(cfg: ChessTranscendenceConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the study; returns the summary also written to `out_dir/summary.json` (with
    table.txt and transcendence.png beside it). UserError for bad settings, or an `out_dir` whose data or
    model was made with other settings."""
    cfg.validate()
    out = Path(cfg.out_dir)
    rungs = ladder_of(cfg.ladder)
    openings = openings_from_book(cfg.book, count=cfg.opening_count, seed=cfg.seed)
    train_options = cfg.train_config()
    data_dir, run_dir, model_dir = out / "data", out / "run", out / "model"
    train_cfg = TrainConfig.from_dict({**train_options, "data_dir": str(data_dir), "out_dir": str(run_dir),
                                       "seed": cfg.seed})
    check_specs({e.name: e.spec for e in [Entrant(GENERATOR_NAME, cfg.generator), *rungs]})  # before any work
    settings = {"generator": cfg.generator, "games": cfg.games, "selfplay_max_plies": SELFPLAY_MAX_PLIES,
                "seed": cfg.seed, "codec": cfg.codec, "train": train_options}
    created = check_settings(out / "experiment.json", out, settings)
    write_json_atomic(out / "experiment.json", {"settings": settings, "created": created})
    previous = out / "summary.json"
    seconds: dict[str, float] = {}
    if previous.exists():
        try:
            seconds = dict(json.loads(previous.read_text()).get("stage_seconds") or {})
        except ValueError:
            seconds = {}

    started = time.monotonic()
    records = out / "selfplay" / "games.jsonl"
    selfplay = run_selfplay("chess", [cfg.generator, cfg.generator], n_games=cfg.games, seed=cfg.seed, out=records,
                            workers=cfg.workers, max_plies=SELFPLAY_MAX_PLIES, progress=progress)
    if selfplay.games_new:
        seconds["selfplay"] = seconds.get("selfplay", 0.0) + time.monotonic() - started

    started = time.monotonic()
    if train_model_on_records([records], train_cfg, model_dir, game="chess", codec_name=cfg.codec,
                              block_len=CODEC_BLOCK_LEN[cfg.codec], seed=cfg.seed, progress=progress):
        seconds["training"] = seconds.get("training", 0.0) + time.monotonic() - started

    started = time.monotonic()
    models = [Entrant(model_name(t), str(PlayerSpec("model", {"path": model_dir, "temperature": t, "policy": cfg.policy})))
              for t in cfg.temperatures]
    subjects = [*models, Entrant(GENERATOR_NAME, cfg.generator)]
    anchor, anchor_rating = resolve_anchor(rungs, None, None)
    result = run_tournament(subjects + rungs, out_dir=out / "tournament", openings=openings, mode="gauntlet",
                            subjects=[s.name for s in subjects], neighbours=2,
                            max_plies=cfg.max_plies, workers=cfg.workers, seed=cfg.seed, anchor=anchor,
                            anchor_rating=anchor_rating, confidence=cfg.confidence,
                            event="gamegpt chess transcendence", progress=progress)
    if result.games_new:
        seconds["tournament"] = seconds.get("tournament", 0.0) + time.monotonic() - started
    assert result.ratings is not None
    names = [e.name for e in subjects + rungs]
    difference_fit = rate_records(read_records(result.records_path), anchor=GENERATOR_NAME, anchor_rating=0.0,
                                  confidence=cfg.confidence, players=names)
    verdicts = [transcendence_verdict(difference_fit, model.name) for model in models]
    coldest = min(range(len(models)), key=lambda k: cfg.temperatures[k])

    model_config = read_checkpoint_config(model_dir)
    meta = model_config.get("meta", {})
    summary: dict[str, Any] = {
        "config": {**asdict(cfg), "temperatures": list(cfg.temperatures),
                   "ladder": cfg.ladder if isinstance(cfg.ladder, str) else list(cfg.ladder)},
        "generator": cfg.generator,
        "entrants": {"models": [{"name": m.name, "temperature": t, "spec": m.spec}
                                for m, t in zip(models, cfg.temperatures)],
                     "generator": {"name": GENERATOR_NAME, "spec": cfg.generator},
                     "ladder": [{"name": r.name, "spec": r.spec} for r in rungs]},
        "selfplay": {"records": str(records), "games": selfplay.games_total, "results": selfplay.results},
        "model": {"path": str(model_dir), **model_config["model"], "train_loss": meta.get("train_loss"),
                  "val_loss": meta.get("val_loss")},
        "tournament": {"out_dir": str(result.out_dir), "games": result.games_total,
                       "games_scheduled": result.games_scheduled, "games_new": result.games_new,
                       "openings": len(openings)},
        "ratings": result.ratings.to_dict(),
        "differences": difference_fit.to_dict(),
        "verdicts": [{"temperature": t, **v.to_dict()} for t, v in zip(cfg.temperatures, verdicts)],
        "verdict": {"temperature": cfg.temperatures[coldest], **verdicts[coldest].to_dict()},
        "stage_seconds": seconds,
    }
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "table.txt", format_chess_transcendence_table(summary) + "\n")
    plot_chess_transcendence(summary, out / "transcendence.png")
    return summary


def _ratings(summary: dict[str, Any], key: str = "ratings") -> dict[str, PlayerRating]:
    return {r["name"]: PlayerRating(**r) for r in summary[key]["players"]}


def _rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, role) of every entrant: the models by temperature, the generator, then the ladder in order."""
    entrants = summary["entrants"]
    return ([(m["name"], "model") for m in entrants["models"]] + [(entrants["generator"]["name"], "generator")]
            + [(r["name"], "ladder") for r in entrants["ladder"]])


def format_chess_transcendence_table(summary: dict[str, Any]) -> str:
    """The rating table (models at each temperature, the generator, the ladder; Elo with intervals), then
    model - generator at each temperature with its interval and verdict, and the headline verdict."""
    ratings = _ratings(summary)
    fit = summary["ratings"]
    percent = f"{fit['confidence'] * 100:g}%"
    rows = _rows(summary)
    width = max(len(name) for name, _ in rows)
    model = summary["model"]
    loss = "-" if model.get("val_loss") is None else f"{model['val_loss']:.3f}"
    lines = [(f"chess transcendence: generator {summary['generator']} ({summary['selfplay']['games']} self-play "
              f"games); model {model['n_layer']}x{model['n_embd']}, held-out loss {loss} per "
              f"{'move' if summary['config'].get('codec') == 'chess-uci-moves' else 'character'}"),
             (f"Elo: anchor {fit['anchor']} = {fit['anchor_rating']:g}, {percent} profile-likelihood intervals, "
              f"{fit['games']} games"),
             f"{'player':<{width}}  {'role':<9}  {'Elo':>8}  {percent + ' interval':<14}  {'games':>5}  {'score':>6}"]
    for name, role in rows:
        rating = ratings.get(name)
        if rating is None:
            continue
        share = f"{100 * rating.score / rating.games:.1f}%" if rating.games else "-"
        lines.append(f"{name:<{width}}  {role:<9}  {rating.rating_text():>8}  {rating.interval_text():<14}  "
                     f"{rating.games:>5}  {share:>6}")
    lines.append("")
    lines.append(f"model - generator ({percent} profile-likelihood interval; the games re-rated with the generator "
                 "as anchor):")
    for entry in summary["verdicts"]:
        verdict = Verdict(**{k: v for k, v in entry.items() if k != "temperature"})
        lines.append(f"  T={entry['temperature']:<6g}  {verdict.difference_text():<22}  {verdict.transcends}")
    headline = summary["verdict"]
    lines.append(f"transcends? {headline['transcends']} (T={headline['temperature']:g}): {headline['reason']}")
    return "\n".join(lines)


def plot_chess_transcendence(summary: dict[str, Any], path: Path) -> Path:
    """Elo of the model at each temperature (points with interval bars, arrows for bounds) against the
    generator (line and band) and the ladder rungs (dotted lines)."""
    ratings = _ratings(summary)
    models = summary["entrants"]["models"]
    generator = ratings.get(summary["entrants"]["generator"]["name"])
    known = [v for r in ratings.values() for v in (r.rating, r.lower, r.upper) if v is not None]
    low = min(known, default=0.0) - 100
    high = max(known, default=0.0) + 100
    fig, ax = pyplot().subplots(figsize=(9, 5.5))
    if generator is not None and generator.kind in ("anchor", "estimate") and generator.rating is not None:
        ax.axhline(generator.rating, color="black", linestyle="--", label=f"generator {summary['generator']}: "
                   f"{generator.rating_text()} {generator.interval_text()}")
        ax.axhspan(generator.lower if generator.lower is not None else low,
                   generator.upper if generator.upper is not None else high, color="black", alpha=0.1)
    elif generator is not None and generator.is_bound:
        bound = generator.upper if generator.kind == "upper_bound" else generator.lower
        ax.axhline(bound, color="black", linestyle=":", label=f"generator {summary['generator']}: "
                   f"{generator.rating_text()} (bound)")
    for entrant in summary["entrants"]["ladder"]:
        rung = ratings.get(entrant["name"])
        if rung is None:
            continue
        value = next((v for v in (rung.rating, rung.upper, rung.lower) if v is not None), None)
        if value is None:
            continue
        ax.axhline(value, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"{rung.name} ({rung.rating_text()})", xy=(1.0, value), xycoords=("axes fraction", "data"),
                    xytext=(-4, 2), textcoords="offset points", ha="right", fontsize=7, color="grey")
    for x, entrant in enumerate(models):
        rating = ratings.get(entrant["name"])
        if rating is None:
            continue
        if rating.kind == "estimate" and rating.rating is not None:
            bottom = rating.lower if rating.lower is not None else low
            top = rating.upper if rating.upper is not None else high
            ax.errorbar([x], [rating.rating], yerr=[[rating.rating - bottom], [top - rating.rating]], fmt="o",
                        color="tab:blue", capsize=6, markersize=8)
        elif rating.kind == "upper_bound" and rating.upper is not None:
            ax.annotate("", xy=(x, low), xytext=(x, rating.upper),
                        arrowprops={"arrowstyle": "->", "color": "tab:red", "linestyle": "--"})
            ax.plot([x], [rating.upper], marker="_", color="tab:red", markersize=20)
        elif rating.kind == "lower_bound" and rating.lower is not None:
            ax.annotate("", xy=(x, high), xytext=(x, rating.lower),
                        arrowprops={"arrowstyle": "->", "color": "tab:red", "linestyle": "--"})
            ax.plot([x], [rating.lower], marker="_", color="tab:red", markersize=20)
    verdicts = {entry["temperature"]: entry for entry in summary["verdicts"]}
    labels = []
    for entrant in models:
        entry = verdicts.get(entrant["temperature"])
        shown = Verdict(**{k: v for k, v in entry.items() if k != "temperature"}) if entry else None
        labels.append(f"model T={entrant['temperature']:g}" + (f"\nvs generator {shown.difference_text()}\n"
                                                                  f"transcends: {shown.transcends}" if shown else ""))
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_ylim(low, high)
    fit = summary["ratings"]
    ax.set_ylabel(f"Elo (anchor {fit['anchor']} = {fit['anchor_rating']:g}); bars: {fit['confidence'] * 100:g}% "
                  "intervals", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    headline = summary["verdict"]
    ax.set_title(f"chess: does the low-temperature model rate above its generator?  "
                 f"T={headline['temperature']:g}: {headline['transcends']}", fontsize=11)
    return save_figure(fig, path)
