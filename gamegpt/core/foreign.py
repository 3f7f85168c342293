"""Karvonen's nanoGPT chess checkpoints (`ckpt.pt` + `meta.pkl`) loaded into our GPT, running no pickled code.

Karvonen's ChessGPT models (his nanoGPT fork, chess_llm_interpretability, chess_gpt_eval) are nanoGPT
checkpoints: `ckpt.pt` is a `torch.save` of {"model": state dict, "model_args": {...}, "iter_num", ...} and
`meta.pkl` a pickled {"vocab_size", "itos", "stoi"} for the 32-character PGN vocabulary. Our GPT has
nanoGPT's architecture and parameter names, so the weights load one to one.

Safety: `ckpt.pt` is read with `torch.load(weights_only=True)` (tensors and plain containers only) and
`meta.pkl` with an unpickler that resolves no class or function at all, so a file that carries code (a
`__reduce__` payload) is refused before anything runs.

A missing `meta.pkl` is an error, not a guess: the vocabulary is what gives the tokens their meaning, and
a nanoGPT checkpoint with 32 tokens over other characters would otherwise load silently and play nonsense.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from gamegpt.core.model import GPT, GPTConfig
from gamegpt.errors import UserError
from gamegpt.games.chess_codecs import PGN_VOCABULARY, PgnCharCodec

CKPT_FILE = "ckpt.pt"
META_FILE = "meta.pkl"
_COMPILE_PREFIX = "_orig_mod."
_ATTENTION_MASK = re.compile(r"^transformer\.h\.\d+\.attn\.bias$")
"""Old nanoGPT (without flash attention) saved its causal mask as a buffer `attn.bias`; we ignore it."""
_MODEL_ARGS = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "bias")


def find_nanogpt_checkpoint(path: str | os.PathLike[str]) -> tuple[Path, Path] | None:
    """(ckpt, meta.pkl) if `path` names a nanoGPT checkpoint, else None (e.g. one of our safetensors dirs).

    `path` is a `.pt` file (meta.pkl is looked for beside it: Karvonen ships several `*.pt` with one
    meta.pkl) or a directory holding `ckpt.pt`. A path that does not exist gives None. Raises UserError
    when the checkpoint is there but meta.pkl is not, or when a directory holds meta.pkl and `.pt` files
    but no `ckpt.pt` (the user must say which one).
    """
    p = Path(path)
    if p.is_file() and p.suffix == ".pt":
        ckpt = p
    elif p.is_dir() and (p / CKPT_FILE).is_file():
        ckpt = p / CKPT_FILE
    elif p.is_dir() and (p / META_FILE).is_file() and any(p.glob("*.pt")):
        names = ", ".join(sorted(f.name for f in p.glob("*.pt"))[:3])
        raise UserError(f"{p}: holds {META_FILE} but no {CKPT_FILE}; name one of its .pt files ({names})")
    else:
        return None
    meta = ckpt.parent / META_FILE
    if not meta.is_file():
        raise UserError(f"{ckpt}: nanoGPT checkpoint without {META_FILE} beside it (it holds the vocabulary; "
                        f"copy the {META_FILE} that came with the model next to it)")
    return ckpt, meta


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles only what the pickle protocol builds itself (dict, list, tuple, str, int, float, ...)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (only plain data is allowed)")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused a persistent id (only plain data is allowed)")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _read_meta(meta_path: Path) -> dict[Any, Any]:
    try:
        data = meta_path.read_bytes()
    except OSError as e:
        raise UserError(f"{meta_path}: unreadable ({_first_line(e)})") from None
    try:
        meta = _PlainDataUnpickler(io.BytesIO(data)).load()
    except Exception as e:  # noqa: BLE001 -- bad input raises many types (EOFError, ValueError, ...)
        raise UserError(f"{meta_path}: not a plain nanoGPT meta.pkl ({_first_line(e)})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{meta_path}: expected a dict, found {type(meta).__name__}")
    return meta


class _Absent:
    def __repr__(self) -> str:
        return "absent"


def _first_difference(name: str, found: dict[Any, Any], expected: dict[Any, Any]) -> str | None:
    """`name[key] is X, expected Y` for the first key (in repr order) where the dicts differ; None if equal."""
    absent = _Absent()
    for key in sorted(set(found) | set(expected), key=repr):
        have, want = found.get(key, absent), expected.get(key, absent)
        if type(have) is not type(want) or have != want:
            return f"{name}[{key!r}] is {have!r}, expected {want!r}"
    return None


def _vocabulary_difference(meta: dict[Any, Any]) -> str | None:
    """What in meta's itos/stoi/vocab_size differs from PGN_VOCABULARY (index = position); None if nothing."""
    stoi, itos = meta.get("stoi"), meta.get("itos")
    if not isinstance(stoi, dict) or not isinstance(itos, dict):
        return "no stoi/itos dicts"
    difference = _first_difference("itos", itos, dict(enumerate(PGN_VOCABULARY)))
    difference = difference or _first_difference("stoi", stoi, {c: i for i, c in enumerate(PGN_VOCABULARY)})
    if not difference and meta.get("vocab_size", len(PGN_VOCABULARY)) != len(PGN_VOCABULARY):
        difference = f"vocab_size is {meta['vocab_size']!r}, expected {len(PGN_VOCABULARY)}"
    return difference


