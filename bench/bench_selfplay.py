"""Benchmark of chess self-play: our runner against a minimal loop driving the same Stockfish directly.

    python bench/bench_selfplay.py [--games N] [--stockfish PATH] [--no-pin]

Settings for every figure: Stockfish (one process per side), `go nodes 1` (it still finishes depth 1),
Threads 1, Hash 16, Skill Level 20, no noise, at most 200 plies, draws claimed (50 moves, threefold
repetition). At `nodes 1` Stockfish is deterministic, so every game is the same game in all three runs
(checked), and games/s compare like with like.

(a) reference: a minimal loop over two raw pipes (`ucinewgame` / `position startpos moves ...` /
    `go nodes 1` / `bestmove`), game end checked with python-chess, no records written;
(b) ours: `run_selfplay` with 1 worker (the arena, players, JSONL records, summary, PGN export), and the
    ratio ours / reference;
(c) ours with 2 worker processes (spawn start-up included), and the speed-up 2 workers / 1 worker.

(a) and (b) run pinned to one CPU (children inherit it: a driver and its engines share the CPU), which
removes most of the run-to-run spread on a 2-core machine; (c) may use every CPU. Figures drift between
runs and machines: compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import chess

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamegpt.players.uci import find_stockfish
from gamegpt.arena.records import read_records
from gamegpt.selfplay.runner import run_selfplay

MAX_PLIES = 200
NODES = 1


class RawEngine:
    """The least a driver can do: text pipe, line-buffered, blocking readline."""

    def __init__(self, path: str) -> None:
        self.process = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        self.send("uci")
        self.wait_for("uciok")
        self.send("setoption name Threads value 1")
        self.send("setoption name Hash value 16")
        self.send("isready")
        self.wait_for("readyok")

    def send(self, line: str) -> None:
        self.stdin.write(line + "\n")

    def wait_for(self, word: str) -> str:
        while True:
            line = self.stdout.readline()
            if not line:
                raise RuntimeError("stockfish died")
            if line.startswith(word):
                return line

    def close(self) -> None:
        self.send("quit")
        self.process.wait(timeout=5)


def reference_game(engines: list[RawEngine]) -> list[str]:
    """One game between two engines at `go nodes 1`; the moves in UCI."""
    board = chess.Board()
    moves: list[str] = []
    for engine in engines:
        engine.send("ucinewgame")
        engine.send("isready")
        engine.wait_for("readyok")
    while len(moves) < MAX_PLIES:
        if board.outcome() is not None or board.is_fifty_moves() or board.is_repetition(3):
            break
        engine = engines[len(moves) % 2]
        engine.send("position startpos moves " + " ".join(moves) if moves else "position startpos")
        engine.send(f"go nodes {NODES}")
        best = engine.wait_for("bestmove").split()[1]
        board.push_uci(best)
        moves.append(best)
    return moves


def run_reference(path: str, games: int) -> tuple[float, list[str], int]:
    """(games/s, moves of the first game, plies in all)."""
    engines = [RawEngine(path), RawEngine(path)]
    start = time.perf_counter()
    played = [reference_game(engines) for _ in range(games)]
    seconds = time.perf_counter() - start
    for engine in engines:
        engine.close()
    return games / seconds, played[0], sum(len(m) for m in played)


def run_ours(path: str, games: int, workers: int, out: Path) -> tuple[float, list[str], int]:
    """(games/s, moves of game 0, plies in all) of run_selfplay, engine start-up and files included."""
    spec = f"stockfish:nodes={NODES},path={path}"
    start = time.perf_counter()
    run_selfplay("chess", [spec, spec], n_games=games, seed=0, out=out, max_plies=MAX_PLIES, progress=False,
                 workers=workers, game_options={"claim_draws": True})
    seconds = time.perf_counter() - start
    records = sorted(read_records(out), key=lambda r: r.index or 0)
    assert len(records) == games and out.with_suffix(".pgn").exists()
    return games / seconds, records[0].moves, sum(len(r.moves) for r in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=120, help="games per measurement (default 120)")
    parser.add_argument("--stockfish", default=None, help="Stockfish executable (default: found as usual)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin (a) and (b) to one CPU")
    args = parser.parse_args()
    path = find_stockfish(args.stockfish)
    cpus = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cpus) > 1
    print(f"stockfish {path}; both sides go nodes {NODES}, Threads 1, Hash 16, Skill Level 20, no noise; "
          f"at most {MAX_PLIES} plies, draws claimed; {args.games} games per measurement; CPUs {cpus}; "
          f"load average {os.getloadavg()[0]:.1f} (anything above 0 is other work competing)")
    with tempfile.TemporaryDirectory() as tmp:
        if pin:
            os.sched_setaffinity(0, {cpus[-1]})
        ref_rate, ref_moves, ref_plies = run_reference(path, args.games)
        print(f"(a) reference raw-pipe loop, 1 process{' pinned to CPU ' + str(cpus[-1]) if pin else ''}: "
              f"{ref_rate:6.2f} games/s  ({ref_rate * ref_plies / args.games:6.0f} plies/s, "
              f"{ref_plies / args.games:.0f} plies a game)")
        one_rate, one_moves, _ = run_ours(path, args.games, 1, Path(tmp) / "one.jsonl")
        print(f"(b) run_selfplay, 1 worker{' pinned to CPU ' + str(cpus[-1]) if pin else ''}:            "
              f"{one_rate:6.2f} games/s  ratio ours/reference {one_rate / ref_rate:.2f}")
        if pin:
            os.sched_setaffinity(0, set(cpus))
        two_rate, two_moves, _ = run_ours(path, args.games, 2, Path(tmp) / "two.jsonl")
        print(f"(c) run_selfplay, 2 workers (any CPU, start-up incl.): {two_rate:6.2f} games/s  "
              f"speed-up 2 workers / 1 worker {two_rate / one_rate:.2f}")
    same = ref_moves == one_moves == two_moves
    print(f"same game in (a), (b), (c): {'yes' if same else 'NO'}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
