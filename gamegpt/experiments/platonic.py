"""The platonic representation study on tic-tac-toe: do a model that reads the moves and a model that sees
the board come to represent positions alike?

For each noise rate of the training games (the noise study's Newell–Simon self-play, `newell-simon:noise=p`)
and each seed, two models learn the same target, the next move, from the same games:

- a *text* model: the project's GPT reading the game so far as cell tokens (bos, m1, m2, ...);
- an *image* model: a small CNN (`gamegpt.core.board_cnn`) reading a picture of the board in pixels
  (`gamegpt.games.tictactoe_image`). Each training step shows both models the same games: the GPT their
  move sequences, the CNN the picture before every move.

At log-spaced training steps each model's activations on one common set of positions (prefixes of other
games, noise 0.5) are kept for every layer (text: the embedding and each block's output at the last token;
image: conv1, conv2, hidden, logits). Alignment between two models is measured layer by layer with the
mutual k-nearest-neighbour metric of Huh et al. (2024) and debiased linear CKA
(`gamegpt.experiments.alignment`), for text-text and image-image pairs (different seeds) and text-image pairs.
A linear probe (multinomial logistic regression, one per cell: empty, X or O) reads the board from each layer
of each model, trained on half the common positions and scored on the other half, at the end of training and
at initialisation.

Resumable: self-play, each model's activations (`models/<kind>-noise<p>-seed<s>.npz` and `.json`) and the
probes are each written once and skipped on a re-run; a re-run with other settings is refused.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from gamegpt.arena.records import read_records
from gamegpt.arena.runs import check_settings, study_settings
from gamegpt.atomic import atomic_path, write_json_atomic, write_text_atomic
from gamegpt.core.board_cnn import BoardCNN, BoardCNNConfig
from gamegpt.core.model import GPT, GPTConfig
from gamegpt.errors import UserError
from gamegpt.eval.plots import pyplot, save_figure
from gamegpt.experiments.alignment import cka_of_grams, gram, mutual_knn_chance, mutual_knn_of_neighbours, nearest_neighbours
from gamegpt.games.tictactoe import EMPTY, TicTacToe, TicTacToeCodec
from gamegpt.games.tictactoe_image import render_boards
from gamegpt.selfplay.runner import run_selfplay

KINDS = ("text", "image")
PAIRS = ("text-text", "image-image", "text-image")
COMMON_NOISE = 0.5
"""The noise of the games whose positions every model is compared on: varied, but not random."""


@dataclass
class PlatonicConfig:
    """The study's sizes. The defaults take 33 minutes of one CPU core (measured: 12 text and 12 image
    models and their alignment); `PRESETS` has smaller ones."""

    out_dir: str
    noise_rates: Sequence[float] = (0.0, 0.05, 0.5, 0.8)
    seeds: Sequence[int] = (0, 1, 2)
    train_games: int = 2000
    steps: int = 1000
    batch_games: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    n_layer: int = 3
    n_embd: int = 64
    n_head: int = 4
    cnn_channels: Sequence[int] = (8, 16)
    cnn_hidden: int = 64
    snapshots: int = 8
    """Training steps at which activations are kept: step 0 and about this many log-spaced ones."""
    positions: int = 600
    """Common positions the models are compared on."""
    k: int = 10
    data_seed: int = 0

    def settings(self) -> dict[str, Any]:
        return study_settings(self)

    def validate(self) -> None:
        if not self.noise_rates or any(not 0.0 <= r <= 1.0 for r in self.noise_rates):
            raise UserError(f"noise rates must be in [0, 1], got {list(self.noise_rates)}")
        if len(set(self.noise_rates)) != len(self.noise_rates) or len(set(self.seeds)) != len(self.seeds):
            raise UserError("a noise rate or seed is given twice")
        if len(self.seeds) < 2:
            raise UserError(f"give at least two seeds (alignment compares models of different seeds), got {list(self.seeds)}")
        for name in ("train_games", "steps", "batch_games", "n_layer", "n_embd", "n_head", "cnn_hidden",
                     "snapshots", "positions", "k"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.positions < 20:
            raise UserError(f"compare on at least 20 positions, got {self.positions}")
        if not 1 <= self.k < self.positions // 2:
            raise UserError(f"k must be between 1 and half the positions, got {self.k}")
        if self.n_embd % self.n_head:
            raise UserError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "small": {"seeds": (0, 1), "train_games": 500, "steps": 200, "positions": 300, "snapshots": 5},
    "tiny": {"noise_rates": (0.0, 0.5), "seeds": (0, 1), "train_games": 60, "steps": 30, "batch_games": 16,
             "n_layer": 2, "n_embd": 32, "cnn_hidden": 32, "positions": 60, "snapshots": 3, "k": 5},
}


# ------------------------------------------------------------------------------------------ data


def snapshot_steps(steps: int, count: int) -> list[int]:
    """Step 0 and about `count` log-spaced steps up to and including `steps`."""
    spaced = np.unique(np.round(np.logspace(0, math.log10(steps), count)).astype(int))
    return sorted({0, steps, *(int(s) for s in spaced if 1 <= s <= steps)})


def _selfplay_games(path: Path, noise: float, games: int, seed: int, progress: bool) -> list[list[int]]:
    """The noise study's self-play (Newell–Simon at a noise rate, both sides), played once, as move lists."""
    spec = f"newell-simon:noise={noise:g}"
    run_selfplay("tictactoe", [spec, spec], n_games=games, seed=seed, out=path, progress=progress)
    return [[int(m) for m in record.moves] for record in read_records(path) if record.index is not None
            and record.index < games]


