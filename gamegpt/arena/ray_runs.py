"""Runs on a Ray cluster: the games of a resumable run (`gamegpt.arena.runs.play_run`) played by Ray actors.

    pip install 'gamegpt[ray]'
    ray start --head                                   # or a cluster; then on this machine:
    gamegpt selfplay chess --ray auto --games 100000 --out data/games.jsonl

Each actor is a long-lived worker process holding what a local worker holds (the job's players: engine
processes, loaded models), one CPU each; it plays game indices it is sent, `games_at_once` at a time
(threads, their model moves batched as in local workers). Game i is still seeded by (seed, i), so its
record is the one a local run makes. The driver (this process) sends the indices, receives the records
as they finish and writes them to the run's JSONL file itself, so the file, the summary and the resume
rules are those of a local run: a run interrupted on a cluster resumes on a laptop and the reverse.

Failures: an actor that dies (its process killed, its node lost) loses only the games it was playing; the
driver sends them again (to a fresh actor that replaces it; at most `MAX_ATTEMPTS` tries a game), and a
game's record is written once, when it arrives. A driver that dies takes its actors with it (Ray ends the
actors of a dead driver); re-running the command plays the games its file lacks. An error inside a game
(a bad spec, a broken engine) is raised here as the game's own exception.

Ray is imported by this module only, and only when a run asks for it; without the extra installed,
`connect` gives a one-line UserError saying how to install it.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from gamegpt.arena.records import GameRecord
from gamegpt.arena.runs import IndexedGames, StatePool
from gamegpt.errors import UserError

INSTALL_HINT = "--ray needs Ray, an optional extra: pip install 'gamegpt[ray]'"
MAX_ATTEMPTS = 3
"""Tries of one game on actors that die before it ends; then the run stops (its records are kept)."""
WAIT_SECONDS = 5.0


def require_ray() -> Any:
    """The `ray` module, or a UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


def connect(address: str) -> Any:
    """Join the Ray cluster at `address` ("auto": the one running on this machine; "local": start a
    private one for this process; else host:port or ray://host:port) unless this process already has;
    returns the `ray` module. UserError (one line) when Ray is missing or no cluster answers. The workers
    of a cluster joined here import this gamegpt first (its directory leads their PYTHONPATH: the same
    code where the cluster shares this machine or its file system; install gamegpt on other nodes)."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    runtime_env = {"env_vars": {"PYTHONPATH": _package_root() + os.pathsep + "${PYTHONPATH}"}}
    try:
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
        else:
            ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"no Ray cluster at {address!r} ({first}); start one with `ray start --head`, "
                        "or give --ray local for a private one") from None
    return ray


def cluster_cpus(address: str) -> int:
    """The CPUs of the Ray cluster at `address` (connecting to it): the default number of actors."""
    ray = connect(address)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class GameActor:
    """A Ray actor's body: the job's players for `games_at_once` games at once (`StatePool`), built on first
    need and kept for the actor's life."""

    def __init__(self, job: IndexedGames, games_at_once: int, env: dict[str, str]) -> None:
        os.environ.update(env)
        self.pool = StatePool(job, games_at_once)

    def play(self, index: int) -> GameRecord:
        return self.pool.play(index)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        self.pool.close()


def _worker_env() -> dict[str, str]:
    """The environment the actors need from this process: the GAMEGPT_ variables (Stockfish, models, data)."""
    return {key: value for key, value in os.environ.items() if key.startswith("GAMEGPT_")}


def _package_root() -> str:
    import gamegpt

    return str(Path(gamegpt.__file__).resolve().parents[1])


@contextmanager
def ray_records(job: IndexedGames, pending: Sequence[int], workers: int, *, address: str,
                label: str = "self-play", games_at_once: int = 1) -> Iterator[Iterator[GameRecord]]:
    """The records of the `pending` games (in finishing order), played by up to `workers` Ray actors of
    the cluster at `address`, each `games_at_once` at a time. Leaving the block ends the actors."""
    ray = connect(address)
    actor_class = ray.remote(GameActor)
    env = _worker_env()

    def start() -> Any:
        return actor_class.options(num_cpus=1, max_concurrency=games_at_once).remote(job, games_at_once, env)

    count = max(1, min(workers, -(-len(pending) // games_at_once))) if pending else 0
    actors = [start() for _ in range(count)]
    try:
        yield _dispatch(ray, actors, start, list(pending), games_at_once, label)
    finally:
        closing = [actor.close.remote() for actor in actors]
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=10)  # engines quit; then the processes end
        for actor in actors:
            ray.kill(actor)


def _dispatch(ray: Any, actors: list[Any], start: Any, pending: list[int], games_at_once: int,
              label: str) -> Iterator[GameRecord]:
    """Keep each actor `games_at_once` + 1 games busy (one queued hides the round trip) and yield each
    record as it arrives; a game lost with its actor is sent again, to a fresh actor in the dead one's place."""
    from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

    todo = deque(pending)
    in_flight: dict[Any, tuple[int, int, int]] = {}  # ref -> (index, actor slot, actor generation)
    generation = [0] * len(actors)
    busy = Counter[int]()
    attempts = Counter[int]()
    per_actor = games_at_once + 1

    def fill(slot: int) -> None:
        while todo and busy[slot] < per_actor:
            index = todo.popleft()
            in_flight[actors[slot].play.remote(index)] = (index, slot, generation[slot])
            busy[slot] += 1

    for slot in range(len(actors)):
        fill(slot)
    received = 0
    while received < len(pending):
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=WAIT_SECONDS)
        if not ready:
            continue  # games still running
        index, slot, born = in_flight.pop(ready[0])
        if born == generation[slot]:
            busy[slot] -= 1
        try:
            record = ray.get(ready[0])
        except (RayActorError, WorkerCrashedError) as exc:
            attempts[index] += 1
            if attempts[index] >= MAX_ATTEMPTS:
                reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
                raise UserError(f"{label} game {index} was lost with its Ray actor {attempts[index]} times "
                                f"({reason}); re-run the same command to continue") from None
            todo.appendleft(index)
            if born == generation[slot]:  # the first news of this actor's death: replace it
                ray.kill(actors[slot])
                actors[slot] = start()
                generation[slot] += 1
                busy[slot] = 0
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            raise (cause if isinstance(cause, BaseException) else exc) from None
        else:
            received += 1
            yield record
        fill(slot)
