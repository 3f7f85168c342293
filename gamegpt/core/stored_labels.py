"""Labels of the auxiliary losses, computed once for a shard directory and read from disk by training.

`BlockLabels` labels each block in the training process the first time a batch needs it: python-chess time on
the training's own cores (about a quarter of a CPU step of a 4x256 model with the legal-move loss), paid again by
every run on the same shards and by every `--resume`, and on a GPU it is most of the step. `gamegpt data labels`
(`gamegpt.selfplay.labels.write_stored_labels`) labels every train block once, with worker processes, into
`DATA_DIR/labels-KIND/`; `gamegpt train` then reads them (`load_stored_labels`): the same labels, no labelling.

Kinds (`LABEL_KINDS`): `legal` (the codec's `legal_targets`, for `legal_loss_weight`) and `board` (its
`board_targets`, for `board_head`). The teacher's `value_targets` depend on a table and a temperature, so they
are not stored here.

Layout of `labels-KIND/`:

    labels.json   {"format", "version", "kind", "method", "fill", "dtype", "row_shape", "n_blocks", "block_len",
                   "meta_digest", "codec"}
    offsets.npy   int64 (n_blocks + 1): block b's entries are where/values[offsets[b]:offsets[b + 1]]
    where.bin     int32, flat indices into the block's label array (block_len - 1, *row_shape) of entries != fill
    values.bin    those entries, in `dtype`

`meta_digest` is the BLAKE2b of the shards' `meta.json`: labels of other shards are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gamegpt.core.data import META_FILE, labels_to_device
from gamegpt.errors import UserError

FORMAT = "gamegpt-stored-labels"
VERSION = 1
SETTINGS_FILE = "labels.json"
LABEL_KINDS: dict[str, tuple[str, Any]] = {"legal": ("legal_targets", False), "board": ("board_targets", -1)}
"""kind -> (the codec's labelling method, the fill value of an unlabelled entry)."""


def labels_dir(data_dir: str | os.PathLike[str], kind: str) -> Path:
    """Where the stored labels of `kind` of the shards in `data_dir` live."""
    return Path(data_dir) / f"labels-{kind}"


def meta_digest(data_dir: str | os.PathLike[str]) -> str:
    """The BLAKE2b (hex) of the shards' meta.json, which names the shards the labels belong to."""
    return hashlib.blake2b((Path(data_dir) / META_FILE).read_bytes(), digest_size=16).hexdigest()


class StoredLabels:
    """Labels of `kind` read from `labels-KIND/` (see the module docstring); `batch` as `BlockLabels.batch`."""

    def __init__(self, directory: Path, settings: dict[str, Any]) -> None:
        self.fill = settings["fill"]
        self.dtype = np.dtype(settings["dtype"])
        self.n_blocks: int = settings["n_blocks"]
        self.row_shape: tuple[int, ...] = tuple(settings["row_shape"])
        self.offsets = np.load(directory / "offsets.npy", allow_pickle=False)
        total = int(self.offsets[-1]) if len(self.offsets) else -1
        if self.offsets.shape != (self.n_blocks + 1,) or self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets.npy does not match labels.json")
        self.where = _read_array(directory / "where.bin", np.dtype(np.int32), total)
        self.values = _read_array(directory / "values.bin", self.dtype, total)

    def batch(self, blocks: np.ndarray, indices: np.ndarray, device: str | torch.device) -> torch.Tensor:
        """The labels of the train blocks at `indices`, stacked: (B, block_len - 1, *row_shape). `blocks` is
        not read (the labels are of the shards' train split); it keeps `BlockLabels.batch`'s signature."""
        rows = np.full((len(indices), *self.row_shape), self.fill, dtype=self.dtype)
        for row, index in zip(rows, indices):
            lo, hi = int(self.offsets[index]), int(self.offsets[index + 1])
            row.reshape(-1)[self.where[lo:hi]] = self.values[lo:hi]
        return labels_to_device(rows, device)


def _read_array(path: Path, dtype: np.dtype, count: int) -> np.ndarray:
    """A raw array file of exactly `count` items of `dtype`, memory-mapped; ValueError otherwise."""
    size = path.stat().st_size
    if size != count * dtype.itemsize:
        raise ValueError(f"{path.name} holds {size} bytes, expected {count} entries of {dtype.name}")
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,)) if count else np.zeros(0, dtype=dtype)


def load_stored_labels(data_dir: str | os.PathLike[str], kind: str, method: str, *, n_blocks: int,
                       block_len: int) -> StoredLabels | None:
    """The stored labels of `kind` of the shards in `data_dir` (made by the codec's `method`), or None when
    there are none. UserError (one line, naming the fix) for labels of other shards or a damaged directory."""
    directory = labels_dir(data_dir, kind)
    if not directory.is_dir():
        return None
    remake = f"run `gamegpt data labels {data_dir} --kind {kind}` again, or delete {directory}"
    try:
        settings = json.loads((directory / SETTINGS_FILE).read_text(encoding="utf-8"))
        if not isinstance(settings, dict) or settings.get("format") != FORMAT or settings.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} version {VERSION} directory")
        if settings.get("meta_digest") != meta_digest(data_dir):
            raise UserError(f"{directory}: labels of other shards (their meta.json differs); {remake}")
        if (settings.get("kind"), settings.get("method"), settings.get("n_blocks")) != (kind, method, n_blocks):
            raise ValueError(f"labels of {settings.get('kind')!r} for {settings.get('n_blocks')} blocks, "
                             f"expected {kind!r} for {n_blocks}")
        stored = StoredLabels(directory, settings)
        if stored.row_shape[0] != block_len - 1:
            raise ValueError(f"rows of {stored.row_shape[0]} tokens, expected {block_len - 1}")
        return stored
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{directory}: damaged stored labels ({e}); {remake}") from None
