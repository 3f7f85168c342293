"""Benchmark of `keep_large_blocks_in_heap` (gamegpt.core.heap), which `gamegpt train` calls on CPU.

    python bench/bench_heap.py [--steps 6] [--rounds 3] [--threads 1]

A training step shaped like the shipped chess model's (4 layers x 256, 16 blocks of 512 tokens, a 2,001-token
vocabulary, bfloat16 autocast where the CPU has it natively, AdamW), with and without the legal-move loss (30
random legal moves a position), is timed in child processes: glibc's defaults against the raised thresholds.
A child's allocator cannot be reset, hence one process per setting; the settings take turns, `--rounds` times
each, so a change in the machine's load hits both alike. Printed: CPU seconds and wall seconds a step (the
median over rounds of each child's mean after two warm-up steps), minor page faults a step, and the ratio of
the plain step's CPU time to the kept one's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(keep: bool, legal_loss: bool, steps: int, threads: int) -> dict[str, float]:
    """Time `steps` training steps in this process (after two warm-up steps)."""
    import resource
    import time

    sys.path.insert(0, str(ROOT))
    from gamegpt.core.heap import keep_large_blocks_in_heap

    kept = keep_large_blocks_in_heap() if keep else False
    import torch

    from gamegpt.core.model import GPT, GPTConfig
    from gamegpt.core.train import native_bfloat16

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=2001, block_size=511, n_layer=4, n_head=4, n_embd=256)
    model = GPT(config)
    optimizer = model.configure_optimizer(0.1, 3e-4, (0.9, 0.95), "cpu")
    x = torch.randint(0, 1968, (16, 511))
    y = torch.randint(0, 1968, (16, 511))
    legal = torch.zeros(16, 511, 1968, dtype=torch.bool)
    legal.scatter_(2, torch.randint(0, 1968, (16, 511, 30)), True)
    bfloat16 = native_bfloat16(torch.device("cpu"))[0]

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            _, loss = model(x, y, **({"legal_targets": legal, "legal_weight": 1.0} if legal_loss else {}))
        assert loss is not None
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    faults, cpu, wall = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    return {"kept": kept, "cpu_s": (time.process_time() - cpu) / steps, "wall_s": (time.perf_counter() - wall) / steps,
            "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["keep", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--legal-loss", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "keep", args.legal_loss, args.steps, args.threads)))
        return
    print(f"training step, 4x256, 16 x 511 tokens, vocab 2001, {args.threads} thread(s); "
          f"{args.rounds} rounds of {args.steps} steps per setting")
    print(f"{'loss':<22} {'heap':<8} {'CPU s/step':>10} {'wall s/step':>11} {'faults/step':>11} {'ratio':>7}")
    for legal_loss in (False, True):
        results: dict[str, list[dict[str, float]]] = {"plain": [], "keep": []}
        for _ in range(args.rounds):
            for mode in results:
                command = [sys.executable, __file__, "--child", mode, "--steps", str(args.steps),
                           "--threads", str(args.threads)] + (["--legal-loss"] if legal_loss else [])
                out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
                results[mode].append(json.loads(out.strip().splitlines()[-1]))
        medians = {mode: {key: statistics.median(r[key] for r in runs) for key in ("cpu_s", "wall_s", "faults")}
                   for mode, runs in results.items()}
        name = "next move + legal" if legal_loss else "next move"
        for mode in ("plain", "keep"):
            m = medians[mode]
            ratio = medians["plain"]["cpu_s"] / m["cpu_s"]
            print(f"{name:<22} {mode:<8} {m['cpu_s']:10.3f} {m['wall_s']:11.3f} {m['faults']:11,.0f} {ratio:6.2f}x")


if __name__ == "__main__":
    main()
