"""Self-play runs: play N games between two player specs and append the records to a JSONL file.

Game `i` is always seeded by (seed, i). Re-running the same command continues to the requested count:
the indices already in the file are skipped, so no game is played twice. With `workers` > 1 a pool of
processes plays the games (each builds its players once: one engine process per worker and side) and
the main process appends each finished record at once, so records may be out of index order, and a
kill or Ctrl-C loses at most the games in flight. A summary JSON beside the records names the settings;
a re-run with other settings is refused. Chess runs also rebuild a PGN export beside the records
(`games.jsonl` → `games.pgn`) at the end of every run, interrupted or not.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from tqdm import tqdm

from gamegpt.errors import UserError
from gamegpt.eval.arena import derive_seed, play_game
from gamegpt.games import new_game
from gamegpt.players.base import Player
from gamegpt.players.spec import make_player
from gamegpt.records import GameRecord, RecordWriter, iter_records


@dataclass
class SelfplayResult:
    """What a self-play run left behind (`pgn_path` for chess runs)."""

    records_path: Path
    summary_path: Path
    games_total: int
    games_new: int
    results: dict[str, int]
    pgn_path: Path | None = None


def summary_path_for(records_path: Path) -> Path:
    """Where the summary JSON of a records file lives (`games.jsonl` → `games.summary.json`)."""
    return records_path.with_name(records_path.stem + ".summary.json")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def run_selfplay(
    game: str,
    player_specs: Sequence[str],
    *,
    n_games: int,
    seed: int,
    out: str | Path,
    max_plies: int | None = None,
    progress: bool = True,
    workers: int = 1,
    game_options: dict[str, Any] | None = None,
) -> SelfplayResult:
    """Play the games of indices 0..n_games-1 not yet in `out` between `player_specs[0]` (moves first)
    and `[1]`, on `workers` processes. `game_options` go to the game's constructor (chess:
    `{"claim_draws": True}` ends games on the 50-move rule and threefold repetition); `max_plies`
    adjudicates a longer game a draw. The results do not depend on `workers` when the players are
    deterministic. Raises UserError for bad settings or a records file that is not of this run."""
    if n_games < 0:
        raise UserError(f"the game count must be >= 0, got {n_games}")
    if workers < 1:
        raise UserError(f"the worker count must be >= 1, got {workers}")
    if max_plies is not None and max_plies < 1:
        raise UserError(f"max plies must be >= 1, got {max_plies}")
    records_path = Path(out)
    summary_path = summary_path_for(records_path)
    game_options = dict(game_options or {})
    settings: dict[str, Any] = {"game": game, "players": list(player_specs), "seed": seed, "max_plies": max_plies}
    if game_options:
        settings["game_options"] = game_options
    created = _check_settings(summary_path, records_path, settings)
    new_game(game, **game_options)  # an unknown game or option fails here, before any work
    existing = list(iter_records(records_path)) if records_path.exists() else []
    done = _completed_indices(existing, n_games, records_path)
    pending = [index for index in range(n_games) if index not in done]
    players = [make_player(spec, game) for spec in player_specs]  # bad specs fail here, in one clear line
    workers = max(1, min(workers, len(pending)))
    if workers > 1:
        _close_all(players)  # each worker builds its own; these only checked the specs (engines start lazily)
        players = []
    job = _Job(game, list(player_specs), game_options, seed, max_plies)
    results = Counter(r.result for r in existing)
    if not summary_path.exists():  # first, so that even a run killed at once leaves its settings behind
        write_json_atomic(summary_path, {"settings": settings, "created": created, "games": len(done),
                                         "results": dict(results)})
    written = 0
    completed = False
    try:
        with RecordWriter(records_path) as writer, tqdm(
            total=n_games, initial=len(done), disable=not progress, desc=f"self-play {game}", unit="game",
            smoothing=0.1,
        ) as bar, _records(job, players, pending, workers) as records:
            for record in records:
                writer.write(record)
                results[record.result] += 1
                written += 1
                bar.update(1)
        completed = True
    finally:
        _close_all(players)
        total = len(done) + written
        if written:
            write_json_atomic(summary_path, {"settings": settings, "created": created, "games": total,
                                             "results": dict(results)})
        pgn_path = _export_pgn(game, records_path, must_succeed=completed)
    return SelfplayResult(records_path, summary_path, total, written, dict(results), pgn_path)


def _check_settings(summary_path: Path, records_path: Path, settings: dict[str, Any]) -> str:
    """Refuse a records file made with other settings; return the run's creation date (ISO, UTC)."""
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


def _completed_indices(existing: list[GameRecord], n_games: int, records_path: Path) -> set[int]:
    """The game indices in a records file, checked: each an int, none twice, all below `n_games`."""
    counts: Counter[int] = Counter()
    for record in existing:
        index = record.index
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise UserError(f"{records_path}: a record has game index {index!r}; not the records of a self-play run")
        counts[index] += 1
    for index, count in counts.items():
        if count > 1:
            raise UserError(f"{records_path}: game {index} is in the file {count} times; not one self-play run")
    if counts and max(counts) >= n_games:
        raise UserError(f"{records_path} already holds game {max(counts)}; ask for at least {max(counts) + 1} "
                        f"games or choose another --out")
    return set(counts)


