"""Checkpoints as safetensors + JSON (never pickle), written atomically.

A checkpoint is a directory:

    config.json            {"format", "version", "model": GPTConfig, "codec": spec, "meta": {...}, "files": {...}}
    model.safetensors      the weights (without lm_head.weight, which is tied to transformer.wte.weight)
    optimizer.safetensors  training checkpoints only: AdamW state per parameter ("state.<param>.exp_avg",
                           ".exp_avg_sq", ".step") and torch RNG states as uint8 tensors ("rng.<name>")
    trainer.json           training checkpoints only: step, best val loss, ... (written last)

A training run keeps them in `OUT/checkpoints/step-000123/`; `OUT/checkpoints/latest` is a text file naming
the newest one. Each checkpoint is built in `OUT/checkpoints/.tmp-*` and renamed into place, and `latest` is
replaced atomically (`gamegpt.atomic`), so a killed run leaves only complete checkpoints (and `.tmp-*` leftovers, removed
by `remove_temp_dirs` at the next start). Files carry SHA-256 digests, so corruption is detected.

Every loading failure raises CheckpointError with one line naming the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import load as parse_safetensors, save as serialize_safetensors
import torch

from gamegpt.atomic import TEMP_PREFIX, atomic_directory, temp_path, write_text_atomic
from gamegpt.core.model import GPT, GPTConfig
from gamegpt.errors import CheckpointError, ConfigError

CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_FILE = "trainer.json"
FORMAT = "gamegpt-checkpoint"
VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d+)$")
_SAVE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def step_dir_name(step: int) -> str:
    """The directory name of the checkpoint at `step`: step-000123."""
    return f"step-{step:06d}"


# ----------------------------------------------------------------------------------------------- writing


def _write_bytes(path: Path, data: bytes) -> str:
    """Write and fsync `data`; return its SHA-256."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def _write_json(path: Path, data: Any) -> None:
    _write_bytes(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def _file_entry(digest: str, data: bytes) -> dict[str, Any]:
    return {"sha256": digest, "bytes": len(data)}


def _write_model_files(
    directory: Path, model: GPT, codec: dict[str, Any], meta: dict[str, Any], dtype: torch.dtype | None = None
) -> None:
    tensors = model.state_dict_for_saving()
    if dtype is not None:
        tensors = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in tensors.items()}
    data = serialize_safetensors({k: v.cpu().contiguous() for k, v in tensors.items()})
    digest = _write_bytes(directory / MODEL_FILE, data)
    config = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.config.to_dict(),
        "codec": codec,
        "meta": meta,
        "files": {MODEL_FILE: _file_entry(digest, data)},
    }
    _write_json(directory / CONFIG_FILE, config)


def _optimizer_tensors(model: GPT, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for name, param in model.named_parameters():
        state = optimizer.state.get(param)
        if not state:
            continue
        for key in ("exp_avg", "exp_avg_sq", "step"):
            value = state[key]
            if not isinstance(value, torch.Tensor):
                value = torch.tensor(float(value), dtype=torch.float32)
            tensors[f"state.{name}.{key}"] = value.detach().cpu().contiguous()
    return tensors


def _rename_aside_and_delete(path: Path) -> None:
    """Remove a directory so that a kill never leaves it half deleted: rename to .tmp-*, then delete."""
    aside = temp_path(path)
    os.rename(path, aside)
    shutil.rmtree(aside, ignore_errors=True)


def save_model(dst_dir: str | os.PathLike[str], model: GPT, codec: dict[str, Any], meta: dict[str, Any],
               *, dtype: str = "float32", overwrite: bool = False) -> Path:
    """Write a model-only checkpoint (config.json + model.safetensors) to `dst_dir`, atomically.

    `dtype` ("float32", "bfloat16" or "float16") is the type the weights are stored in. Raises CheckpointError
    if `dst_dir` exists and `overwrite` is False.
    """
    dst = Path(dst_dir)
    if dtype not in _SAVE_DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(_SAVE_DTYPES)}, got {dtype!r}")
    if dst.exists() and not overwrite:
        raise CheckpointError(f"{dst}: already exists")
    with atomic_directory(dst) as tmp:
        _write_model_files(tmp, model, codec, meta, _SAVE_DTYPES[dtype])
    return dst


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    *,
    step: int,
    model: GPT,
    codec: dict[str, Any],
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    trainer_state: dict[str, Any] | None = None,
    rng_states: dict[str, torch.Tensor] | None = None,
    keep: int | None = 3,
) -> Path:
    """Write `run_dir/checkpoints/step-<step>/` atomically, point `latest` at it, keep the newest `keep`.

    `model` must be the bare GPT (not a DDP or compiled wrapper). With `optimizer`, the AdamW state and the
    `rng_states` (uint8 tensors) go to optimizer.safetensors and `trainer_state` to trainer.json.
    `keep=None` keeps every checkpoint. Returns the checkpoint directory.
    """
    root = Path(run_dir) / CHECKPOINTS_DIR
    name = step_dir_name(step)
    final = root / name
    with atomic_directory(final) as tmp:  # a `final` left by a run killed before `latest` moved on is replaced
        _write_model_files(tmp, model, codec, {**meta, "step": step})
        if optimizer is not None or trainer_state is not None or rng_states is not None:
            tensors = _optimizer_tensors(model, optimizer) if optimizer is not None else {}
            for key, value in (rng_states or {}).items():
                tensors[f"rng.{key}"] = value.detach().cpu().to(torch.uint8).contiguous()
            data = serialize_safetensors(tensors)
            digest = _write_bytes(tmp / OPTIMIZER_FILE, data)
            state = {**(trainer_state or {}), "step": step, "files": {OPTIMIZER_FILE: _file_entry(digest, data)}}
            _write_json(tmp / TRAINER_FILE, state)
    write_text_atomic(root / LATEST_FILE, name + "\n")
    if keep is not None:
        for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
            if old.name != name:
                _rename_aside_and_delete(old)
    return final


