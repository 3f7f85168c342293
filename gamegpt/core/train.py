"""The training loop: AdamW, warm-up + cosine learning rate, periodic eval and atomic checkpoints.

Batches are a pure function of (seed, step): step s trains on the blocks
`np.random.default_rng([seed, s]).integers(0, n_train_blocks, batch_size * world_size)`, rank r taking
the r-th slice of batch_size. Resuming therefore needs only the step (plus the model, optimizer and RNG
states, which checkpoints hold), and DDP with 2 ranks x batch B makes the same update as 1 process with 2B.

Distributed training: run under torchrun (`torchrun --standalone --nproc_per_node=2 -m gamegpt.cli train --config cfg.yaml`);
when WORLD_SIZE > 1 the process group is set up (gloo on CPU, nccl on CUDA), only rank 0 writes checkpoints
and logs and shows the progress bar.

Outputs in `out_dir`: `checkpoints/step-*/` (see gamegpt.core.checkpoint) and `train_log.jsonl`, one JSON
object per line for each "start" (each call that trains: the dtype used and why, device, threads, whether
glibc keeps large blocks for reuse: `gamegpt.core.heap`), "train" (every log_interval steps) and "eval" event.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

import gamegpt
from gamegpt.atomic import write_text_atomic
from gamegpt.core.checkpoint import (
    CHECKPOINTS_DIR,
    LATEST_FILE,
    list_checkpoints,
    load_model,
    load_training_state,
    read_checkpoint_config,
    remove_temp_dirs,
    resolve_checkpoint,
    save_checkpoint,
)
from gamegpt.core.data import BlockLabels, get_batch, open_split, read_meta
from gamegpt.core.heap import keep_large_blocks_in_heap
from gamegpt.core.model import GPT, GPTConfig, ModelShape, deepened_weights
from gamegpt.core.stored_labels import LABEL_KINDS, StoredLabels, load_stored_labels
from gamegpt.errors import CheckpointError, ConfigError
from gamegpt.games import codec_from_spec
from gamegpt.games.chess_move_values import MoveValueTable
from gamegpt.resources import find_model

LOG_FILE = "train_log.jsonl"
_EVAL_STREAM = 0xE7A1  # keeps the eval batches' random stream apart from the training batches'
_CHOICES = {"device": ("auto", "cpu", "cuda"), "dtype": ("auto", "float32", "bfloat16")}
_NATIVE_BF16_CPU_FEATURES = ("avx512_bf16", "amx_bf16")


@dataclass
class TrainConfig(ModelShape):
    """Everything a training run needs: the model's shape (the ModelShape fields, given by name: n_layer,
    n_head, n_embd, dropout, bias; all but dropout must not change on resume) and the training settings.

    `batch_size` is per process; `lr_decay_steps` defaults to `max_steps`; `threads` sets torch's CPU thread
    count (None leaves torch's default). `to_dict`/`from_dict` use the flat keys of a YAML train config.

    `dtype`: "auto" (the default) trains under bfloat16 autocast where the device computes bfloat16 natively
    (see `resolve_dtype`) and in float32 elsewhere; "float32" and "bfloat16" force one. Weights and optimizer
    state are float32 under either, so a run may resume under another dtype (it then no longer matches a
    straight run bit for bit). `compile` wraps the model in torch.compile (inductor): a one-time compile of
    up to a minute on a small CPU (cached between runs) and no measured gain there (bench/bench_core.py),
    hence off by default.
    """

    data_dir: str
    out_dir: str
    batch_size: int = 32
    max_steps: int = 5000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    lr_decay_steps: int | None = None
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_batches: int = 20
    checkpoint_interval: int = 250
    keep_checkpoints: int = 3
    seed: int = 1337
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False
    log_interval: int = 10
    threads: int | None = None
    board_loss_weight: float = 1.0
    """With `board_head: true`: the weight of the board head's loss beside the next-token loss (val loss is
    the next-token loss alone, so runs with and without the head compare)."""
    legal_loss_weight: float = 0.0
    """Above 0, on chess data of one token per move (chess-uci-moves, chess-position-move): add this weight x
    -log(the probability the model puts on the legal moves) at every move target whose board is known, so each
    position teaches the whole legal set, not only the move played. Labels cost python-chess time the first time
    a block is drawn (25 ms for 128 position samples; 0.35-0.7 CPU-seconds for 16 x 512 tokens of game text, about
    one bfloat16 step of a 4x256 model) and are kept (`BlockLabels`), unless `gamegpt data labels` stored them
    beside the shards, which training then reads instead. 0 (the default) turns it off; the val loss is the
    next-token loss alone."""
    distill_values: str | None = None
    """A move-value table (`gamegpt data move-values`), or several of one teacher as `DIR,DIR,...`: on chess data
    of one token per move, every move target whose board is in the table also learns the table's distribution over
    the moves (Stockfish's values through a softmax at `distill_temperature`), weighted by `distill_loss_weight`,
    beside the move played: distillation. Labels cost about the legal loss's python-chess time, once per block.
    The val loss is the next-token loss alone."""
    distill_loss_weight: float = 1.0
    distill_temperature: float = 0.05
    """In win-probability units (Lichess's curve; 0.5 is level): a move 0.05 below the best gets e^-1 of its weight."""
    init_from: str | None = None
    """Start a new run from another model's weights (a run or model directory, or a model name such as
    "chessgpt"), with a fresh optimizer at step 0: fine-tuning, or a longer run of a shipped model. The
    architecture and codec must match, except `board_head` (a new head starts untrained; one the new run lacks is
    dropped) and `n_layer`, which may be k times the source's: the model is deepened, each layer followed by k - 1
    copies whose output projections start at zero, so the new model computes what the old one did
    (`deepened_weights`). A resumed run ignores it: its weights come from its checkpoint."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Coerce values to their field types and check ranges; ConfigError (one line) on a bad value."""
        for f in fields(self):
            setattr(self, f.name, _coerce(f.name, str(f.type), getattr(self, f.name)))
        self.check_shape("train config")
        positive = ("batch_size", "max_steps", "eval_interval", "eval_batches", "checkpoint_interval",
                    "keep_checkpoints", "log_interval")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train config: {name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train config: {name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr_decay_steps", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"train config: {name} must be at least 1 (or null), got {value}")
        if not self.learning_rate > 0 or not 0 <= self.min_lr <= self.learning_rate:
            raise ConfigError(
                f"train config: need learning_rate > 0 and 0 <= min_lr <= learning_rate, "
                f"got {self.learning_rate} and {self.min_lr}"
            )
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"train config: {name} must be in [0, 1), got {getattr(self, name)}")
        if not self.distill_temperature > 0:
            raise ConfigError(f"train config: distill_temperature must be above 0, got {self.distill_temperature}")
        for name in ("weight_decay", "grad_clip", "board_loss_weight", "legal_loss_weight", "distill_loss_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train config: {name} must be >= 0 (0 turns it off), got {getattr(self, name)}")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ConfigError(f"train config: {name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if not self.data_dir or not self.out_dir:
            raise ConfigError("train config: data_dir and out_dir must be given")

    @property
    def decay_steps(self) -> int:
        """The step at which the cosine schedule reaches min_lr."""
        return self.lr_decay_steps if self.lr_decay_steps is not None else self.max_steps

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the YAML keys (data_dir and out_dir first) that `from_dict` reads back."""
        return {"data_dir": self.data_dir, "out_dir": self.out_dir, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> "TrainConfig":
        """Build a config from a dict; unknown or missing keys and bad values raise ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"train config must be a mapping of options, got {type(data).__name__}")
        _check_option_names(data)
        missing = [name for name in ("data_dir", "out_dir") if name not in data]
        if missing:
            raise ConfigError(f"train config: missing option(s) {', '.join(missing)}")
        return cls(**dict(data))


def _check_option_names(names: Iterable[Any]) -> None:
    """ConfigError naming every one of `names` that is not a TrainConfig option."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(str(name) for name in names if name not in known)
    if unknown:
        raise ConfigError(f"train config: unknown option(s) {', '.join(unknown)}")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """Read `--set KEY=VALUE` items into train options, each value read as YAML (`bias=true`, `dropout=0.1`).

    The one parser of `--set` for `gamegpt train`, `recipe` and `experiment`. Raises ConfigError (one line)
    for an item without "=", a value that is not YAML, or a key that is not a TrainConfig option; the values
    are checked when the config is built.
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value")
        try:
            options[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
    _check_option_names(options)
    return options


def _coerce(name: str, type_name: str, value: Any) -> Any:
    """Check `value` against a field type ("int", "float", "bool", "str", "int | None")."""
    optional = type_name.endswith("| None")
    base = type_name.replace("| None", "").strip()
    if value is None:
        if optional:
            return None
        raise ConfigError(f"train config: {name} must not be null")
    if base == "bool":
        if isinstance(value, bool):
            return value
    elif base == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, (float, str)) and not isinstance(value, bool):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number) and number == int(number):
                return int(number)
    elif base == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
        elif isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number
    elif base == "str":
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
    else:  # pragma: no cover - a field with a type this function does not know is a bug
        raise TypeError(f"unknown field type {type_name} for {name}")
    raise ConfigError(f"train config: {name} must be {'an integer' if base == 'int' else 'a ' + base}, got {value!r}")


def load_train_config(path: str | os.PathLike[str] | None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a YAML training config and apply `overrides` (options by name; `parse_overrides` reads `--set` items).

    `path` may be None to build the config from overrides alone. Relative paths in it are relative to the
    current directory. Raises ConfigError (one line) for an unreadable file, unknown keys or bad values.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the train config ({e.__class__.__name__}: {e})") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the train config must be a mapping of options")
        data.update(loaded)
    data.update(overrides or {})
    try:
        return TrainConfig.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path is not None else str(e)) from None


@dataclass
class TrainResult:
    """What a call of `train` achieved. Losses are None when not measured; `checkpoint` is the newest one."""

    out_dir: Path
    step: int
    train_loss: float | None
    val_loss: float | None
    tokens_per_second: float | None
    checkpoint: Path | None
    dtype: str | None = None
    """The dtype the steps ran under ("float32" or "bfloat16"), `TrainConfig.dtype` resolved."""


def learning_rate_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to `min_lr` at `decay_steps`, then `min_lr`."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_steps + 1)
    if step >= cfg.decay_steps:
        return cfg.min_lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.decay_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


def native_bfloat16(device: torch.device) -> tuple[bool, str]:
    """Whether `device` computes bfloat16 matmuls in hardware, and what that answer rests on (for the log).

    CUDA: `torch.cuda.is_bf16_supported(including_emulation=False)`. CPU: `torch.cpu.get_capabilities()`
    reports avx512_bf16 or amx_bf16; without them (an AVX2 CPU) bfloat16 matmuls are emulated, many times
    slower than float32.
    """
    if device.type == "cuda":
        native = bool(torch.cuda.is_bf16_supported(including_emulation=False))
        return native, f"{torch.cuda.get_device_name(device)}: native bfloat16 {'yes' if native else 'no'}"
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    capabilities: dict[str, Any] = get_capabilities() if get_capabilities is not None else {}
    cpu_name = capabilities.get("cpu_name") or "this CPU"
    found = [feature for feature in _NATIVE_BF16_CPU_FEATURES if capabilities.get(feature)]
    if found:
        return True, f"{cpu_name} has {' and '.join(found)}"
    return False, f"{cpu_name} has no {' or '.join(_NATIVE_BF16_CPU_FEATURES)}"


def resolve_dtype(requested: str, device: torch.device) -> tuple[str, str]:
    """The dtype a run trains under, "float32" or "bfloat16" (autocast), and why (one line for the log).

    "auto" is bfloat16 where `native_bfloat16(device)` says so, else float32; an explicit choice is kept.
    """
    if requested not in _CHOICES["dtype"]:
        raise ConfigError(f"train config: dtype must be one of {', '.join(_CHOICES['dtype'])}, got {requested!r}")
    native, reason = native_bfloat16(device)
    if requested != "auto":
        return requested, f"dtype {requested} in the train config ({reason})"
    return ("bfloat16" if native else "float32"), f"dtype auto ({reason})"


def batch_indices(seed: int, step: int, n_blocks: int, global_batch: int) -> np.ndarray:
    """The training blocks of `step` for all ranks together (rank r takes the r-th slice)."""
    return np.random.default_rng([seed, step]).integers(0, n_blocks, size=global_batch)


def eval_indices(seed: int, batch: int, n_blocks: int, global_batch: int) -> np.ndarray:
    """The val blocks of eval batch number `batch`: the same at every eval, so losses are comparable."""
    return np.random.default_rng([seed, _EVAL_STREAM, batch + 1]).integers(0, n_blocks, size=global_batch)


# ------------------------------------------------------------------------------------------ distribution


@dataclass
class _Context:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def comm_device(self) -> torch.device:
        """Where tensors must live for collectives (nccl: the GPU, gloo: the CPU)."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def _setup(cfg: TrainConfig) -> _Context:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train config: device is cuda, but no CUDA device is available")
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    owns_group = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        owns_group = True
    return _Context(rank, local_rank, world_size, device, owns_group)


def _mean_over_ranks(ctx: _Context, value: float) -> float:
    if ctx.world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.comm_device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / ctx.world_size


def _any_rank(ctx: _Context, flag: bool) -> bool:
    if ctx.world_size == 1:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=ctx.comm_device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _rank_seed(seed: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] >> 1)


def _gather_rng_states(ctx: _Context) -> dict[str, torch.Tensor]:
    """Torch RNG states of every rank, as uint8 tensors named "<kind>.rank<r>" (collective under DDP)."""
    local = {"cpu": torch.get_rng_state()}
    if ctx.device.type == "cuda":
        local["cuda"] = torch.cuda.get_rng_state(ctx.device)
    if ctx.world_size == 1:
        return {f"{kind}.rank0": state for kind, state in local.items()}
    gathered: dict[str, torch.Tensor] = {}
    for kind, state in local.items():
        t = state.to(ctx.comm_device)
        parts = [torch.empty_like(t) for _ in range(ctx.world_size)]
        dist.all_gather(parts, t)
        for r, part in enumerate(parts):
            gathered[f"{kind}.rank{r}"] = part.cpu()
    return gathered


def _restore_rng_states(ctx: _Context, states: dict[str, torch.Tensor], seed: int) -> bool:
    """Set this rank's torch RNG from a checkpoint; False (and a fresh seed) if the checkpoint lacks it."""
    cpu = states.get(f"cpu.rank{ctx.rank}")
    if cpu is None:
        torch.manual_seed(_rank_seed(seed, ctx.rank))
        return False
    torch.set_rng_state(cpu)
    if ctx.device.type == "cuda":
        cuda = states.get(f"cuda.rank{ctx.rank}")
        if cuda is None:
            torch.cuda.manual_seed(_rank_seed(seed, ctx.rank))
            return False
        torch.cuda.set_rng_state(cuda, ctx.device)
    return True


# ------------------------------------------------------------------------------------------ interrupts


class _DeferredInterrupt:
    """Turns the first Ctrl-C into a flag checked between steps (so a checkpoint is never taken mid-update).

    A second Ctrl-C raises KeyboardInterrupt at once. Only active in the main thread.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "_DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


# ------------------------------------------------------------------------------------------ the log


def _append_log(path: Path, event: dict[str, Any]) -> None:
    """Append one JSON line with a single write() on an O_APPEND descriptor (never a torn line on kill)."""
    line = (json.dumps(event) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _trim_log(path: Path, step: int) -> None:
    """On resume: drop events after `step` (written by a run killed later than its last checkpoint)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and isinstance(event.get("step"), int) and event["step"] <= step:
            kept.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in kept))


