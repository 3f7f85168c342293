"""Benchmark of Ray dispatch: self-play games per second on local worker processes against Ray actors of a
local Ray instance, with the same number of workers (the overhead of Ray, as a ratio in one run).

    python bench/bench_ray.py [--quick] [--workers 2] [--games 200] [--games-at-once 1]
                              [--x SPEC] [--o SPEC] [--game tictactoe|chess]

Both ways go through `run_selfplay` with the same players, seed and games (default: the shipped
tic-tac-toe model, masked sampling at temperature 1, against the random player), and their records
are compared (they must be the same):
  - local: `workers` spawned worker processes (`gamegpt.arena.runs`);
  - Ray: `ray=` a Ray instance started here once (`ray.init(num_cpus=workers)`, not timed: a cluster runs
    before a run starts), `workers` actors (`gamegpt.arena.ray_runs`).
Ray runs its workers at nice 15 by default, which on a machine busy with other work starves them (measured
here: an order of magnitude slower); the bench starts Ray with RAY_worker_niceness=0, the local workers'
priority, so that the ratio shows the dispatch alone (set RAY_worker_niceness yourself to see the default).
Ray also gives each actor one torch thread (OMP_NUM_THREADS=1, its default for a 1-CPU actor); the
bench sets the same for the local workers (with torch's default, one thread per core in each worker,
the local workers ran 5x slower here on a busy 2-core machine).
Both times include starting the workers (processes or actors, each importing torch and loading the
model), as a user's run does. The two ways take turns in each repeat; printed are the median games/s of
each and the ratio Ray / local. Figures drift between machines: compare the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamegpt.arena.records import read_records
from gamegpt.selfplay.runner import run_selfplay


def play(args: argparse.Namespace, ray: str | None) -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "games.jsonl"
        started = time.perf_counter()
        run_selfplay(args.game, [args.x, args.o], n_games=args.games, seed=0, out=out, progress=False,
                     workers=args.workers, games_at_once=args.games_at_once, ray=ray,
                     game_options={"claim_draws": True} if args.game == "chess" else None,
                     max_plies=200 if args.game == "chess" else None)
        seconds = time.perf_counter() - started
        return seconds, sorted(record.to_json() for record in read_records(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat instead of three")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--games-at-once", type=int, default=1)
    parser.add_argument("--game", choices=["tictactoe", "chess"], default="tictactoe")
    parser.add_argument("--x", default="model:path=tictactoe,temperature=1,policy=mask", help="first player's spec")
    parser.add_argument("--o", default="random", help="second player's spec")
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a private instance on 127.0.0.1
    os.environ.setdefault("RAY_worker_niceness", "0")  # the local workers' priority (Ray's default is nice 15)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one torch thread per worker, as Ray gives its actors
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    print(f"{args.game}: {args.x} vs {args.o}, {args.games} games, {args.workers} workers, "
          f"{args.games_at_once} games at once; Ray {ray.__version__} started in {time.perf_counter() - started:.1f} s "
          "(not timed below)")
    local_rates, ray_rates = [], []
    try:
        for _ in range(1 if args.quick else 3):
            local_seconds, reference = play(args, None)
            ray_seconds, records = play(args, "auto")
            if records != reference:
                print("error: the Ray run's records differ from the local run's")
                return 1
            local_rates.append(args.games / local_seconds)
            ray_rates.append(args.games / ray_seconds)
    finally:
        ray.shutdown()
    local, on_ray = statistics.median(local_rates), statistics.median(ray_rates)
    print(f"{'':>8} {'games/s':>8}")
    print(f"{'local':>8} {local:>8.1f}")
    print(f"{'Ray':>8} {on_ray:>8.1f}")
    print(f"ratio Ray / local: {on_ray / local:.2f} (same records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