def common_positions(games: list[list[int]], count: int, seed: int) -> list[list[int]]:
    """Up to `count` distinct move histories of unfinished positions from `games`, in a seeded order."""
    histories = sorted({tuple(moves[:ply]) for moves in games for ply in range(len(moves))})
    order = np.random.default_rng(seed).permutation(len(histories))
    return [list(histories[i]) for i in order[:count]]


def board_of(history: Sequence[int]) -> list[int]:
    return TicTacToe(history).cells


class TrainingData:
    """The training games as token rows for the GPT and as (picture, next move) rows for the CNN."""

    def __init__(self, games: list[list[int]]) -> None:
        codec = TicTacToeCodec()
        self.block = 10
        self.games = games
        self.tokens = np.full((len(games), self.block), codec.eos, dtype=np.int64)
        self.targets = np.full((len(games), self.block), -1, dtype=np.int64)
        boards: dict[tuple[int, ...], int] = {}
        self.positions: list[list[tuple[int, int]]] = []  # per game: (board index, next move)
        for g, moves in enumerate(games):
            self.tokens[g, 0] = codec.bos
            self.tokens[g, 1:len(moves) + 1] = moves
            self.targets[g, :len(moves)] = moves  # after bos and each move: the next move (the CNN's target too)
            rows = []
            for ply, move in enumerate(moves):
                cells = tuple(board_of(moves[:ply]))
                rows.append((boards.setdefault(cells, len(boards)), move))
            self.positions.append(rows)
        self.images = torch.from_numpy(render_boards([list(cells) for cells in boards]))


def _text_features(model: GPT, histories: list[list[int]]) -> list[np.ndarray]:
    """The residual stream at the last token of each history ([bos] + moves): after the embedding and after
    each block, one (positions, n_embd) array per layer."""
    codec = TicTacToeCodec()
    tokens = torch.full((len(histories), max(len(h) for h in histories) + 1), codec.eos, dtype=torch.long)
    for row, history in enumerate(histories):
        tokens[row, 0] = codec.bos
        tokens[row, 1:len(history) + 1] = torch.tensor(history, dtype=torch.long)
    last = torch.tensor([len(h) for h in histories])
    rows = torch.arange(len(histories))
    t = model.transformer
    with torch.no_grad():
        x = t.wte(tokens) + t.wpe(torch.arange(tokens.shape[1]))
        layers = [x[rows, last]]
        for block in t.h:
            x = block(x)
            layers.append(x[rows, last])
    return [layer.numpy().astype(np.float32) for layer in layers]


