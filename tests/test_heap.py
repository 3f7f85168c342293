"""`keep_large_blocks_in_heap`: after it, a freed 64 MB tensor's pages are reused by the next one (few page
faults) instead of being mapped fresh from the kernel (one fault a page), counted in child processes so this
test process's allocator is left as it was; and training logs whether it took effect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gamegpt.core.train import TrainConfig, train

FAULTS_OF_SECOND_ALLOCATION = """
import resource, sys, torch
from gamegpt.core.heap import keep_large_blocks_in_heap
kept = keep_large_blocks_in_heap() if sys.argv[1] == "keep" else False
torch.zeros(16 * 2**20).add_(1)  # 64 MB, freed at once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.zeros(16 * 2**20).add_(1)
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_allocation(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", FAULTS_OF_SECOND_ALLOCATION, mode], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_large_block_is_reused_instead_of_faulted_in_again() -> None:
    kept, faults_kept = _second_allocation("keep")
    plain, faults_plain = _second_allocation("plain")
    assert kept and not plain
    pages = 64 * 2**20 // 4096
    assert faults_plain > pages // 2  # mapped fresh: a fault on (nearly) every 4 KiB page
    assert faults_kept < pages // 20  # the heap's pages, already mapped


def test_training_on_cpu_logs_that_the_heap_keeps_large_blocks(tictactoe_shards: Path, tmp_path: Path) -> None:
    train(TrainConfig(data_dir=str(tictactoe_shards), out_dir=str(tmp_path / "run"), max_steps=1, n_layer=1,
                      n_head=1, n_embd=8, batch_size=2, eval_batches=1, threads=1), progress=False)
    start = next(json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
                 if json.loads(line)["event"] == "start")
    assert start["heap_kept"] is sys.platform.startswith("linux")
