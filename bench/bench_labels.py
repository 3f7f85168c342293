"""Benchmark of the legal-move loss's labels: labelled in the training process vs stored by `gamegpt data labels`.

    python bench/bench_labels.py [--steps 30] [--games 4000] [--workers N]

Real training runs (`gamegpt.core.train.train`, the default dtype, one-token-per-move shards of real games:
the first `--games` TWIC games from `$GAMEGPT_DATA`, or random self-play where that is missing), the same
batches in each, timed from the training log (wall tokens/s of each 10-step interval after the first, median):

(a) no legal loss (the reference);
(b) `legal_loss_weight=1`, labelled in the process as batches need them (`BlockLabels`: every block is new in
    the first epoch, which is what a one-pass run on a large corpus pays at every step);
(c) `legal_loss_weight=1`, labels read from `labels-legal/` (`StoredLabels`).

Then the labelling itself: blocks a second with 1 worker and with `--workers`. The runs follow one another, so
other load on the machine can shift them: run it on an idle machine, and compare the ratios, not the absolute
figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamegpt.core.stored_labels import labels_dir  # noqa: E402
from gamegpt.core.train import TrainConfig, train  # noqa: E402
from gamegpt.selfplay.dataset import records_to_shards  # noqa: E402
from gamegpt.selfplay.labels import write_stored_labels  # noqa: E402
from gamegpt.shared_data import shared_file  # noqa: E402


def make_records(folder: Path, games: int) -> tuple[Path, str]:
    """Real games to label: TWIC from the shared data if present, else random self-play."""
    twic = shared_file("games", "twic-250k.pgn.gz")
    out = folder / "games.jsonl"
    if twic is not None:
        from gamegpt.arena.pgn_import import import_pgn

        import_pgn([twic], out, workers=1, limit=games)
        return out, f"the first {games} TWIC games"
    from gamegpt.selfplay.runner import run_selfplay

    count = max(50, games // 6)
    run_selfplay("chess", ["random", "random"], n_games=count, seed=1, out=out, max_plies=160, progress=False)
    return out, f"{count} random self-play games (no $GAMEGPT_DATA)"


def tokens_per_second(shards: Path, out: Path, steps: int, batch: int, legal: bool) -> float:
    cfg = TrainConfig(data_dir=str(shards), out_dir=str(out), n_layer=4, n_head=4, n_embd=256, batch_size=batch,
                      max_steps=steps, eval_interval=steps, eval_batches=1, checkpoint_interval=steps,
                      log_interval=10, seed=0, legal_loss_weight=1.0 if legal else 0.0)
    train(cfg, progress=False)
    events = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    rates = [e["tokens_per_second"] for e in events if e["event"] == "train"][1:]
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per setting (default 30)")
    parser.add_argument("--batch", type=int, default=16, help="blocks of 512 tokens a step (default 16)")
    parser.add_argument("--games", type=int, default=4000, help="games to make the shards of (default 4000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="labelling processes (default: CPUs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        records, source = make_records(folder, args.games)
        shards = folder / "shards"
        meta = records_to_shards([records], shards, game="chess", codec_name="chess-uci-moves", block_len=512,
                                 val_fraction=0.05)
        blocks = meta["n_blocks"]["train"]
        print(f"shards: {source}, {blocks} train blocks of 512 tokens; {args.steps} steps of {args.batch} blocks "
              f"({args.steps * args.batch} blocks{', every one new' if args.steps * args.batch <= blocks else ''})")
        plain = tokens_per_second(shards, folder / "plain", args.steps, args.batch, legal=False)
        here = tokens_per_second(shards, folder / "here", args.steps, args.batch, legal=True)
        labelling = {}
        for workers in sorted({1, args.workers}):
            started = time.perf_counter()
            write_stored_labels(shards, "legal", workers=workers)
            labelling[workers] = blocks / (time.perf_counter() - started)
        print(f"stored labels: {sum(f.stat().st_size for f in labels_dir(shards, 'legal').iterdir()) / 2**20:.1f} MiB")
        stored = tokens_per_second(shards, folder / "stored", args.steps, args.batch, legal=True)
    print(f"{'setting':<44} {'tokens/s':>9} {'vs (a)':>7}")
    for name, rate in (("(a) no legal loss", plain), ("(b) legal loss, labelled in the process", here),
                       ("(c) legal loss, stored labels", stored)):
        print(f"{name:<44} {rate:>9,.0f} {rate / plain:>6.2f}x")
    print(f"(c) / (b): {stored / here:.2f}x")
    for workers, rate in labelling.items():
        print(f"labelling: {rate:,.0f} blocks/s with {workers} worker(s)")


if __name__ == "__main__":
    main()