def _close_all(players: Sequence[Player]) -> None:
    for player in players:
        player.close()


def _export_pgn(game: str, records_path: Path, *, must_succeed: bool) -> Path | None:
    """Rebuild the PGN of a chess run; after a failed or interrupted run, errors here are not raised
    (the first error is the one to report)."""
    if game != "chess" or not records_path.exists():
        return None
    from gamegpt.selfplay.pgn_export import export_pgn, pgn_path_for

    pgn_path = pgn_path_for(records_path)
    try:
        export_pgn(records_path, pgn_path)
    except Exception:
        if must_succeed:
            raise
        return None
    return pgn_path


# --------------------------------------------------------------------------- playing the games
@dataclass(frozen=True)
class _Job:
    """What a worker needs to play any game of the run (pickled once per worker)."""

    game: str
    player_specs: list[str]
    game_options: dict[str, Any]
    seed: int
    max_plies: int | None

    def play(self, players: Sequence[Player], index: int) -> GameRecord:
        return play_game(new_game(self.game, **self.game_options), players, seed=derive_seed(self.seed, index),
                         index=index, max_plies=self.max_plies)


@contextmanager
def _records(job: _Job, players: Sequence[Player], pending: list[int], workers: int) -> Iterator[Iterator[GameRecord]]:
    """The records of the pending games as they finish: in this process (in index order) with one worker,
    else from `workers` processes (in finishing order). Leaving the block ends the processes."""
    if workers == 1 or not pending:
        yield (job.play(players, index) for index in pending)
        return
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch or threads are loaded
    tasks: Any = context.Queue()
    results: Any = context.Queue()
    for index in pending:
        tasks.put(index)
    for _ in range(workers):
        tasks.put(None)  # one stop sign per worker
    processes = [context.Process(target=_worker, args=(job, tasks, results), name=f"selfplay-worker-{n}", daemon=True)
                 for n in range(workers)]
    for process in processes:
        process.start()
    try:
        yield _collect(results, processes, len(pending))
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


def _collect(results: Any, processes: list[Any], expected: int) -> Iterator[GameRecord]:
    """`expected` records from the workers' result queue. Raises a worker's error, or UserError when a
    worker died (killed, out of memory) or all ended with games missing, instead of waiting forever."""
    received = 0
    while received < expected:
        dead = [p for p in processes if p.exitcode not in (None, 0)]
        if dead:
            raise UserError(f"self-play worker {dead[0].name} died (exit code {dead[0].exitcode}); "
                            "re-run the same command to continue")
        try:
            kind, payload = results.get(timeout=0.5)
        except queue_module.Empty:
            if all(p.exitcode is not None for p in processes):
                raise UserError(f"self-play workers ended with {expected - received} games unplayed; "
                                "re-run the same command to continue") from None
            continue
        if kind == "error":
            raise payload
        received += 1
        yield payload


def _worker(job: _Job, tasks: Any, results: Any) -> None:
    """A worker process: build the players once, then play the game indices from `tasks` until a None,
    putting ("record", GameRecord) on `results`, or ("error", exception) and stopping."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    players: list[Player] = []
    try:
        players = [make_player(spec, job.game) for spec in job.player_specs]
        for index in iter(tasks.get, None):  # ends at this worker's stop sign
            results.put(("record", job.play(players, index)))
    except Exception as exc:  # noqa: BLE001 - handed to the main process, which raises it
        results.put(("error", _picklable(exc)))
    finally:
        _close_all(players)


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


def write_enumeration(out: str | Path) -> SelfplayResult:
    """Write every tic-tac-toe game in which at least one side follows the Newell–Simon rules and the other
    plays every legal move (see `enumerate_newell_simon_games`). Overwrites `out` atomically."""
    from gamegpt.players.newell_simon import enumerate_games

    as_x, as_o = set(enumerate_games(0)), set(enumerate_games(1))
    records_path = Path(out)
    tmp = records_path.with_name(f".{records_path.name}.{os.getpid()}.tmp")
    records_path.parent.mkdir(parents=True, exist_ok=True)
    results: Counter[str] = Counter()
    with RecordWriter(tmp) as writer:
        for index, history in enumerate(sorted(as_x | as_o)):
            from gamegpt.games.tictactoe import TicTacToe

            final = TicTacToe(history)
            outcome = final.outcome()
            assert outcome is not None
            followers = [side for side, games in ((0, as_x), (1, as_o)) if history in games]
            players = [{"name": "newell-simon" if side in followers else "every-move"} for side in (0, 1)]
            record = GameRecord(game="tictactoe", moves=[str(m) for m in history], players=players,
                                result=outcome.result, termination=outcome.termination, index=index)
            writer.write(record)
            results[record.result] += 1
    os.replace(tmp, records_path)
    summary_path = summary_path_for(records_path)
    total = sum(results.values())
    write_json_atomic(summary_path, {"settings": {"game": "tictactoe", "enumerate": "newell-simon"},
                                     "games": total, "newell_simon_as_x": len(as_x),
                                     "newell_simon_as_o": len(as_o), "results": dict(results)})
    return SelfplayResult(records_path, summary_path, total, total, dict(results))
