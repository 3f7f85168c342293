"""Resumable runs of indexed games (self-play, tournaments): the run loop, worker processes, completed indices.

A run is a numbered list of games, each fully determined by its index and the run's settings, whose
records are appended to a JSONL file as they finish. A run killed at any point continues by playing the
indices its records file lacks (`completed_indices`), so no game is played twice or lost. The settings
live in a summary JSON beside the records, and a re-run with other settings is refused (`check_settings`).

`play_run` is the loop every kind of run shares: check the settings, read the records, play the pending
games, keep the summary and the PGN export up to date; a `RunHooks` subclass says what differs (more
checks, the summary's content, the PGN's headers). `indexed_records` plays the pending indices, in this
process or in worker processes (spawned, each with its own players and engine processes; a worker ends
itself when the main process dies, even by SIGKILL, and its engines then read end-of-file and quit).
With `games_at_once` > 1, each process plays that many games at once in threads, each thread with players
of its own, and their model moves are decoded together in one forward pass per step
(`gamegpt.engine.batched`). With `ray` (an address, or "auto"), the games go to actors on a Ray cluster
instead (`gamegpt.arena.ray_runs`); the records land in the same file, in the same form.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from tqdm import tqdm

from gamegpt.atomic import write_json_atomic
from gamegpt.errors import UserError
from gamegpt.arena.records import GameRecord, RecordWriter, iter_records


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


def summary_path_for(records_path: Path) -> Path:
    """Where the summary JSON of a records file lives (`games.jsonl` → `games.summary.json`)."""
    return records_path.with_name(records_path.stem + ".summary.json")


def read_summary(summary_path: Path, records_path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of an earlier run with these `settings`, or None for a new run (no summary). Refuses
    (UserError) a summary that cannot be read or names other settings."""
    if not summary_path.exists():
        return None
    try:
        summary = json.loads(summary_path.read_text())
        previous = summary["settings"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{summary_path}: unreadable summary; move it away to start over") from None
    if previous != settings:
        raise UserError(f"{records_path} was made with other settings ({previous}); choose another --out")
    return dict(summary)


def creation_date(summary: dict[str, Any] | None) -> str:
    """The run's creation date (ISO, UTC): the one in its summary, else today's."""
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    return str((summary or {}).get("created") or today)


def study_settings(config: Any) -> dict[str, Any]:
    """A study config (a dataclass) as the JSON its experiment.json records: every field but `out_dir`,
    sequences as lists (so a re-run's settings compare equal to the file's)."""
    data = asdict(config)
    data.pop("out_dir", None)
    return {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in data.items()}


def check_settings(summary_path: Path, records_path: Path, settings: dict[str, Any]) -> str:
    """Refuse a records file made with other settings (UserError, see `read_summary`); return the run's
    creation date (ISO, UTC): today's for a new run, else the one in the summary."""
    return creation_date(read_summary(summary_path, records_path, settings))


def completed_indices(existing: Sequence[GameRecord], n_games: int, records_path: Path, *,
                      run: str = "self-play run",
                      check: Callable[[GameRecord], None] | None = None) -> set[int]:
    """The game indices in a records file, checked: each an int, none twice, all below `n_games`
    (UserError otherwise; `run` names the kind of run in the messages). `check`, when given, runs on
    each record once the first two checks pass and before the last, so it may refuse a record that is
    not of this run, or one beyond `n_games` with a message of its own."""
    counts: Counter[int] = Counter()
    for record in existing:
        index = record.index
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise UserError(f"{records_path}: a record has game index {index!r}; not the records of a {run}")
        counts[index] += 1
    for index, count in counts.items():
        if count > 1:
            raise UserError(f"{records_path}: game {index} is in the file {count} times; not one {run}")
    if check is not None:
        for record in existing:
            check(record)
    if counts and max(counts) >= n_games:
        raise UserError(f"{records_path} already holds game {max(counts)}; ask for at least {max(counts) + 1} "
                        f"games or choose another --out")
    return set(counts)


class RunHooks:
    """What differs between kinds of resumable run, for `play_run`: subclass it and override what the run
    needs. The defaults check nothing more, add nothing to the summary and export no PGN."""

    summary_changes_on_resume = False
    """Whether a resumed run's summary can differ before any game is played (a tournament given more
    openings schedules more games), so it is rewritten at the start; otherwise only a new run's is, and a
    finished run re-run leaves every file as it was."""

    def check_summary(self, previous: dict[str, Any]) -> None:
        """Refuse (UserError) the summary of an earlier run, whose settings match, for anything else."""

    def check_record(self, record: GameRecord) -> None:
        """Refuse (UserError) an existing record that is not of this run. Its index is a valid one, seen
        once, and may lie beyond the run's games (see `completed_indices`)."""

    def add(self, record: GameRecord) -> None:
        """Take one record of the run into account: each existing one first, then each new one once written."""

    def summary(self) -> dict[str, Any]:
        """The summary's entries after settings, created and games, from the records `add` was given."""
        return {}

    def export_pgn(self, created: str) -> Path | None:
        """Rebuild the PGN of the records file (which exists); return its path, or None for a run without one."""
        return None


@dataclass(frozen=True)
class RunOutcome:
    """What `play_run` left behind: the run's creation date (ISO), the games in its records file, the games
    this call played, and the PGN export (None where the hooks made none)."""

    created: str
    games_total: int
    games_new: int
    pgn_path: Path | None


def play_run(job: IndexedGames, hooks: RunHooks, *, records_path: Path, summary_path: Path,
             settings: dict[str, Any], n_games: int, workers: int = 1, progress: bool = True,
             label: str = "self-play", run: str = "self-play run", description: str | None = None,
             local_state: Any = None, games_at_once: int = 1, ray: str | None = None) -> RunOutcome:
    """Play the games 0..n_games-1 that `records_path` lacks, appending their records as they finish.

    First refuses (UserError) a summary with other settings or records not of this run (`read_summary`,
    `completed_indices` and the hooks' checks). Then writes the summary (so that even a run killed at once
    leaves its settings behind), plays on `workers` processes (see `indexed_records`; `local_state` serves
    when the games are played here, and stays the caller's to close) with a progress bar named
    `description` (else `label`) unless `progress` is False, and at the end, also an interrupted one,
    writes the summary again and rebuilds the PGN: an error there is raised only when every game was
    played (after a failure, the first error is the one to report). `label` and `run` name the run in
    messages ("self-play" workers, not one "self-play run"). `games_at_once` games are played at once by
    each process (threads, their model moves batched; `local_state` is then not used). With `ray` (an
    address or "auto"; Ray is imported only then), `workers` actors of that Ray cluster play the games
    (`gamegpt.arena.ray_runs.ray_records`).
    """
    if games_at_once < 1:
        raise UserError(f"games at once must be >= 1, got {games_at_once}")
    if ray is not None:
        from gamegpt.arena.ray_runs import connect

        connect(ray)  # fails (one line) before any file is written when Ray or the cluster is missing
    previous = read_summary(summary_path, records_path, settings)
    if previous is not None:
        hooks.check_summary(previous)
    created = creation_date(previous)
    existing = list(iter_records(records_path)) if records_path.exists() else []
    done = completed_indices(existing, n_games, records_path, run=run, check=hooks.check_record)
    for record in existing:
        hooks.add(record)
    pending = [index for index in range(n_games) if index not in done]
    if ray is None:
        workers = max(1, min(workers, -(-len(pending) // games_at_once)))
    if games_at_once > 1:
        local_state = None  # each thread builds its own players

    def write_summary(games: int) -> None:
        write_json_atomic(summary_path, {"settings": settings, "created": created, "games": games,
                                         **hooks.summary()})

    if previous is None or hooks.summary_changes_on_resume:
        write_summary(len(done))
    written = 0
    completed = False
    try:
        with RecordWriter(records_path) as writer, tqdm(
            total=n_games, initial=len(done), disable=not progress, desc=description or label, unit="game",
            smoothing=0.1,
        ) as bar, _records(job, pending, workers, label=label, local_state=local_state if workers == 1 else None,
                           games_at_once=games_at_once, ray=ray) as records:
            for record in records:
                writer.write(record)
                hooks.add(record)
                written += 1
                bar.update(1)
        completed = True
    finally:
        if written:
            write_summary(len(done) + written)
        pgn_path = _export_pgn(hooks, records_path, created, must_succeed=completed)
    return RunOutcome(created, len(done) + written, written, pgn_path)


def _export_pgn(hooks: RunHooks, records_path: Path, created: str, *, must_succeed: bool) -> Path | None:
    """The hooks' PGN export of an existing records file; its errors are raised only when `must_succeed`."""
    if not records_path.exists():
        return None
    try:
        return hooks.export_pgn(created)
    except Exception:
        if must_succeed:
            raise
        return None


def _records(job: IndexedGames, pending: Sequence[int], workers: int, *, label: str, local_state: Any,
             games_at_once: int, ray: str | None) -> Any:
    """The context of the records of the pending games: on Ray with `ray`, else here (`indexed_records`)."""
    if ray is not None:
        from gamegpt.arena.ray_runs import ray_records

        return ray_records(job, pending, workers, address=ray, label=label, games_at_once=games_at_once)
    return indexed_records(job, pending, workers, label=label, local_state=local_state, games_at_once=games_at_once)


class StatePool:
    """Job states for playing up to `games_at_once` games at once in threads of one process: each game
    takes a state nobody is using (built on first need), so players are never shared between threads.
    With `games_at_once` > 1 a `batched_decoding` scope is open for the pool's life, so the model players
    the states build share one batched decoder per model. `close` closes every state."""

    def __init__(self, job: IndexedGames, games_at_once: int) -> None:
        from contextlib import ExitStack

        self.job = job
        self._free: queue_module.SimpleQueue[Any] = queue_module.SimpleQueue()
        self._states: list[Any] = []
        self._lock = threading.Lock()
        self._scope = ExitStack()
        if games_at_once > 1:
            from gamegpt.engine.batched import batched_decoding

            self._scope.enter_context(batched_decoding())

    def play(self, index: int) -> GameRecord:
        try:
            state = self._free.get_nowait()
        except queue_module.Empty:
            with self._lock:
                state = self.job.open()
                self._states.append(state)
        try:
            return self.job.play(state, index)
        finally:
            self._free.put(state)

    def close(self) -> None:
        try:
            for state in self._states:
                self.job.close(state)
        finally:
            self._states = []
            self._scope.close()


def _play_in_threads(pool: StatePool, next_index: Callable[[], int | None], emit: Callable[[str, Any], None],
                     threads: int, stop: threading.Event) -> list[threading.Thread]:
    """Start `threads` threads that play the indices `next_index` gives (until None or `stop`), handing
    ("record", GameRecord) or ("error", exception) to `emit`; an error sets `stop`."""

    def loop() -> None:
        while not stop.is_set():
            index = next_index()
            if index is None:
                return
            try:
                record = pool.play(index)
            except Exception as exc:  # noqa: BLE001 - handed to the collecting thread, which raises it
                stop.set()
                emit("error", exc)
                return
            emit("record", record)

    started = [threading.Thread(target=loop, name=f"game-{n}", daemon=True) for n in range(threads)]
    for thread in started:
        thread.start()
    return started


def _local_threaded_records(job: IndexedGames, pending: Sequence[int], games_at_once: int) -> Iterator[GameRecord]:
    """The records of `pending`, played in this process `games_at_once` at a time (in finishing order)."""
    pool = StatePool(job, games_at_once)
    indices = iter(list(pending))
    lock = threading.Lock()
    results: queue_module.SimpleQueue[tuple[str, Any]] = queue_module.SimpleQueue()
    stop = threading.Event()

    def next_index() -> int | None:
        with lock:
            return next(indices, None)

    threads = _play_in_threads(pool, next_index, lambda kind, payload: results.put((kind, payload)),
                               min(games_at_once, len(pending)), stop)
    try:
        received = 0
        while received < len(pending):
            try:
                kind, payload = results.get(timeout=0.5)
            except queue_module.Empty:
                if not any(thread.is_alive() for thread in threads) and results.empty():
                    raise UserError(f"the game threads ended with {len(pending) - received} games unplayed") from None
                continue
            if kind == "error":
                raise payload
            received += 1
            yield payload
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)  # each finishes the game it is playing
        pool.close()


@contextmanager
def indexed_records(job: IndexedGames, pending: Sequence[int], workers: int, *, label: str = "self-play",
                    local_state: Any = None, games_at_once: int = 1) -> Iterator[Iterator[GameRecord]]:
    """The records of the `pending` games as they finish: in this process (in index order) when `workers`
    is 1, with `local_state` (else `job.open()`, closed at the end), or from `workers` spawned processes
    (in finishing order). Leaving the block ends the processes. A worker's exception is raised here; a
    worker that dies gives a UserError naming it (`label` names the run in messages). With `games_at_once`
    > 1, each process plays that many games at once (threads; `StatePool`), in finishing order."""
    if workers == 1 and games_at_once > 1 and pending:
        records = _local_threaded_records(job, pending, games_at_once)
        try:
            yield records
        finally:
            records.close()
        return
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
    processes = [context.Process(target=_worker, args=(job, tasks, results, games_at_once), name=f"{name}-worker-{n}",
                                 daemon=True)
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


def _worker(job: IndexedGames, tasks: Any, results: Any, games_at_once: int = 1) -> None:
    """A worker process: open the job's state once, then play the game indices from `tasks` until a None,
    putting ("record", GameRecord) on `results`, or ("error", exception) and stopping. With `games_at_once`
    > 1, that many threads play (each with its own state, `StatePool`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    threading.Thread(target=exit_with_parent, daemon=True).start()
    if games_at_once > 1:
        _threaded_worker(job, tasks, results, games_at_once)
        return
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


def _threaded_worker(job: IndexedGames, tasks: Any, results: Any, games_at_once: int) -> None:
    """`_worker`'s loop with `games_at_once` threads taking indices from `tasks` (one stop sign ends them all)."""
    pool = StatePool(job, games_at_once)
    lock = threading.Lock()
    stop = threading.Event()
    exhausted = False

    def next_index() -> int | None:
        nonlocal exhausted
        with lock:
            if exhausted or stop.is_set():
                return None
            index = tasks.get()
            exhausted = index is None
            return index  # type: ignore[no-any-return]

    def emit(kind: str, payload: Any) -> None:
        results.put((kind, _picklable(payload) if kind == "error" else payload))

    try:
        for thread in _play_in_threads(pool, next_index, emit, games_at_once, stop):
            thread.join()
    finally:
        pool.close()


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.dumps(exc)
        return exc
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def exit_with_parent() -> None:
    """Run in a daemon thread of a worker process: end the worker when the main process dies (even by
    SIGKILL); its engines then read end-of-file on their stdin and quit. Without this, an orphaned worker
    would wait for tasks forever."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    multiprocessing.connection.wait([parent.sentinel])
    os._exit(1)
