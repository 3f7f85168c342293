"""Label every train block of a shard directory once, in parallel, for `gamegpt train` to read from disk
(`gamegpt data labels`; the format and why: `gamegpt.core.stored_labels`).

Worker processes label chunks of `chunk_blocks` blocks with the codec's method (python-chess); the main
process writes the chunks in order into a temp directory that becomes `labels-KIND/` only when every block is
labelled, so a killed run leaves the shards as they were (and labels again from the start).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from gamegpt.arena.runs import exit_with_parent
from gamegpt.atomic import atomic_directory, write_json_atomic
from gamegpt.core.data import open_split, read_meta, sparse_entries
from gamegpt.core.stored_labels import FORMAT, LABEL_KINDS, SETTINGS_FILE, VERSION, labels_dir, meta_digest
from gamegpt.errors import UserError
from gamegpt.games import codec_from_spec

Chunk = tuple[list[int], np.ndarray, np.ndarray]
"""(entries per block, their flat indices, their values) of consecutive blocks."""


def write_stored_labels(data_dir: str | os.PathLike[str], kind: str, *, workers: int = 1, chunk_blocks: int = 64,
                        progress: bool = False) -> Path:
    """Label every train block of the shards in `data_dir` with the codec's labeller of `kind` (`LABEL_KINDS`)
    into `labels-KIND/` (replacing labels made before); returns that directory. UserError for an unknown
    kind or a codec without that labeller."""
    if kind not in LABEL_KINDS:
        raise UserError(f"unknown label kind {kind!r}; choose from {', '.join(LABEL_KINDS)}")
    if workers < 1 or chunk_blocks < 1:
        raise ValueError(f"workers ({workers}) and chunk_blocks ({chunk_blocks}) must be at least 1")
    meta = read_meta(data_dir)
    method, fill = LABEL_KINDS[kind]
    labeller = _labeller(meta["codec"], method)
    blocks = open_split(data_dir, "train")
    n_blocks, block_len = blocks.shape
    sample = labeller(np.asarray(blocks[0]))[:-1]
    starts = list(range(0, n_blocks, chunk_blocks))
    tasks = [(str(data_dir), method, fill, lo, min(lo + chunk_blocks, n_blocks)) for lo in starts]
    offsets = [0]
    with atomic_directory(labels_dir(data_dir, kind)) as tmp:
        with (tmp / "where.bin").open("wb") as where_file, (tmp / "values.bin").open("wb") as values_file, \
                tqdm(total=n_blocks, unit="block", disable=not progress, desc=f"labels {kind}") as bar:
            for sizes, where, values in _label_chunks(tasks, workers):
                where_file.write(where.astype("<i4").tobytes())
                values_file.write(values.astype(sample.dtype).tobytes())
                for size in sizes:
                    offsets.append(offsets[-1] + size)
                bar.update(len(sizes))
            with (tmp / "offsets.npy").open("wb") as offsets_file:
                np.save(offsets_file, np.asarray(offsets, dtype=np.int64))
                for handle in (where_file, values_file, offsets_file):
                    handle.flush()
                    os.fsync(handle.fileno())
        write_json_atomic(tmp / SETTINGS_FILE, {
            "format": FORMAT, "version": VERSION, "kind": kind, "method": method, "fill": fill,
            "dtype": sample.dtype.name, "row_shape": list(sample.shape), "n_blocks": n_blocks,
            "block_len": block_len, "meta_digest": meta_digest(data_dir), "codec": meta["codec"]})
    return labels_dir(data_dir, kind)


def _labeller(codec_spec: dict[str, Any], method: str) -> Callable[[Sequence[int]], np.ndarray]:
    labeller = getattr(codec_from_spec(codec_spec), method, None)
    if labeller is None:
        raise UserError(f"codec {codec_spec.get('name')!r} has no {method} (labels need one token per move: "
                        "chess-uci-moves or chess-position-move)")
    return labeller


def _label_chunks(tasks: list[tuple[str, str, Any, int, int]], workers: int) -> Iterator[Chunk]:
    """The chunks' labels in order: here with one worker, else from a pool of spawned processes."""
    if workers == 1:
        yield from map(_label_chunk, tasks)
        return
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_start_worker) as pool:
        yield from pool.imap(_label_chunk, tasks)


def _start_worker() -> None:
    threading.Thread(target=exit_with_parent, daemon=True).start()


_LABELLERS: dict[tuple[str, str], tuple[np.ndarray, Callable[[Sequence[int]], np.ndarray]]] = {}


def _label_chunk(task: tuple[str, str, Any, int, int]) -> Chunk:
    """Labels of blocks lo..hi of the train split of `data_dir` (a worker keeps its codec and memmap)."""
    data_dir, method, fill, lo, hi = task
    if (data_dir, method) not in _LABELLERS:
        _LABELLERS[(data_dir, method)] = (open_split(data_dir, "train"),
                                         _labeller(read_meta(data_dir)["codec"], method))
    blocks, labeller = _LABELLERS[(data_dir, method)]
    sizes, wheres, values = [], [], []
    for index in range(lo, hi):
        where, value = sparse_entries(labeller(np.asarray(blocks[index]))[:-1], fill)
        sizes.append(len(where))
        wheres.append(where)
        values.append(value)
    return sizes, np.concatenate(wheres), np.concatenate(values)