def list_checkpoints(checkpoints_dir: str | os.PathLike[str]) -> list[Path]:
    """The complete `step-*` directories in `checkpoints_dir`, oldest step first."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _STEP_DIR.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return [path for _, path in sorted(found)]


def remove_temp_dirs(checkpoints_dir: str | os.PathLike[str]) -> int:
    """Delete `.tmp-*` leftovers of a killed run in `checkpoints_dir`; return how many were removed.

    Only call this when no other process is writing checkpoints there.
    """
    root = Path(checkpoints_dir)
    removed = 0
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(TEMP_PREFIX):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
    return removed


# ----------------------------------------------------------------------------------------------- reading


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The checkpoint directory that `path` names: a checkpoint dir itself, a `checkpoints` dir, or a run dir.

    For the latter two, `checkpoints/latest` is followed; if it is missing (a run killed before writing it),
    the newest complete step directory is used. A path to a checkpoint's config.json or model.safetensors
    names its directory. Raises CheckpointError if there is none.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint (the path does not exist)")
    if p.is_file() and p.name in (CONFIG_FILE, MODEL_FILE):
        p = p.parent
    if not p.is_dir():
        raise CheckpointError(f"{p}: not a checkpoint directory")
    if (p / CONFIG_FILE).exists() or (p / MODEL_FILE).exists():
        return p
    if p.name.startswith("step-") and (p / TRAINER_FILE).exists():
        return p
    root = p / CHECKPOINTS_DIR if (p / CHECKPOINTS_DIR).is_dir() else p
    latest = root / LATEST_FILE
    if latest.exists():
        try:
            name = latest.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{latest}: unreadable ({e})") from None
        if not _STEP_DIR.match(name):
            raise CheckpointError(f"{latest}: does not name a checkpoint directory ({name[:40]!r})")
        if (root / name).is_dir():
            return root / name
    steps = list_checkpoints(root)
    if steps:
        return steps[-1]
    raise CheckpointError(f"{p}: holds no checkpoint (no config.json, no checkpoints/latest, no step-* directory)")


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable ({e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def _read_safetensors(path: Path, expected: Any) -> dict[str, torch.Tensor]:
    """Load a safetensors file, checking its digest when `expected` ({"sha256", "bytes"}) is given."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except OSError as e:
        raise CheckpointError(f"{path}: unreadable ({e})") from None
    if isinstance(expected, dict):
        if "bytes" in expected and expected["bytes"] != len(data):
            raise CheckpointError(f"{path}: truncated or altered ({len(data)} bytes, expected {expected['bytes']})")
        if "sha256" in expected and hashlib.sha256(data).hexdigest() != expected["sha256"]:
            raise CheckpointError(f"{path}: corrupt (SHA-256 does not match the one recorded at saving)")
    try:
        return parse_safetensors(data)  # safetensors' own parser of raw tensor bytes: nothing is unpickled
    except Exception as e:  # safetensors raises its own SafetensorError and others; never let them surface
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path}: not a valid safetensors file ({message})") from None


def read_checkpoint_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed and checked config.json of the checkpoint `path` resolves to (adds "path": the directory)."""
    directory = resolve_checkpoint(path)
    config_path = directory / CONFIG_FILE
    config = _read_json(config_path)
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"{config_path}: not a gamegpt checkpoint config (no \"model\" section)")
    if config.get("format", FORMAT) != FORMAT or config.get("version", VERSION) != VERSION:
        raise CheckpointError(f"{config_path}: unsupported format {config.get('format')!r} version {config.get('version')!r}")
    try:
        GPTConfig.from_dict(config["model"])
    except ConfigError as e:
        raise CheckpointError(f"{config_path}: {e}") from None
    codec = config.get("codec", {})
    meta = config.get("meta", {})
    if not isinstance(codec, dict) or not isinstance(meta, dict):
        raise CheckpointError(f"{config_path}: \"codec\" and \"meta\" must be JSON objects")
    return {**config, "codec": codec, "meta": meta, "path": str(directory)}


def _files_entry(record: dict[str, Any]) -> dict[str, Any]:
    """The "files" section (digests) of a config.json or trainer.json; empty when absent."""
    files = record.get("files")
    return files if isinstance(files, dict) else {}


def _load_weights(model: GPT, path: Path, expected: Any) -> None:
    tensors = _read_safetensors(path, expected)
    wanted = model.state_dict_for_saving()
    missing = sorted(set(wanted) - set(tensors))
    unexpected = sorted(set(tensors) - set(wanted))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{path}: tensors do not match config.json ({detail})")
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(wanted[name].shape):
            raise CheckpointError(
                f"{path}: tensor {name} has shape {tuple(tensor.shape)}, config.json says {tuple(wanted[name].shape)}"
            )
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path}: tensor {name} has dtype {tensor.dtype}, expected a float type")
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"]
    model.load_state_dict(tensors, strict=True)


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[GPT, dict[str, Any], dict[str, Any]]:
    """Load (model, codec spec, meta) from a run dir, a `checkpoints` dir or a checkpoint dir.

    The model is float32, on `device`, in eval mode. Raises CheckpointError (one line, naming the path)
    on any problem with the files.
    """
    config = read_checkpoint_config(path)
    directory = Path(config["path"])
    model = GPT(GPTConfig.from_dict(config["model"]))
    files = _files_entry(config)
    _load_weights(model, directory / MODEL_FILE, files.get(MODEL_FILE))
    model.to(device)
    model.eval()
    return model, config["codec"], config["meta"]


def load_training_state(
    path: str | os.PathLike[str], model: GPT, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights and AdamW state of a training checkpoint into `model` and `optimizer`.

    `model` must have the checkpoint's architecture and `optimizer` must come from
    `model.configure_optimizer`. Returns (trainer.json contents, RNG states by name).
    """
    config = read_checkpoint_config(path)
    directory = Path(config["path"])
    files = _files_entry(config)
    _load_weights(model, directory / MODEL_FILE, files.get(MODEL_FILE))
    trainer_path = directory / TRAINER_FILE
    trainer_state = _read_json(trainer_path)
    if not isinstance(trainer_state, dict) or not isinstance(trainer_state.get("step"), int):
        raise CheckpointError(f"{trainer_path}: malformed (needs an integer \"step\")")
    tfiles = _files_entry(trainer_state)
    opt_path = directory / OPTIMIZER_FILE
    tensors = _read_safetensors(opt_path, tfiles.get(OPTIMIZER_FILE))
    rng_states = {k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.")}

    index_of: dict[int, int] = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            index_of[id(param)] = len(index_of)
    state: dict[int, dict[str, torch.Tensor]] = {}
    used = set(k for k in tensors if k.startswith("rng."))
    for name, param in model.named_parameters():
        keys = [f"state.{name}.{key}" for key in ("exp_avg", "exp_avg_sq", "step")]
        present = [k in tensors for k in keys]
        if not any(present):
            continue
        if not all(present) or id(param) not in index_of:
            raise CheckpointError(f"{opt_path}: incomplete optimizer state for {name}")
        exp_avg, exp_avg_sq, step = (tensors[k] for k in keys)
        if exp_avg.shape != param.shape or exp_avg_sq.shape != param.shape or step.numel() != 1:
            raise CheckpointError(f"{opt_path}: optimizer state for {name} does not match the model's shape")
        state[index_of[id(param)]] = {"step": step.reshape(()).float(), "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        used.update(keys)
    unknown = sorted(set(tensors) - used)
    if unknown:
        raise CheckpointError(f"{opt_path}: tensors that match no parameter ({unknown[:3]})")
    optimizer_state = optimizer.state_dict()
    optimizer_state["state"] = state
    optimizer.load_state_dict(optimizer_state)
    return trainer_state, rng_states


def export_model(
    src_path: str | os.PathLike[str], dst_dir: str | os.PathLike[str], *, dtype: str = "float32", overwrite: bool = False
) -> Path:
    """Copy the model of a checkpoint (run dir, checkpoints dir or checkpoint dir) to `dst_dir` for shipping.

    Only config.json and model.safetensors are written (weights in `dtype`); the optimizer and trainer state
    are left behind. Returns `dst_dir`.
    """
    src = resolve_checkpoint(src_path)
    model, codec, meta = load_model(src)
    meta = {**meta, "exported_from": str(src)}
    return save_model(dst_dir, model, codec, meta, dtype=dtype, overwrite=overwrite)
