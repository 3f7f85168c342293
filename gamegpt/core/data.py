"""Token shards: games packed into fixed-length blocks, stored as raw numpy arrays plus `meta.json`.

Layout of a data directory:

    train.bin   raw uint8/uint16 array, shape (n_blocks["train"], block_len), C order
    val.bin     the same for the held-out games
    meta.json   {"codec", "vocab_size", "block_len", "dtype", "n_blocks", "n_games", "n_tokens", ...}

Packing follows Karvonen's ChessGPT: every block starts with the first token of a game, games follow one
another, the game that does not fit is cut at the block end (the rest of it is dropped) and the next game
starts the next block. A game longer than a block is truncated. The last, partly filled block is dropped.

The held-out split is by whole game: a game goes to val when a seeded hash of its number in the stream
falls below `val_fraction` (streaming, reproducible). With `val_by_content=True` the hash is of the game's
tokens instead, so identical games (common with deterministic players) always land in the same split and
no val game was seen in training; a data set of few distinct games may then leave val empty.

Samples instead of games (a codec with `sample_len`, such as a position followed by its move): each game's
tokens are its samples of `sample_len` tokens one after the other, and each sample is a block of its own
(`block_len == sample_len`), so no sample attends to another; the split is still by game. meta then says
`"sample_len"`. A codec that scores only some targets adds `"scored_targets": {"after": a, "below": b}` to
meta: `get_batch` then sets every target to -1 (ignored by the loss) except one that follows the token `a`
and is below `b`. Without these keys (every other codec) the shards and batches are as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from gamegpt.atomic import atomic_directory
from gamegpt.errors import UserError

SPLITS = ("train", "val")
META_FILE = "meta.json"
FORMAT = "gamegpt-shards"
VERSION = 1
_FLUSH_BLOCKS = 4096


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """uint8 when every token fits in a byte (vocab_size <= 256), else uint16 (vocab_size <= 65536)."""
    if vocab_size <= 256:
        return np.dtype(np.uint8)
    if vocab_size <= 65536:
        return np.dtype(np.uint16)
    raise UserError(f"vocab_size {vocab_size} is too large for uint16 token shards (max 65536)")


def _is_val_game(number: int, tokens: np.ndarray, seed: int, val_fraction: float, by_content: bool) -> bool:
    """Seeded choice of the split of game `number` (or, `by_content`, of every game with these tokens)."""
    material = tokens.astype("<u4").tobytes() if by_content else number.to_bytes(8, "little")
    digest = hashlib.blake2b(material, digest_size=8, key=(seed % 2**64).to_bytes(8, "little"))
    return int.from_bytes(digest.digest(), "little") / 2.0**64 < val_fraction


class _BlockPacker:
    """Packs the games of one split into blocks and appends full blocks to an open file."""

    def __init__(self, file: BinaryIO, block_len: int, dtype: np.dtype) -> None:
        self.file = file
        self.block_len = block_len
        self.dtype = dtype
        self.block = np.zeros(block_len, dtype=dtype)
        self.fill = 0  # tokens in the current block
        self.pending: list[np.ndarray] = []
        self.n_blocks = 0
        self.n_games = 0  # games with at least one token in a written block
        self._games_in_block = 0

    def add(self, tokens: np.ndarray) -> None:
        room = self.block_len - self.fill
        take = min(room, len(tokens))
        self.block[self.fill : self.fill + take] = tokens[:take]
        self.fill += take
        self._games_in_block += 1
        if self.fill == self.block_len:
            self._finish_block()

    def add_samples(self, samples: np.ndarray) -> None:
        """One game's samples, shape (n, block_len): each is a block of its own; together they count as one game.
        Only for a packer that holds no part of a block (one that has only been given samples)."""
        assert self.fill == 0, "samples and packed games are not mixed in one packer"
        for sample in samples:
            self.block[:] = sample
            self._finish_block()
        self.n_games += len(samples) > 0

    def _finish_block(self) -> None:
        self.pending.append(self.block.copy())
        self.n_blocks += 1
        self.n_games += self._games_in_block
        self._games_in_block = 0
        self.fill = 0
        if len(self.pending) >= _FLUSH_BLOCKS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.file.write(np.stack(self.pending).tobytes())
            self.pending = []


def write_shards(
    games: Iterable[list[int]],
    out_dir: str | os.PathLike[str],
    *,
    block_len: int,
    vocab_size: int,
    codec: dict[str, Any],
    val_fraction: float = 0.05,
    seed: int = 0,
    val_by_content: bool = False,
    overwrite: bool = False,
    sample_len: int | None = None,
    scored_targets: dict[str, int] | None = None,
    extra_meta: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Pack `games` (token lists, each starting with its bos token) into `out_dir`; return the meta dict.

    With `sample_len`, each game is its samples of that many tokens, and each becomes a block of its own
    (block_len must equal sample_len: UserError otherwise); `scored_targets` is written to meta for `get_batch`
    (see the module docstring). ValueError for a game that is not whole samples (a codec's bug).
    `extra_meta`, called once `games` is read, gives more entries for meta (e.g. counts its producer kept).

    About `val_fraction` of the games (a seeded choice of whole games) go to the val split; see the module
    docstring for `val_by_content`. `games` is read once, as a stream. The directory appears complete or not at all (it is built in a temp
    directory beside `out_dir` and renamed). Raises UserError if `out_dir` exists (unless `overwrite`), if a
    token is outside [0, vocab_size), or if a split would get no block (too few games).
    """
    out = Path(out_dir)
    if block_len < 2:
        raise UserError(f"block_len must be at least 2, got {block_len}")
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if sample_len is not None and block_len != sample_len:
        raise UserError(f"the codec writes samples of {sample_len} tokens, each a block of its own: "
                        f"block_len must be {sample_len} (or left out), got {block_len}")
    if out.exists() and not overwrite:
        raise UserError(f"{out}: already exists (choose another directory or pass overwrite)")
    dtype = dtype_for_vocab(vocab_size)
    with atomic_directory(out) as tmp:
        n_games_read = {split: 0 for split in SPLITS}
        tokens_read = {split: 0 for split in SPLITS}
        with open(tmp / "train.bin", "wb") as train_file, open(tmp / "val.bin", "wb") as val_file:
            packers = {
                "train": _BlockPacker(train_file, block_len, dtype),
                "val": _BlockPacker(val_file, block_len, dtype),
            }
            for number, game in enumerate(games):
                tokens = np.asarray(game, dtype=np.int64)
                if tokens.ndim != 1:
                    raise UserError(f"game {number}: expected a flat list of tokens")
                if len(tokens) == 0:
                    continue
                low, high = int(tokens.min()), int(tokens.max())
                if low < 0 or high >= vocab_size:
                    raise UserError(f"game {number}: token {low if low < 0 else high} is outside [0, {vocab_size})")
                split = "val" if _is_val_game(number, tokens, seed, val_fraction, val_by_content) else "train"
                n_games_read[split] += 1
                tokens_read[split] += len(tokens)
                if sample_len is None:
                    packers[split].add(tokens)
                elif len(tokens) % sample_len:
                    raise ValueError(f"game {number}: {len(tokens)} tokens are not whole samples of {sample_len}")
                else:
                    packers[split].add_samples(tokens.reshape(-1, sample_len))
            for split, packer in packers.items():
                packer.flush()
            for file in (train_file, val_file):
                file.flush()
                os.fsync(file.fileno())
        for split in SPLITS:
            if packers[split].n_blocks == 0:
                raise UserError(
                    f"too few games for the {split} split: {n_games_read[split]} game(s), "
                    f"{tokens_read[split]} token(s) do not fill one block of {block_len} tokens "
                    f"(give more games{' or a larger val_fraction' if split == 'val' else ''})"
                )
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "codec": codec,
            "vocab_size": vocab_size,
            "block_len": block_len,
            "dtype": dtype.name,
            "n_blocks": {split: packers[split].n_blocks for split in SPLITS},
            "n_games": {split: packers[split].n_games for split in SPLITS},
            "n_tokens": {split: packers[split].n_blocks * block_len for split in SPLITS},
            "n_games_read": n_games_read,
            "val_fraction": val_fraction,
            "val_split_by": "content" if val_by_content else "game",
            "seed": seed,
        }
        if sample_len is not None:
            meta["sample_len"] = sample_len
        if scored_targets is not None:
            meta["scored_targets"] = dict(scored_targets)
        if extra_meta is not None:
            meta.update(extra_meta())
        _write_json(tmp / META_FILE, meta)
    return meta


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def read_meta(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The meta dict of a data directory; UserError (one line) if it is missing or malformed."""
    path = Path(data_dir) / META_FILE
    if not Path(data_dir).is_dir():
        raise UserError(f"{data_dir}: not a data directory (it does not exist)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing; {data_dir} is not a token-shard directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: malformed meta (not a JSON object)")
    try:
        block_len = meta["block_len"]
        vocab_size = meta["vocab_size"]
        ok = (
            isinstance(block_len, int)
            and block_len >= 2
            and isinstance(vocab_size, int)
            and vocab_size >= 1
            and meta["dtype"] == dtype_for_vocab(vocab_size).name
            and isinstance(meta["codec"], dict)
            and all(isinstance(meta["n_blocks"][s], int) and meta["n_blocks"][s] >= 0 for s in SPLITS)
            and ("scored_targets" not in meta or _is_scored_targets(meta["scored_targets"]))
        )
    except (KeyError, TypeError, UserError):
        ok = False
    if not ok:
        raise UserError(f"{path}: malformed meta (needs codec, vocab_size, block_len, dtype, n_blocks; "
                        "scored_targets, if any, as {\"after\": int, \"below\": int})")
    return meta


def _is_scored_targets(value: Any) -> bool:
    """Whether `value` is the meta's `scored_targets` form: {"after": int, "below": int}."""
    return (isinstance(value, dict) and set(value) == {"after", "below"}
            and all(isinstance(value[key], int) and not isinstance(value[key], bool) for key in value))


def open_split(data_dir: str | os.PathLike[str], split: str) -> np.memmap:
    """The blocks of a split as a read-only memmap of shape (n_blocks, block_len); UserError if unusable."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    meta = read_meta(data_dir)
    path = Path(data_dir) / f"{split}.bin"
    dtype = np.dtype(meta["dtype"])
    shape = (meta["n_blocks"][split], meta["block_len"])
    expected = shape[0] * shape[1] * dtype.itemsize
    try:
        size = path.stat().st_size
    except OSError:
        raise UserError(f"{path}: missing") from None
    if size != expected:
        raise UserError(f"{path}: {size} bytes, expected {expected} for {shape[0]} blocks of {shape[1]} tokens")
    if shape[0] == 0:
        raise UserError(f"{path}: the {split} split holds no blocks")
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


def get_batch(blocks: np.ndarray, indices: np.ndarray, device: str | torch.device,
              scored_targets: Mapping[str, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets for the blocks at `indices`: x = block[:-1], y = block[1:], both int64 (B, block_len-1).

    The model's block_size is therefore block_len - 1. With `scored_targets` (the meta's, if it has them), every
    target but one that follows the token `after` and is below `below` is -1, which the loss ignores.
    """
    rows = torch.from_numpy(np.asarray(blocks[indices], dtype=np.int64))
    x, y = rows[:, :-1].contiguous(), rows[:, 1:].contiguous()
    if scored_targets is not None:
        scored = (x == scored_targets["after"]) & (y < scored_targets["below"])
        y = y.masked_fill(~scored, -1)
    device = torch.device(device)
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x, y


class BlockLabels:
    """Per-token labels of `get_batch`'s inputs (x = block[:-1]) by a codec's labeller: `board_targets` (int8
    (T, 64), fill -1), `legal_targets` (bool (T, n moves), fill False) or `value_targets` (float16 (T, n moves),
    fill 0). Each block is labelled once and kept (its entries that differ from `fill`, or the whole array where
    that is smaller), so a later epoch pays no python-chess time; the store stops growing at `max_bytes` (blocks
    beyond are labelled anew each time)."""

    def __init__(self, labeller: Callable[[Sequence[int]], np.ndarray], fill: float | int | bool,
                 max_bytes: int = 2 * 2**30) -> None:
        self.labeller = labeller
        self.fill = fill
        self.max_bytes = max_bytes
        self.stored_bytes = 0
        self._store: dict[int, np.ndarray | tuple[tuple[int, ...], np.dtype, np.ndarray, np.ndarray]] = {}

    def batch(self, blocks: np.ndarray, indices: np.ndarray, device: str | torch.device) -> torch.Tensor:
        """The labels of the blocks at `indices`, stacked: (B, block_len-1, ...) in the labeller's dtype."""
        return labels_to_device(np.stack([self._labels(blocks, int(index)) for index in indices]), device)

    def _labels(self, blocks: np.ndarray, index: int) -> np.ndarray:
        kept = self._store.get(index)
        if isinstance(kept, np.ndarray):
            return kept
        if kept is not None:
            shape, dtype, where, values = kept
            labels = np.full(shape, self.fill, dtype=dtype)
            labels.reshape(-1)[where] = values
            return labels
        labels = self.labeller(np.asarray(blocks[index]))[:-1]
        where, values = sparse_entries(labels, self.fill)
        if len(where) * (4 + labels.itemsize) < labels.nbytes:
            sparse = (labels.shape, labels.dtype, where, values)
            size = where.nbytes + values.nbytes
            if self.stored_bytes + size <= self.max_bytes:
                self._store[index], self.stored_bytes = sparse, self.stored_bytes + size
        elif self.stored_bytes + labels.nbytes <= self.max_bytes:
            self._store[index], self.stored_bytes = labels, self.stored_bytes + labels.nbytes
        return labels


def sparse_entries(labels: np.ndarray, fill: Any) -> tuple[np.ndarray, np.ndarray]:
    """(flat int32 indices, values) of the entries of `labels` that differ from `fill`."""
    where = np.flatnonzero(labels.reshape(-1) != fill).astype(np.int32)
    return where, labels.reshape(-1)[where]


def labels_to_device(rows: np.ndarray, device: str | torch.device) -> torch.Tensor:
    """A batch of labels as a tensor on `device` (pinned and copied without blocking for CUDA)."""
    tensor = torch.from_numpy(rows)
    device = torch.device(device)
    return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor
