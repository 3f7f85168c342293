"""Keep a training process's large freed blocks for reuse instead of handing them back to the kernel.

glibc's malloc serves every request above its mmap threshold (32 MiB at most, by default) with fresh pages
from the kernel and returns them on free. A training step's largest temporaries are above it: the float32
log-probabilities of every scored position (16 x 511 positions x 2,001 tokens = 65 MB for a chess batch), their
gradient, the bfloat16 logits; so every step page-faults them in again, and on a 2-core Xeon that cost 0.2 of
a 1.3 CPU-second step (`python bench/bench_heap.py` measures it). Raising the threshold above those sizes makes
malloc keep them in its heap, where later steps reuse them (after a few steps: a small allocation may split a
freed block, and the next large one then grows the heap). Elsewhere (macOS, musl, Windows) nothing changes.
"""

from __future__ import annotations

import ctypes
import sys

MMAP_THRESHOLD_BYTES = 1 << 30
"""Blocks up to 1 GiB come from the reusable heap."""
TRIM_THRESHOLD_BYTES = (1 << 31) - 1
"""Free memory at the top of the heap is returned to the kernel only above 2 GiB (mallopt takes a C int)."""
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_large_blocks_in_heap() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (see the module docstring); True if glibc took
    them, False where there is no glibc `mallopt`. The process keeps up to its peak heap size allocated."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                                    TRIM_THRESHOLD_BYTES))
