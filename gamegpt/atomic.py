"""Atomic files and directories: write to a temp entry beside the target, then rename it into place.

A reader (or a run resumed after a kill) sees the old file or the new one, never a half-written one. Every
writer in the package goes through here, so there is one temp-name scheme: `.tmp-<pid>-<n>-<name>` beside
the target, hidden, unique within this machine's running processes and threads, and ending like the target
(so writers that pick a format by the suffix, such as matplotlib's savefig or numpy's save, still do). A
kill can leave such an entry behind; nothing reads it, and `gamegpt.core.checkpoint.remove_temp_dirs` clears
them from a checkpoints directory.

    write_text_atomic(path, text)          # UTF-8
    write_json_atomic(path, data)          # indented JSON and a newline
    with atomic_path(path) as tmp: ...     # any writer that wants a path (savefig, RecordWriter, a binary handle)
    with atomic_directory(path) as tmp: ...  # a directory built whole (checkpoints, token shards)

This module imports nothing of the package, so every layer may use it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

TEMP_PREFIX = ".tmp-"
_numbers = itertools.count()  # next() on it is atomic under the GIL: threads get distinct names


def temp_path(path: str | os.PathLike[str]) -> Path:
    """A fresh temp name beside `path` (`.tmp-<pid>-<n>-<name>`); nothing is created."""
    path = Path(path)
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{next(_numbers)}-{path.name}")


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename into it) to disk; silently nothing where the OS cannot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temp path beside `path` for the block to write a file to (parent directories are made first).
    When the block ends normally, that file is synced to disk and renamed onto `path`; when it raises,
    the temp file is removed and `path` is left as it was. The block must create the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
        fsync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)  # only there when the block or the rename failed


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write `data` as indented JSON and a newline to `path` atomically (see `atomic_path`)."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


@contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A new, empty temp directory beside `path` for the block to fill (parent directories are made first).
    When the block ends normally, the directory is synced and renamed to `path`; an existing `path` is
    renamed aside first and deleted after, so `path` is the old directory or the new one, never a mix.
    When the block raises, the temp directory is deleted and `path` is left as it was. The block should
    sync the files it writes (a directory's sync covers its entries, not their contents)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    if tmp.exists():  # left by a killed process that had this pid
        shutil.rmtree(tmp)
    tmp.mkdir()
    aside: Path | None = None
    try:
        yield tmp
        fsync_directory(tmp)
        if path.exists():
            aside = temp_path(path)
            os.rename(path, aside)
        os.rename(tmp, path)
        fsync_directory(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None and not path.exists():
            os.rename(aside, path)  # the new one failed to take its place: the old one returns
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