# ------------------------------------------------------------------------------------------ training


_MAY_CHANGE_ON_RESUME = frozenset({"dropout"})
"""GPTConfig fields a resumed run may change: they shape no weight. Every other field must stay as it was."""


def _model_config(cfg: TrainConfig, meta: dict[str, Any]) -> GPTConfig:
    return GPTConfig(vocab_size=meta["vocab_size"], block_size=meta["block_len"] - 1, **cfg.shape())


def _board_labeller(model_config: GPTConfig, codec: dict[str, Any]) -> Callable[[Sequence[int]], np.ndarray] | None:
    """The codec's `board_targets` when the model has a board head (None otherwise); ConfigError for a codec
    without board labels."""
    if not model_config.board_head:
        return None
    return _codec_labels(codec, "board_targets", "board_head needs data whose codec labels boards "
                                                 "(chess-uci-moves, chess-position-move)")


def _legal_labeller(cfg: TrainConfig, codec: dict[str, Any]) -> Callable[[Sequence[int]], np.ndarray] | None:
    """The codec's `legal_targets` when `legal_loss_weight` is on (None otherwise); ConfigError for a codec
    without legal-move labels."""
    if cfg.legal_loss_weight == 0:
        return None
    return _codec_labels(codec, "legal_targets", "legal_loss_weight needs data of one token per move "
                                                 "(chess-uci-moves, chess-position-move)")