def _image_features(model: BoardCNN, images: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        return [layer.numpy().astype(np.float32) for layer in model.features(images)]


def layer_names(kind: str, cfg: PlatonicConfig) -> list[str]:
    if kind == "text":
        return ["embedding"] + [f"block{i + 1}" for i in range(cfg.n_layer)]
    return list(BoardCNN.layer_names)


def _model_stem(out: Path, kind: str, noise: float, seed: int) -> Path:
    """`models/<kind>-noise<p>-seed<s>`, to which `_with` adds .npz or .json (not with_suffix: the noise
    rate's dot is no suffix)."""
    return out / "models" / f"{kind}-noise{noise:g}-seed{seed}"


def _with(stem: Path, suffix: str) -> Path:
    return stem.parent / (stem.name + suffix)


def train_model(kind: str, data: TrainingData, histories: list[list[int]], cfg: PlatonicConfig,
                seed: int) -> tuple[dict[int, list[np.ndarray]], dict[str, Any]]:
    """Train one model; return its activations on the common positions at each snapshot step and a record
    of its training (loss and next-move accuracy on the training games at each snapshot)."""
    torch.manual_seed(seed)
    model: GPT | BoardCNN
    if kind == "text":
        model = GPT(GPTConfig(vocab_size=TicTacToeCodec.vocab_size, block_size=data.block, n_layer=cfg.n_layer,
                              n_head=cfg.n_head, n_embd=cfg.n_embd))
        common_images = None
    else:
        model = BoardCNN(BoardCNNConfig(channels=tuple(cfg.cnn_channels), hidden=cfg.cnn_hidden))  # type: ignore[arg-type]
        common_images = torch.from_numpy(render_boards([board_of(h) for h in histories]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng([cfg.data_seed, seed, 7])  # the same batches for the text and the image model
    keep = set(snapshot_steps(cfg.steps, cfg.snapshots))
    snapshots: dict[int, list[np.ndarray]] = {}
    log: dict[str, list[float]] = {"step": [], "loss": []}
    started = time.process_time()

    def batch_loss(games: np.ndarray) -> torch.Tensor:
        if kind == "text":
            _, loss = model(torch.from_numpy(data.tokens[games]), torch.from_numpy(data.targets[games]))  # type: ignore[call-arg]
            assert loss is not None
            return loss
        rows = [row for g in games for row in data.positions[g]]
        boards = torch.tensor([b for b, _ in rows])
        moves = torch.tensor([m for _, m in rows])
        return F.cross_entropy(model(data.images[boards]), moves)

    for step in range(cfg.steps + 1):
        if step in keep:
            model.eval()
            snapshots[step] = (_text_features(model, histories) if kind == "text"  # type: ignore[arg-type]
                               else _image_features(model, common_images))  # type: ignore[arg-type]
            model.train()
        if step == cfg.steps:
            break
        games = rng.integers(0, len(data.games), cfg.batch_games)
        loss = batch_loss(games)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step + 1 in keep:
            log["step"].append(step + 1)
            log["loss"].append(loss.item())
    return snapshots, {"kind": kind, "seed": seed, "log": log, "cpu_seconds": round(time.process_time() - started, 2)}


def _save_snapshots(stem: Path, snapshots: dict[int, list[np.ndarray]], record: dict[str, Any]) -> None:
    arrays = {f"step{step}_layer{layer}": values.astype(np.float16)
              for step, layers in snapshots.items() for layer, values in enumerate(layers)}
    with atomic_path(_with(stem, ".npz")) as tmp:
        np.savez_compressed(tmp, **arrays)
    write_json_atomic(_with(stem, ".json"), record)  # written last: its presence marks the model done


def _load_snapshots(stem: Path) -> dict[int, list[np.ndarray]]:
    snapshots: dict[int, dict[int, np.ndarray]] = {}
    with np.load(_with(stem, ".npz")) as data:
        for key in data.files:
            step, layer = key.removeprefix("step").split("_layer")
            snapshots.setdefault(int(step), {})[int(layer)] = data[key].astype(np.float32)
    return {step: [layers[i] for i in sorted(layers)] for step, layers in snapshots.items()}


# ------------------------------------------------------------------------------------------ probes


def board_labels(histories: list[list[int]]) -> np.ndarray:
    """(positions, 9) cell states: 0 empty, 1 X, 2 O."""
    return np.array([[0 if c == EMPTY else c + 1 for c in board_of(h)] for h in histories], dtype=np.int64)


def probe_accuracy(features: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                   l2: float = 1e-3) -> float:
    """Mean over the 9 cells of the test accuracy of a multinomial logistic regression (empty/X/O) on
    standardised features, fitted on the `train` rows by L-BFGS."""
    x = torch.from_numpy(features.astype(np.float32))
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mean) / std
    y = torch.from_numpy(labels)
    weight = torch.zeros(x.shape[1], 27, requires_grad=True)
    bias = torch.zeros(27, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")
    x_train, y_train = x[train], y[train]

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = (x_train @ weight + bias).view(-1, 9, 3)
        loss = F.cross_entropy(logits.reshape(-1, 3), y_train.reshape(-1)) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        predicted = (x[test] @ weight + bias).view(-1, 9, 3).argmax(-1)
    return float((predicted == y[test]).float().mean())


# ------------------------------------------------------------------------------------------ the study


def run_platonic(cfg: PlatonicConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the study; returns the summary also written to `out_dir/summary.json`, with
    `table.txt` and the plots `alignment_vs_layer.png`, `alignment_vs_step.png`, `probe_by_layer.png`."""
    cfg.validate()
    out = Path(cfg.out_dir)
    settings = cfg.settings()
    created = check_settings(out / "experiment.json", out, settings)
    write_json_atomic(out / "experiment.json", {"settings": settings, "created": created})
    common_games = _selfplay_games(out / "data" / "common.jsonl", COMMON_NOISE, max(200, cfg.positions),
                                   cfg.data_seed + 1000, progress)
    histories = common_positions(common_games, cfg.positions, cfg.data_seed)
    if len(histories) < 2 * cfg.k + 2:
        raise UserError(f"only {len(histories)} distinct common positions; ask for fewer or a smaller k")
    jobs = [(noise, seed, kind) for noise in cfg.noise_rates for seed in cfg.seeds for kind in KINDS]
    bar = tqdm(jobs, desc="platonic models", unit="model", disable=not progress, dynamic_ncols=True)
    data_by_noise: dict[float, TrainingData] = {}
    records: dict[tuple[str, float, int], dict[str, Any]] = {}
    for noise, seed, kind in bar:
        stem = _model_stem(out, kind, noise, seed)
        if _with(stem, ".json").exists():
            records[(kind, noise, seed)] = json.loads(_with(stem, ".json").read_text())
            continue
        bar.set_postfix(noise=f"{noise:g}", seed=seed, kind=kind, refresh=True)
        if noise not in data_by_noise:
            games = _selfplay_games(out / "data" / f"noise-{noise:g}.jsonl", noise, cfg.train_games, cfg.data_seed,
                                    progress)
            data_by_noise[noise] = TrainingData(games)
        snapshots, record = train_model(kind, data_by_noise[noise], histories, cfg, seed)
        record["noise"] = noise
        record["layers"] = layer_names(kind, cfg)
        _save_snapshots(stem, snapshots, record)
        records[(kind, noise, seed)] = record
    bar.close()
    alignment = compute_alignment(out, cfg, progress)
    probes = compute_probes(out, cfg, histories)
    summary = {"settings": settings, "created": created, "positions": len(histories),
               "chance": mutual_knn_chance(len(histories), cfg.k), "alignment": alignment, "probes": probes,
               "training": [{**r, "log": r["log"]} for r in records.values()]}
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "table.txt", format_platonic_tables(summary) + "\n")
    plot_alignment_vs_layer(summary, cfg, out / "alignment_vs_layer.png")
    plot_alignment_vs_step(summary, cfg, out / "alignment_vs_step.png")
    plot_probes(summary, cfg, out / "probe_by_layer.png")
    return summary


def compute_alignment(out: Path, cfg: PlatonicConfig, progress: bool) -> list[dict[str, Any]]:
    """Rows of (noise, step, pair kind, layer a, layer b, mutual k-NN and debiased CKA: mean and std over the
    model pairs). text-text and image-image compare equal layers of different seeds; text-image every layer
    pair of every text and image model."""
    cache = out / "alignment.json"
    if cache.exists():
        return list(json.loads(cache.read_text())["rows"])
    rows = []
    steps = snapshot_steps(cfg.steps, cfg.snapshots)
    for noise in tqdm(cfg.noise_rates, desc="alignment", disable=not progress, dynamic_ncols=True):
        models = {(kind, seed): _load_snapshots(_model_stem(out, kind, noise, seed))
                  for kind in KINDS for seed in cfg.seeds}
        for step in steps:
            prepared = {key: [(nearest_neighbours(layer, cfg.k), gram(layer)) for layer in snaps[step]]
                        for key, snaps in models.items()}
            for pair in PAIRS:
                kind_a, kind_b = pair.split("-")
                if kind_a == kind_b:
                    model_pairs = [((kind_a, s), (kind_b, t)) for s, t in itertools.combinations(cfg.seeds, 2)]
                else:
                    model_pairs = [((kind_a, s), (kind_b, t)) for s in cfg.seeds for t in cfg.seeds]
                n_a, n_b = len(prepared[model_pairs[0][0]]), len(prepared[model_pairs[0][1]])
                for la in range(n_a):
                    for lb in (range(n_b) if kind_a != kind_b else [la]):
                        knn = [mutual_knn_of_neighbours(prepared[a][la][0], prepared[b][lb][0]) for a, b in model_pairs]
                        ckas = [cka_of_grams(prepared[a][la][1], prepared[b][lb][1], debiased=True)
                                for a, b in model_pairs]
                        rows.append({"noise": noise, "step": step, "pair": pair, "layer_a": la, "layer_b": lb,
                                     "mutual_knn": float(np.mean(knn)), "mutual_knn_std": float(np.std(knn)),
                                     "cka": float(np.mean(ckas)), "cka_std": float(np.std(ckas)),
                                     "model_pairs": len(model_pairs)})
    write_json_atomic(cache, {"rows": rows})
    return rows


def compute_probes(out: Path, cfg: PlatonicConfig, histories: list[list[int]]) -> list[dict[str, Any]]:
    """Board-probe accuracy of every layer of every model, at initialisation and at the end of training."""
    cache = out / "probes.json"
    if cache.exists():
        return list(json.loads(cache.read_text())["rows"])
    labels = board_labels(histories)
    order = np.random.default_rng(cfg.data_seed).permutation(len(histories))
    train, test = order[:len(order) // 2], order[len(order) // 2:]
    rows = []
    for noise in cfg.noise_rates:
        for kind in KINDS:
            for seed in cfg.seeds:
                snapshots = _load_snapshots(_model_stem(out, kind, noise, seed))
                for step in (0, cfg.steps):
                    for layer, features in enumerate(snapshots[step]):
                        rows.append({"noise": noise, "kind": kind, "seed": seed, "step": step, "layer": layer,
                                     "accuracy": probe_accuracy(features, labels, train, test)})
    majority = float(np.mean([(labels[test][:, c] == np.bincount(labels[train][:, c], minlength=3).argmax()).mean()
                              for c in range(9)]))
    rows.append({"noise": None, "kind": "majority", "seed": None, "step": None, "layer": None, "accuracy": majority})
    write_json_atomic(cache, {"rows": rows})
    return rows


# ------------------------------------------------------------------------------------------ tables, plots


def _select(rows: list[dict[str, Any]], **where: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def _last_layers(cfg: PlatonicConfig) -> dict[str, int]:
    """The layer compared by default: the text model's last block, the image model's hidden layer."""
    return {"text": cfg.n_layer, "image": BoardCNN.layer_names.index("hidden")}


def _pair_layers(pair: str, cfg: PlatonicConfig) -> tuple[int, int]:
    kind_a, kind_b = pair.split("-")
    last = _last_layers(cfg)
    return last[kind_a], last[kind_b]


def format_platonic_tables(summary: dict[str, Any]) -> str:
    cfg = PlatonicConfig(out_dir="", **summary["settings"])
    rows, probes = summary["alignment"], summary["probes"]
    steps = snapshot_steps(cfg.steps, cfg.snapshots)
    lines = [f"alignment at the end of training ({summary['positions']} common positions, k={cfg.k}; "
             f"mutual k-NN chance {summary['chance']:.3f}); text: last block, image: hidden layer"]
    head = f"{'noise':>5} | " + " | ".join(f"{p:^19}" for p in PAIRS)
    lines += [head, f"{'':>5} | " + " | ".join(f"{'mkNN':>9} {'CKA':>9}" for _ in PAIRS), "-" * len(head)]
    for noise in cfg.noise_rates:
        cells = []
        for pair in PAIRS:
            la, lb = _pair_layers(pair, cfg)
            row = _select(rows, noise=noise, step=cfg.steps, pair=pair, layer_a=la, layer_b=lb)[0]
            cells.append(f"{row['mutual_knn']:>9.3f} {row['cka']:>9.3f}")
        lines.append(f"{noise:>5g} | " + " | ".join(cells))
    lines += ["", "text-image mutual k-NN (last block vs hidden) over training steps"]
    lines.append(f"{'noise':>5} | " + " ".join(f"{s:>6}" for s in steps))
    la, lb = _pair_layers("text-image", cfg)
    for noise in cfg.noise_rates:
        values = [_select(rows, noise=noise, step=s, pair="text-image", layer_a=la, layer_b=lb)[0]["mutual_knn"]
                  for s in steps]
        lines.append(f"{noise:>5g} | " + " ".join(f"{v:>6.3f}" for v in values))
    majority = _select(probes, kind="majority")[0]["accuracy"]
    lines += ["", f"board probe accuracy by layer (held-out half; mean over cells and seeds; trained / at init; "
                  f"majority class {majority:.3f})"]
    for kind in KINDS:
        names = layer_names(kind, cfg)
        lines.append(f"{kind:>5} | " + " ".join(f"{n:>13}" for n in names))
        for noise in cfg.noise_rates:
            cells = []
            for layer in range(len(names)):
                trained = np.mean([r["accuracy"] for r in _select(probes, noise=noise, kind=kind, step=cfg.steps, layer=layer)])
                init = np.mean([r["accuracy"] for r in _select(probes, noise=noise, kind=kind, step=0, layer=layer)])
                cells.append(f"{trained:>6.3f}/{init:<6.3f}")
            lines.append(f"{noise:>5g} | " + " ".join(cells))
    return "\n".join(lines)


def _noise_colours(cfg: PlatonicConfig) -> list[Any]:
    cmap = pyplot().get_cmap("plasma")
    return [cmap(i / max(1, len(cfg.noise_rates) - 1) * 0.85) for i in range(len(cfg.noise_rates))]


def plot_alignment_vs_layer(summary: dict[str, Any], cfg: PlatonicConfig, path: Path) -> Path:
    """End of training. Left: text-text (solid) and image-image (dashed) by layer. Right: text-image by text
    layer, against the image model's hidden layer (solid) and its best-aligned layer (dotted). One colour per
    noise rate; top row mutual k-NN, bottom row debiased CKA."""
    plt = pyplot()
    rows = _select(summary["alignment"], step=cfg.steps)
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 8))
    hidden = _last_layers(cfg)["image"]
    for r, metric in enumerate(("mutual_knn", "cka")):
        same, cross = axes[r]
        for noise, colour in zip(cfg.noise_rates, _noise_colours(cfg)):
            for pair, style in (("text-text", "-o"), ("image-image", "--s")):
                layer_rows = sorted(_select(rows, noise=noise, pair=pair), key=lambda x: x["layer_a"])
                same.plot([x["layer_a"] for x in layer_rows], [x[metric] for x in layer_rows], style, color=colour,
                          label=f"{pair}, noise {noise:g}")
            text_layers = range(cfg.n_layer + 1)
            ti = _select(rows, noise=noise, pair="text-image")
            cross.plot(list(text_layers), [_select(ti, layer_a=la, layer_b=hidden)[0][metric] for la in text_layers],
                       "-o", color=colour, label=f"noise {noise:g}: vs image hidden")
            cross.plot(list(text_layers), [max(x[metric] for x in _select(ti, layer_a=la)) for la in text_layers],
                       ":", color=colour, label=f"noise {noise:g}: vs best image layer")
        if metric == "mutual_knn":
            for ax in (same, cross):
                ax.axhline(summary["chance"], color="grey", linestyle=":", linewidth=1, label="chance")
        same.set_xticks(range(max(cfg.n_layer + 1, 4)),
                        [f"{t}\n{i}" for t, i in itertools.zip_longest(layer_names("text", cfg),
                                                                       BoardCNN.layer_names, fillvalue="")])
        cross.set_xticks(range(cfg.n_layer + 1), layer_names("text", cfg))
        label = "mutual k-NN" if metric == "mutual_knn" else "debiased CKA"
        same.set_ylabel(label)
        same.set_title(f"same modality, different seeds ({label})")
        cross.set_title(f"text vs image models ({label})")
        cross.set_xlabel("text model layer")
        same.set_xlabel("layer (text / image)")
        for ax in (same, cross):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, ncol=2)
    fig.suptitle(f"tic-tac-toe: representation alignment by layer after {cfg.steps} steps")
    return save_figure(fig, path)


def plot_alignment_vs_step(summary: dict[str, Any], cfg: PlatonicConfig, path: Path) -> Path:
    """Mutual k-NN against training step (log), one line per noise rate (band: std over model pairs), for
    text-text (last blocks), image-image (hidden layers) and text-image (last block vs hidden)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3), sharey=True)
    steps = snapshot_steps(cfg.steps, cfg.snapshots)
    for ax, pair in zip(axes, PAIRS):
        la, lb = _pair_layers(pair, cfg)
        for noise, colour in zip(cfg.noise_rates, _noise_colours(cfg)):
            picked = [_select(summary["alignment"], noise=noise, step=s, pair=pair, layer_a=la, layer_b=lb)[0]
                      for s in steps]
            mean = np.array([p["mutual_knn"] for p in picked])
            std = np.array([p["mutual_knn_std"] for p in picked])
            x = np.array(steps) + 1
            ax.plot(x, mean, "-o", color=colour, label=f"noise {noise:g}")
            ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.15)
        ax.axhline(summary["chance"], color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_xscale("log")
        ax.set_xlabel("training step + 1 (log)")
        ax.set_title(pair)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"mutual k-NN (k={cfg.k})")
    axes[0].legend(fontsize=8)
    fig.suptitle("alignment over training, by noise rate of the training games "
                 "(text: last block, image: hidden layer)")
    return save_figure(fig, path)


def plot_probes(summary: dict[str, Any], cfg: PlatonicConfig, path: Path) -> Path:
    """Board-probe accuracy by layer, text and image models, per noise rate: trained (solid) and at
    initialisation (dashed), with the majority-class baseline."""
    plt = pyplot()
    probes = summary["probes"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharey=True)
    majority = _select(probes, kind="majority")[0]["accuracy"]
    for ax, kind in zip(axes, KINDS):
        names = layer_names(kind, cfg)
        for noise, colour in zip(cfg.noise_rates, _noise_colours(cfg)):
            for step, style in ((cfg.steps, "-o"), (0, "--")):
                values = [np.mean([r["accuracy"] for r in _select(probes, noise=noise, kind=kind, step=step, layer=la)])
                          for la in range(len(names))]
                ax.plot(range(len(names)), values, style, color=colour,
                        label=f"noise {noise:g}" + (" (init)" if step == 0 else ""))
        ax.axhline(majority, color="grey", linestyle=":", linewidth=1, label="majority class")
        ax.axhline(1.0, color="black", linewidth=0.5)
        ax.set_xticks(range(len(names)), names)
        ax.set_title(f"{kind} models")
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    axes[0].set_ylabel("board probe accuracy (cells, held-out positions)")
    fig.suptitle("linear probe of the board (empty/X/O per cell) by layer: text vs image models")
    return save_figure(fig, path)