def _read_ckpt(ckpt_path: Path) -> dict[Any, Any]:
    try:  # on the CPU: the weights go into a CPU model, moved to the device once
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except OSError as e:
        raise UserError(f"{ckpt_path}: unreadable ({_first_line(e)})") from None
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        detail = f" (it needs {found.group(1)})" if found else ""
        message = f"refused: holds pickled objects other than tensors and plain data{detail}"
        raise UserError(f"{ckpt_path}: {message}") from None
    except Exception as e:  # noqa: BLE001 -- truncated zip (RuntimeError), not a torch file (KeyError, EOFError), ...
        raise UserError(f"{ckpt_path}: not a readable torch checkpoint ({_first_line(e)})") from None
    if not isinstance(checkpoint, dict):
        raise UserError(f"{ckpt_path}: expected a dict, found {type(checkpoint).__name__}")
    for key in ("model", "model_args"):
        if not isinstance(checkpoint.get(key), dict):
            raise UserError(f"{ckpt_path}: not a nanoGPT checkpoint (no {key!r} dict)")
    return checkpoint


def _model_config(ckpt_path: Path, model_args: dict[Any, Any]) -> GPTConfig:
    missing = [key for key in _MODEL_ARGS if key not in model_args]
    if missing:
        raise UserError(f"{ckpt_path}: model_args lacks {', '.join(missing)}")
    args = {key: model_args[key] for key in _MODEL_ARGS}
    args["dropout"] = model_args.get("dropout", 0.0)
    try:
        config = GPTConfig(**args)
    except UserError as e:
        raise UserError(f"{ckpt_path}: {e}") from None
    if config.vocab_size != len(PGN_VOCABULARY):
        raise UserError(f"{ckpt_path}: vocab_size is {config.vocab_size}, "
                        f"Karvonen's PGN vocabulary has {len(PGN_VOCABULARY)}")
    return config


def _state_dict(ckpt_path: Path, raw: dict[Any, Any], model: GPT) -> dict[str, torch.Tensor]:
    """nanoGPT's state dict under our names: `_orig_mod.` stripped, attention-mask buffers dropped, checked."""
    tensors: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        name = key[len(_COMPILE_PREFIX):] if isinstance(key, str) and key.startswith(_COMPILE_PREFIX) else key
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise UserError(f"{ckpt_path}: model entry {key!r} is not a named tensor")
        if not _ATTENTION_MASK.match(name):
            tensors[name] = value
    wanted = model.state_dict()
    tied = tensors.get("lm_head.weight")
    wte = tensors.get("transformer.wte.weight")
    if tied is not None and wte is not None and (tied.shape != wte.shape or not torch.equal(tied, wte)):
        raise UserError(f"{ckpt_path}: lm_head.weight differs from transformer.wte.weight (our GPT ties them)")
    if wte is not None:
        tensors["lm_head.weight"] = wte
    missing = sorted(set(wanted) - set(tensors))
    unexpected = sorted(set(tensors) - set(wanted))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise UserError(f"{ckpt_path}: weights do not match model_args ({detail})")
    for name, tensor in tensors.items():
        if tensor.shape != wanted[name].shape:
            raise UserError(f"{ckpt_path}: tensor {name} has shape {tuple(tensor.shape)}, "
                            f"model_args give {tuple(wanted[name].shape)}")
        if not tensor.is_floating_point():
            raise UserError(f"{ckpt_path}: tensor {name} has dtype {tensor.dtype}, expected a float type")
    return tensors


def _number(value: Any) -> Any:
    """A tensor or number as a plain int/float (JSON-ready); anything else as None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def load_nanogpt_checkpoint(
    ckpt_path: str | os.PathLike[str], meta_path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[GPT, dict[str, Any], dict[str, Any]]:
    """Load (model, codec spec, meta) from a nanoGPT `ckpt.pt` and its `meta.pkl`, like `checkpoint.load_model`.

    The model is float32, on `device`, in eval mode; the codec spec is `PgnCharCodec().spec()`; meta holds
    "format": "nanogpt", "source" (the ckpt path), "meta_source" (the meta.pkl path), "step" and
    "iter_num" (the same number: ours and nanoGPT's name) and "best_val_loss" (None where the file has
    none). Raises UserError (one line naming the file) for anything wrong: not a nanoGPT checkpoint,
    truncated, pickled code, weights that do not fit model_args, or a vocabulary other than Karvonen's.
    """
    ckpt, meta_file = Path(ckpt_path), Path(meta_path)
    difference = _vocabulary_difference(_read_meta(meta_file))
    if difference:
        raise UserError(f"{meta_file}: not Karvonen's 32-character PGN vocabulary ({difference})")
    checkpoint = _read_ckpt(ckpt)
    config = _model_config(ckpt, checkpoint["model_args"])
    model = GPT(config)
    model.load_state_dict(_state_dict(ckpt, checkpoint["model"], model), strict=True)
    model.to(device)
    model.eval()
    iter_num = _number(checkpoint.get("iter_num"))
    meta = {
        "format": "nanogpt",
        "source": str(ckpt),
        "meta_source": str(meta_file),
        "step": iter_num,
        "iter_num": iter_num,
        "best_val_loss": _number(checkpoint.get("best_val_loss")),
    }
    return model, PgnCharCodec().spec(), meta
