"""`keep_large_blocks_in_heap`: after it, the pages of freed 64 MB tensors are reused by the next ones (few
page faults once the heap has grown to its steady size) instead of being mapped fresh from the kernel (one
fault a page), counted in child processes so this test process's allocator is left as it was; and training
logs whether it took effect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gamegpt.core.train import TrainConfig, train

FAULTS_OF_REPEATED_ALLOCATIONS = """
import resource, sys, torch
from gamegpt.core.heap import keep_large_blocks_in_heap
kept = keep_large_blocks_in_heap() if sys.argv[1] == "keep" else False
def step():
    torch.zeros(16 * 2**20).add_(1)  # 64 MB, freed at once, with small allocations around it (as in training)
for _ in range(10):
    step()  # the heap reaches its steady size (a small allocation may split the first freed block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _steady_faults(mode: str) -> tuple[bool, int]:
    """(whether the thresholds were raised, minor page faults of 10 allocations of 64 MB after 10 warm-up ones:
    in the first few, small allocations may split a freed block and push the next one onto fresh pages)."""
    out = subprocess.run([sys.executable, "-c", FAULTS_OF_REPEATED_ALLOCATIONS, mode], capture_output=True,
                         text=True, check=True, timeout=120).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_large_blocks_are_reused_instead_of_faulted_in_again() -> None:
    kept, faults_kept = _steady_faults("keep")
    plain, faults_plain = _steady_faults("plain")
    assert kept and not plain
    pages = 10 * 64 * 2**20 // 4096
    assert faults_plain > pages // 2  # mapped fresh each time: a fault on (nearly) every 4 KiB page
    assert faults_kept < pages // 5  # the heap's pages, already mapped (0 in 16 runs here)


def test_training_on_cpu_logs_that_the_heap_keeps_large_blocks(tictactoe_shards: Path, tmp_path: Path) -> None:
    train(TrainConfig(data_dir=str(tictactoe_shards), out_dir=str(tmp_path / "run"), max_steps=1, n_layer=1,
                      n_head=1, n_embd=8, batch_size=2, eval_batches=1, threads=1), progress=False)
    start = next(json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
                 if json.loads(line)["event"] == "start")
    assert start["heap_kept"] is sys.platform.startswith("linux")