def _value_labeller(cfg: TrainConfig, codec: dict[str, Any]) -> Callable[[Sequence[int]], np.ndarray] | None:
    """The codec's `value_targets` against the table `distill_values` (None without one); ConfigError for a codec
    without them, UserError for a table that cannot be read."""
    if cfg.distill_values is None:
        return None
    labeller = _codec_labels(codec, "value_targets", "distill_values needs data of one token per move "
                             "(chess-uci-moves or chess-position-move)")
    table = MoveValueTable.load([path for path in cfg.distill_values.split(",") if path])
    return functools.partial(labeller, table=table, temperature=cfg.distill_temperature)


def _block_labels(labeller: Callable[[Sequence[int]], np.ndarray] | None, fill: float | int | bool) -> BlockLabels | None:
    """The labeller's labels of shard blocks, each block labelled once (None without a labeller)."""
    return None if labeller is None else BlockLabels(labeller, fill)


def _labels(data_dir: str, kind: str, labeller: Callable[[Sequence[int]], np.ndarray] | None,
            meta: Mapping[str, Any]) -> BlockLabels | StoredLabels | None:
    """The labels of `kind` when the run needs them (a labeller): those stored beside the shards by `gamegpt data
    labels` if there are, else labelled here as batches need them (None without a labeller)."""
    if labeller is None:
        return None
    method, fill = LABEL_KINDS[kind]
    stored = load_stored_labels(data_dir, kind, method, n_blocks=meta["n_blocks"]["train"], block_len=meta["block_len"])
    return stored if stored is not None else BlockLabels(labeller, fill)


