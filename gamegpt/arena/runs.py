"""Resumable runs of indexed games (self-play, tournaments): worker processes, completed indices, atomic files.

A run is a numbered list of games, each fully determined by its index and the run's settings, whose
records are appended to a JSONL file as they finish. A run killed at any point continues by playing the
indices its records file lacks (`completed_indices`), so no game is played twice or lost. The settings
live in a summary JSON beside the records, and a re-run with other settings is refused (`check_settings`).

`indexed_records` plays the pending indices, in this process or in worker processes (spawned, each with
its own players and engine processes; a worker ends itself when the main process dies, even by SIGKILL,
and its engines then read end-of-file and quit).
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue as queue_module
import signal
import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

from gamegpt.errors import UserError
from gamegpt.arena.records import GameRecord


class IndexedGames(Protocol):
    """What a worker needs to play any game of a run by its index. Must pickle (it is sent to spawned
    workers): keep it a small frozen dataclass of settings, and build players in `open`."""

    def open(self) -> Any:
        """Per-process state (usually the players), built once per worker."""

    def play(self, state: Any, index: int) -> GameRecord:
        """Play game `index` with the state from `open`."""

    def close(self, state: Any) -> None:
        """Release the state (close engine processes)."""


def default_workers() -> int:
    """The CPUs this process may run on: the default number of worker processes."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file beside `path`, then rename it into place."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to a temp file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def check_settings(summary_path: Path, records_path: Path, settings: dict[str, Any]) -> str:
    """Refuse a records file made with other settings (UserError); return the run's creation date (ISO,
    UTC): today's for a new run, else the one in the summary."""
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    if not summary_path.exists():
        return today
    try:
        summary = json.loads(summary_path.read_text())
        previous = summary["settings"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{summary_path}: unreadable summary; move it away to start over") from None
    if previous != settings:
        raise UserError(f"{records_path} was made with other settings ({previous}); choose another --out")
    return str(summary.get("created") or today)


def completed_indices(existing: Iterable[GameRecord], n_games: int, records_path: Path, *,
                      run: str = "self-play run") -> set[int]:
    """The game indices in a records file, checked: each an int, none twice, all below `n_games`
    (UserError otherwise; `run` names the kind of run in the messages)."""
    counts: Counter[int] = Counter()
    for record in existing:
        index = record.index
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise UserError(f"{records_path}: a record has game index {index!r}; not the records of a {run}")
        counts[index] += 1
    for index, count in counts.items():
        if count > 1:
            raise UserError(f"{records_path}: game {index} is in the file {count} times; not one {run}")
    if counts and max(counts) >= n_games:
        raise UserError(f"{records_path} already holds game {max(counts)}; ask for at least {max(counts) + 1} "
                        f"games or choose another --out")
    return set(counts)


@contextmanager
def indexed_records(job: IndexedGames, pending: Sequence[int], workers: int, *, label: str = "self-play",
                    local_state: Any = None) -> Iterator[Iterator[GameRecord]]:
    """The records of the `pending` games as they finish: in this process (in index order) when `workers`
    is 1, with `local_state` (else `job.open()`, closed at the end), or from `workers` spawned processes
    (in finishing order). Leaving the block ends the processes. A worker's exception is raised here; a
    worker that dies gives a UserError naming it (`label` names the run in messages)."""
    if workers == 1 or not pending:
        state = job.open() if local_state is None and pending else local_state
        try:
            yield (job.play(state, index) for index in pending)
        finally:
            if local_state is None and state is not None:
                job.close(state)
        return
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch or threads are loaded
    tasks: Any = context.Queue()
    results: Any = context.Queue()
    for index in pending:
        tasks.put(index)
    for _ in range(workers):
        tasks.put(None)  # one stop sign per worker
    name = label.replace(" ", "").replace("-", "")
    processes = [context.Process(target=_worker, args=(job, tasks, results), name=f"{name}-worker-{n}", daemon=True)
                 for n in range(workers)]
    for process in processes:
        process.start()
    try:
        yield _collect(results, processes, len(pending), label)
        for process in processes:
            process.join(timeout=10)  # they close their engines (quit) on the way out
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
        for queue in (tasks, results):
            queue.cancel_join_thread()
            queue.close()


def _collect(results: Any, processes: list[Any], expected: int, label: str) -> Iterator[GameRecord]:
    """`expected` records from the workers' result queue. Raises a worker's error, or UserError when a
    worker died (killed, out of memory) or all ended with games missing, instead of waiting forever."""
    received = 0
    while received < expected:
        dead = [p for p in processes if p.exitcode not in (None, 0)]
        if dead:
            raise UserError(f"{label} worker {dead[0].name} died (exit code {dead[0].exitcode}); "
                            "re-run the same command to continue")
        try:
            kind, payload = results.get(timeout=0.5)
        except queue_module.Empty:
            if all(p.exitcode is not None for p in processes):
                raise UserError(f"{label} workers ended with {expected - received} games unplayed; "
                                "re-run the same command to continue") from None
            continue
        if kind == "error":
            raise payload
        received += 1
        yield payload


def _worker(job: IndexedGames, tasks: Any, results: Any) -> None:
    """A worker process: open the job's state once, then play the game indices from `tasks` until a None,
    putting ("record", GameRecord) on `results`, or ("error", exception) and stopping."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    state: Any = None
    try:
        state = job.open()
        for index in iter(tasks.get, None):  # ends at this worker's stop sign
            results.put(("record", job.play(state, index)))
    except Exception as exc:  # noqa: BLE001 - handed to the main process, which raises it
        results.put(("error", _picklable(exc)))
    finally:
        if state is not None:
            job.close(state)


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.dumps(exc)
        return exc
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _exit_with_parent() -> None:
    """End this worker when the main process dies (even by SIGKILL); its engines then read end-of-file
    on their stdin and quit. Without this, an orphaned worker would wait for tasks forever."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    multiprocessing.connection.wait([parent.sentinel])
    os._exit(1)
