"""Benchmark of batched model inference: model moves per second with N games decoded together in one
forward pass per step, against the same games played one at a time, for N = 1, 8 and 32.

    python bench/bench_batched.py [--quick] [--game tictactoe|chess] [--model NAME] [--device cpu|cuda]
                                  [--concurrent 1,8,32] [--threads N]

Both ways go through `run_selfplay` with one process, the model against itself (every move a model move),
sampling at temperature 1 with the legality mask, seeded per game:
  - one at a time: `games_at_once=1`, plain `ModelPlayer`s, one game after another;
  - batched: `games_at_once=N`, N games at once in threads, their model moves decoded together
    (`gamegpt.engine.batched`; for N = 1 the batched player alone, which shows its overhead).
Each way plays the same games (--games, at least 2N) and the records are compared: the moves must be the same.
The two ways take turns in each repeat (so a load on a shared machine hits both alike); printed are the
median model moves per second of each, the ratio batched / one at a time, and the mean batch (rows per
forward pass) the batched way reached. Figures drift between machines: compare the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamegpt.arena.records import GameRecord, read_records
from gamegpt.engine import batched
from gamegpt.selfplay.runner import run_selfplay


def play(game: str, spec: str, n_games: int, games_at_once: int, max_plies: int | None,
         batch: bool) -> tuple[float, list[str], float]:
    """Seconds, the records (sorted JSON lines) and the mean batch of one run of `n_games`, the model
    players batched (`batched_decoding`, also for one game at once) or plain."""
    passes_rows = [0, 0]
    original = batched.BatchedDecoder._run

    def counting(self: batched.BatchedDecoder) -> None:
        passes_rows[0] += 1
        passes_rows[1] += len(self._pending)
        original(self)

    batched.BatchedDecoder._run = counting  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "games.jsonl"
            started = time.perf_counter()
            with batched.batched_decoding() if batch else contextlib.nullcontext():
                run_selfplay(game, [spec, spec], n_games=n_games, seed=0, out=out, progress=False,
                             games_at_once=games_at_once, max_plies=max_plies)
            seconds = time.perf_counter() - started
            records = sorted(record.to_json() for record in read_records(out))
    finally:
        batched.BatchedDecoder._run = original  # type: ignore[method-assign]
    return seconds, records, passes_rows[1] / max(1, passes_rows[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat instead of three")
    parser.add_argument("--game", choices=["tictactoe", "chess"], default="tictactoe")
    parser.add_argument("--model", default=None, help="shipped model name or checkpoint  [default: the game's]")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--concurrent", default="1,8,32", help="games decoded together, comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--games", type=int, default=64, help="games per run (at least twice the games at once)")
    parser.add_argument("--max-plies", type=int, default=40, help="chess: a longer game is adjudicated a draw")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = args.model or ("chessgpt" if args.game == "chess" else "tictactoe")
    spec = f"model:path={model},temperature=1,policy=mask,device={args.device}"
    max_plies = args.max_plies if args.game == "chess" else None
    repeats = 1 if args.quick else 3
    print(f"{args.game}, model {model} against itself, {spec}; torch threads {args.threads}, device {args.device}")
    play(args.game, spec, 2, 1, max_plies, False)  # warm-up: the model is loaded once, here
    print(f"{'games at once':>13} {'games':>6} {'moves':>6} {'one at a time moves/s':>22} {'batched moves/s':>16} "
          f"{'ratio':>6} {'mean batch':>11}")
    for concurrent in (int(n) for n in args.concurrent.split(",")):
        n_games = max(args.games, 2 * concurrent)
        single, together, batches = [], [], []
        moves = 0
        for _ in range(repeats):
            seconds_single, reference, _ = play(args.game, spec, n_games, 1, max_plies, False)
            seconds_batched, records, batch = play(args.game, spec, n_games, concurrent, max_plies, True)
            if records != reference:
                print(f"error: the batched games differ from the one-at-a-time games ({concurrent} at once)")
                return 1
            moves = sum(len(GameRecord.from_dict(json.loads(line)).moves) for line in reference)
            single.append(moves / seconds_single)
            together.append(moves / seconds_batched)
            batches.append(batch)
        one, many = statistics.median(single), statistics.median(together)
        print(f"{concurrent:>13} {n_games:>6} {moves:>6} {one:>22.0f} {many:>16.0f} {many / one:>6.2f} "
              f"{statistics.median(batches):>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