def _codec_labels(codec: dict[str, Any], method: str, needs: str) -> Callable[[Sequence[int]], np.ndarray]:
    """The data codec's labelling `method`; ConfigError `needs` (naming the codec) if it has none."""
    labeller = getattr(codec_from_spec(codec), method, None)
    if labeller is None:
        raise ConfigError(f"{needs}; this data's codec is {codec.get('name')!r}")
    return labeller  # type: ignore[no-any-return]


def _initial_weights(source: str, model_config: GPTConfig, codec: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights of model `source` (a path or a model name) for a new model of `model_config`: every weight
    but a board head's, deepened (`deepened_weights`) when `model_config` has k times the source's layers;
    ConfigError if the architecture otherwise differs (board head aside) or the codec does."""
    path = Path(source).expanduser()
    if not path.exists():
        path = find_model(source) or path
    try:
        source_model, source_codec, _ = load_model(path)
    except CheckpointError as e:
        raise ConfigError(f"init_from: {e}") from None
    theirs = source_model.config.to_dict()
    changed = [f"{k} {theirs.get(k)} -> {value}" for k, value in model_config.to_dict().items()
               if k not in _MAY_CHANGE_ON_RESUME | {"board_head", "n_layer"} and theirs.get(k) != value]
    source_layers = source_model.config.n_layer
    if model_config.n_layer % source_layers:
        changed.append(f"n_layer {source_layers} -> {model_config.n_layer} (deepening needs a multiple)")
    if changed:
        raise ConfigError(f"init_from {source}: another architecture ({'; '.join(changed)}); "
                          "give the same model shape (and data of the same block length)")
    if source_codec != codec:
        raise ConfigError(f"init_from {source}: its codec {source_codec} differs from the data's {codec}")
    weights = {name: tensor for name, tensor in source_model.state_dict().items() if not name.startswith("board_head.")}
    return deepened_weights(weights, source_layers, model_config.n_layer)


def _check_resumable(checkpoint: dict[str, Any], model_config: GPTConfig, codec: dict[str, Any]) -> None:
    saved = checkpoint["model"]
    ours = model_config.to_dict()
    changed = [f"{k} {saved.get(k)} -> {value}" for k, value in ours.items()
               if k not in _MAY_CHANGE_ON_RESUME and saved.get(k) != value]
    if changed:
        raise ConfigError(
            f"cannot resume {checkpoint['path']} with another architecture ({'; '.join(changed)}); "
            "use the original settings or a new out_dir"
        )
    if checkpoint["codec"] != codec:
        raise ConfigError(f"cannot resume {checkpoint['path']}: the data's codec {codec} differs from the checkpoint's")


@torch.no_grad()
def _evaluate(
    model: GPT, blocks: np.ndarray, cfg: TrainConfig, ctx: _Context, autocast: Any,
    scored_targets: Mapping[str, int] | None = None,
) -> float:
    model.eval()
    total = 0.0
    global_batch = cfg.batch_size * ctx.world_size
    for batch in range(cfg.eval_batches):
        indices = eval_indices(cfg.seed, batch, len(blocks), global_batch)
        x, y = get_batch(blocks, indices[ctx.rank * cfg.batch_size : (ctx.rank + 1) * cfg.batch_size], ctx.device,
                         scored_targets)
        with autocast():
            _, loss = model(x, y)
        assert loss is not None
        total += float(loss.item())
    model.train()
    return _mean_over_ranks(ctx, total / cfg.eval_batches)


def train(
    cfg: TrainConfig, *, resume: bool = False, stop_after: int | None = None, progress: bool = True
) -> TrainResult:
    """Train a GPT on the token shards in `cfg.data_dir`, writing checkpoints and a log to `cfg.out_dir`.

    `resume=True` continues exactly from `out_dir/checkpoints/latest` (model, optimizer, RNG, step); a
    finished run is left as it is. Without `resume`, an `out_dir` that already holds checkpoints is a
    ConfigError. `stop_after=N` ends (with a checkpoint) after global step N. On Ctrl-C a checkpoint is
    saved and KeyboardInterrupt re-raised. Under torchrun (WORLD_SIZE > 1) this is one rank of a DDP run.
    """
    cfg.validate()
    if stop_after is not None and stop_after < 1:
        raise ConfigError(f"stop_after must be at least 1, got {stop_after}")
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    ctx = _setup(cfg)
    try:
        return _train(cfg, ctx, resume=resume, stop_after=stop_after, progress=progress)
    finally:
        if ctx.owns_group:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, ctx: _Context, *, resume: bool, stop_after: int | None, progress: bool) -> TrainResult:
    heap_kept = ctx.device.type == "cpu" and keep_large_blocks_in_heap()  # no page faults for a step's big blocks
    meta = read_meta(cfg.data_dir)
    train_blocks = open_split(cfg.data_dir, "train")
    val_blocks = open_split(cfg.data_dir, "val")
    codec = meta["codec"]
    model_config = _model_config(cfg, meta)
    board_labels = _labels(cfg.data_dir, "board", _board_labeller(model_config, codec), meta)
    legal_labels = _labels(cfg.data_dir, "legal", _legal_labeller(cfg, codec), meta)
    value_labels = _block_labels(_value_labeller(cfg, codec), fill=0)
    out = Path(cfg.out_dir)
    checkpoints = out / CHECKPOINTS_DIR
    log_path = out / LOG_FILE
    show = progress and ctx.is_main

    def say(message: str, always: bool = False) -> None:
        """Progress notes need `progress`; notes that change what the caller expects are always shown."""
        if show or (always and ctx.is_main):
            tqdm.write(message, file=sys.stderr)

    checkpoint_info: dict[str, Any] | None = None
    if resume:
        try:
            checkpoint_info = read_checkpoint_config(resolve_checkpoint(out))
        except CheckpointError as e:
            raise CheckpointError(f"cannot resume: {e}") from None
        _check_resumable(checkpoint_info, model_config, codec)
    elif list_checkpoints(checkpoints) or (checkpoints / LATEST_FILE).exists():
        raise ConfigError(f"{out}: already holds checkpoints; resume it, or choose another out_dir")
    initial_weights = None if resume or cfg.init_from is None else _initial_weights(cfg.init_from, model_config, codec)

    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        remove_temp_dirs(checkpoints)

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = GPT(model_config)
    if initial_weights is not None:
        model.load_state_dict(initial_weights, strict=False)  # keys checked by _initial_weights
        say(f"initial weights from {cfg.init_from}", always=True)
    model = model.to(ctx.device)
    optimizer = model.configure_optimizer(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), ctx.device.type)
    step = 0
    state: dict[str, Any] = {"best_val_loss": None, "last_val_loss": None, "last_train_loss": None, "tokens_seen": 0,
                             "train_cpu_seconds": 0.0}
    last_checkpoint: Path | None = None
    if checkpoint_info is not None:
        last_checkpoint = Path(checkpoint_info["path"])
        trainer_state, rng_states = load_training_state(last_checkpoint, model, optimizer)
        step = trainer_state["step"]
        for key in state:
            state[key] = trainer_state.get(key, state[key])
        if not _restore_rng_states(ctx, rng_states, cfg.seed):
            print(f"note: {last_checkpoint} has no RNG state for rank {ctx.rank}; dropout continues from a fresh seed",
                  file=sys.stderr)
        if ctx.is_main:
            _trim_log(log_path, step)
    else:
        torch.manual_seed(_rank_seed(cfg.seed, ctx.rank))  # dropout masks differ between ranks

    end = cfg.max_steps if stop_after is None else min(cfg.max_steps, stop_after)
    if step >= end:
        say(f"{out}: already trained to step {step} (asked for {end}); nothing to do", always=True)
        return TrainResult(out, step, state["last_train_loss"], state["last_val_loss"], None, last_checkpoint)

    raw_model = model
    if cfg.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    if ctx.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)  # type: ignore[assignment]

    dtype, dtype_reason = resolve_dtype(cfg.dtype, ctx.device)
    say(f"training under {dtype}: {dtype_reason}")
    if dtype == "bfloat16" and not native_bfloat16(ctx.device)[0]:
        say("note: bfloat16 without hardware support is emulated, many times slower than float32 here "
            "(dtype auto would choose float32)", always=True)
    trained_under = checkpoint_info["meta"].get("dtype") if checkpoint_info is not None else None
    if trained_under is not None and trained_under != dtype:
        say(f"note: {last_checkpoint} was trained under {trained_under}, continuing under {dtype} "
            "(weights and optimizer state are float32 under both)", always=True)
    if dtype == "bfloat16":
        def autocast() -> Any:
            return torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16)
    else:
        def autocast() -> Any:
            return contextlib.nullcontext()

    block_size = model_config.block_size
    global_batch = cfg.batch_size * ctx.world_size
    tokens_per_step = global_batch * block_size
    lo, hi = ctx.rank * cfg.batch_size, (ctx.rank + 1) * cfg.batch_size
    train_seconds = 0.0
    train_steps = 0
    window_seconds = 0.0
    window_steps = 0
    tokens_per_second: float | None = None
    saved_step = step if checkpoint_info is not None else -1

    def sync() -> None:
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)

    def save(step: int) -> Path | None:
        rng_states = _gather_rng_states(ctx)  # collective: every rank takes part
        if not ctx.is_main:
            return None
        run_meta = {
            "train_config": cfg.to_dict(),
            "train_loss": state["last_train_loss"],
            "val_loss": state["last_val_loss"],
            "best_val_loss": state["best_val_loss"],
            "tokens_seen": state["tokens_seen"],
            "train_cpu_seconds": state["train_cpu_seconds"],
            "world_size": ctx.world_size,
            "dtype": dtype,
            "data": {"dir": os.path.abspath(cfg.data_dir), "block_len": meta["block_len"], "n_blocks": meta["n_blocks"]},
            "gamegpt_version": gamegpt.__version__,
            "torch_version": torch.__version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        trainer_state = {
            **state,
            "world_size": ctx.world_size,
            "batch_size": cfg.batch_size,
            "data_position": {"sampler": "numpy default_rng([seed, step]).integers", "seed": cfg.seed, "next_step": step},
            "python_random_state": None,  # Python's and numpy's global generators are not used
            "numpy_random_state": None,
        }
        return save_checkpoint(
            out, step=step, model=raw_model, codec=codec, meta=run_meta, optimizer=optimizer,
            trainer_state=trainer_state, rng_states=rng_states, keep=cfg.keep_checkpoints,
        )

    bar = tqdm(total=end, initial=step, disable=not show, unit="step", dynamic_ncols=True, desc="train")
    try:
        with _DeferredInterrupt() as interrupt:
            model.train()
            if ctx.is_main:
                _append_log(log_path, {"event": "start", "step": step, "dtype": dtype, "dtype_reason": dtype_reason,
                                       "device": str(ctx.device), "threads": torch.get_num_threads(),
                                       "compile": cfg.compile, "world_size": ctx.world_size, "heap_kept": heap_kept,
                                       "stored_labels": [kind for kind, labels in (("board", board_labels),
                                                         ("legal", legal_labels)) if isinstance(labels, StoredLabels)],
                                       "time": time.time()})
            while step < end:
                started, cpu_started = time.perf_counter(), time.process_time()
                lr = learning_rate_at(step, cfg)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                indices = batch_indices(cfg.seed, step, len(train_blocks), global_batch)[lo:hi]
                x, y = get_batch(train_blocks, indices, ctx.device, meta.get("scored_targets"))
                extra: dict[str, Any] = {}
                if board_labels is not None:
                    extra.update(board_targets=board_labels.batch(train_blocks, indices, ctx.device),
                                 board_weight=cfg.board_loss_weight)
                if legal_labels is not None:
                    extra.update(legal_targets=legal_labels.batch(train_blocks, indices, ctx.device),
                                 legal_weight=cfg.legal_loss_weight)
                if value_labels is not None:
                    extra.update(value_targets=value_labels.batch(train_blocks, indices, ctx.device),
                                 value_weight=cfg.distill_loss_weight)
                with autocast():
                    _, loss = model(x, y, **extra)
                assert loss is not None
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                step += 1
                state["tokens_seen"] += tokens_per_step
                is_last = step == end
                if step % cfg.log_interval == 0 or is_last:
                    loss_value = _mean_over_ranks(ctx, float(loss.item()))  # .item() waits for the GPU
                    state["last_train_loss"] = loss_value
                elapsed = time.perf_counter() - started
                state["train_cpu_seconds"] += time.process_time() - cpu_started
                train_seconds += elapsed
                window_seconds += elapsed
                train_steps += 1
                window_steps += 1
                bar.update(1)
                if step % cfg.log_interval == 0 or is_last:
                    tokens_per_second = window_steps * tokens_per_step / max(window_seconds, 1e-9)
                    window_seconds, window_steps = 0.0, 0
                    if ctx.is_main:
                        event = {"event": "train", "step": step, "loss": state["last_train_loss"], "lr": lr,
                                 "tokens_per_second": tokens_per_second,
                                 "cpu_seconds": round(state["train_cpu_seconds"], 3), "time": time.time()}
                        if raw_model.last_board_loss is not None:  # this rank's: the loss above includes it
                            event["board_loss"] = float(raw_model.last_board_loss)
                        if raw_model.last_legal_loss is not None:
                            event["legal_loss"] = float(raw_model.last_legal_loss)
                        if raw_model.last_value_loss is not None:
                            event["distill_loss"] = float(raw_model.last_value_loss)
                        _append_log(log_path, event)
                    bar.set_postfix(loss=f"{state['last_train_loss']:.4f}",
                                    val=f"{state['last_val_loss']:.4f}" if state["last_val_loss"] is not None else "-",
                                    lr=f"{lr:.2e}", tok_s=f"{tokens_per_second:,.0f}", refresh=False)
                if step % cfg.eval_interval == 0 or is_last:
                    sync()
                    val_loss = _evaluate(raw_model, val_blocks, cfg, ctx, autocast, meta.get("scored_targets"))
                    state["last_val_loss"] = val_loss
                    if state["best_val_loss"] is None or val_loss < state["best_val_loss"]:
                        state["best_val_loss"] = val_loss
                    if ctx.is_main:
                        _append_log(log_path, {"event": "eval", "step": step, "val_loss": val_loss, "time": time.time()})
                    bar.set_postfix(loss=f"{state['last_train_loss']:.4f}" if state["last_train_loss"] is not None else "-",
                                    val=f"{val_loss:.4f}", lr=f"{lr:.2e}",
                                    tok_s=f"{tokens_per_second:,.0f}" if tokens_per_second else "-", refresh=False)
                if step % cfg.checkpoint_interval == 0 or is_last:
                    sync()
                    last_checkpoint = save(step) or last_checkpoint
                    saved_step = step
                if _any_rank(ctx, interrupt.requested):
                    if saved_step != step:
                        last_checkpoint = save(step) or last_checkpoint
                        saved_step = step
                    say(f"interrupted at step {step}; checkpoint in {last_checkpoint}", always=True)
                    raise KeyboardInterrupt
    finally:
        bar.close()
    if train_seconds > 0:
        tokens_per_second = train_steps * tokens_per_step / train_seconds
    say(f"trained to step {step}; checkpoint in {last_checkpoint}, log in {log_path}")
    return TrainResult(out, step, state["last_train_loss"], state["last_val_loss"], tokens_per_second, last_checkpoint,
                       dtype)
