"""Benchmark of the training core: training throughput and move decoding with and without the KV cache.

    python bench/bench_core.py [--quick] [--threads N]

Every figure is printed next to a reference measured in the same run, because absolute numbers drift
between runs and machines:

(a) training tokens/s for a small GPT (4 layers x 256 wide, T=256, B=16), as model FLOP/s
    (6 x params + attention, per token, nanoGPT's estimate) against the FLOP/s torch.matmul reaches
    on a matmul of the model's own shape (B*T x n_embd @ n_embd x 4*n_embd) on the same threads;
(b) time to produce one move (6 tokens, one at a time, greedy) after a history of P tokens:
    - kv cache: the cache already holds the history up to the opponent's last move (6 tokens), which is
      fed in one chunk, then 6 tokens are generated (what a player that keeps the common prefix does);
    - cold cache: the whole history is fed into an empty cache, then 6 tokens;
    - recompute: every new token re-reads the whole sequence (nanoGPT's `generate`).
    Printed as ms per move and the ratio recompute / kv cache.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamegpt.core.model import GPT, GPTConfig  # noqa: E402

MOVE_TOKENS = 6


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `fn` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(rows: int, inner: int, cols: int, repeats: int) -> float:
    """GFLOP/s of torch.matmul on (rows x inner) @ (inner x cols), float32."""
    a = torch.randn(rows, inner)
    b = torch.randn(inner, cols)
    seconds = timed(lambda: torch.matmul(a, b), repeats=repeats, warmup=2)
    return 2.0 * rows * inner * cols / seconds / 1e9


def bench_training(quick: bool) -> None:
    n_layer, n_embd, n_head, T, B, vocab = 4, 256, 4, 256, 16, 32
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=vocab, block_size=T, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    model = GPT(config)
    optimizer = model.configure_optimizer(0.1, 3e-4, (0.9, 0.95), "cpu")
    x = torch.randint(0, vocab, (B, T))
    y = torch.randint(0, vocab, (B, T))

    def step() -> None:
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        assert loss is not None
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    seconds = timed(step, repeats=3 if quick else 6, warmup=2)
    tokens_per_second = B * T / seconds
    params = model.num_params()
    flops_per_token = 6 * params + 12 * n_layer * n_embd * T  # nanoGPT's estimate (PaLM appendix B)
    achieved = flops_per_token * tokens_per_second / 1e9
    ceiling = matmul_gflops(B * T, n_embd, 4 * n_embd, repeats=5 if quick else 10)
    print(f"(a) training {n_layer}x{n_embd} (T={T}, B={B}, {params / 1e6:.2f}M params, fp32)")
    print(f"    {tokens_per_second:10,.0f} tokens/s   {seconds * 1000:8.1f} ms/step")
    print(f"    model FLOP/s {achieved:7.1f} GFLOP/s   matmul ceiling {ceiling:7.1f} GFLOP/s   "
          f"ratio {achieved / ceiling:.2f}")


@torch.no_grad()
def decode_kv_cache(model: GPT, history: torch.Tensor, cache_holds: int) -> Callable[[], None]:
    """Per move: feed the history tokens the cache lacks in one chunk, then generate MOVE_TOKENS tokens."""
    cache = model.new_cache()
    model(history[:, :cache_holds], cache=cache)

    def move() -> None:
        cache.truncate(cache_holds)  # back to the kept common prefix for the next repeat
        logits, _ = model(history[:, cache_holds:], cache=cache)
        for _ in range(MOVE_TOKENS):
            token = logits[:, -1].argmax(dim=-1, keepdim=True)
            logits, _ = model(token, cache=cache)

    return move


@torch.no_grad()
def decode_cold_cache(model: GPT, history: torch.Tensor) -> Callable[[], None]:
    def move() -> None:
        cache = model.new_cache()
        logits, _ = model(history, cache=cache)
        for _ in range(MOVE_TOKENS):
            token = logits[:, -1].argmax(dim=-1, keepdim=True)
            logits, _ = model(token, cache=cache)

    return move


@torch.no_grad()
def decode_recompute(model: GPT, history: torch.Tensor) -> Callable[[], None]:
    def move() -> None:
        sequence = history
        for _ in range(MOVE_TOKENS):
            logits, _ = model(sequence)
            token = logits[:, -1].argmax(dim=-1, keepdim=True)
            sequence = torch.cat([sequence, token], dim=1)

    return move


def bench_decoding(name: str, config: GPTConfig, prefixes: list[int], repeats: int) -> None:
    torch.manual_seed(0)
    model = GPT(config).eval()
    print(f"(b) decoding one move ({MOVE_TOKENS} tokens) on {name}: {config.n_layer}x{config.n_embd}, "
          f"block {config.block_size}, vocab {config.vocab_size}, {model.num_params() / 1e6:.1f}M params")
    print(f"    {'history':>8} {'kv cache':>11} {'cold cache':>11} {'recompute':>11} {'recompute/kv':>13}")
    for prefix in prefixes:
        history = torch.randint(0, config.vocab_size, (1, prefix), generator=torch.Generator().manual_seed(prefix))
        kept = max(1, prefix - MOVE_TOKENS)
        kv = timed(decode_kv_cache(model, history, kept), repeats)
        cold = timed(decode_cold_cache(model, history), repeats)
        recompute = timed(decode_recompute(model, history), repeats)
        print(f"    {prefix:>8} {kv * 1000:>8.1f} ms {cold * 1000:>8.1f} ms {recompute * 1000:>8.1f} ms "
              f"{recompute / kv:>12.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and shorter histories")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), fp32, CPU")
    started = time.perf_counter()
    bench_training(args.quick)
    small = GPTConfig(vocab_size=32, block_size=256, n_layer=4, n_head=4, n_embd=256)
    karvonen = GPTConfig(vocab_size=32, block_size=1023, n_layer=8, n_head=8, n_embd=512)
    bench_decoding("a small shape", small, [10, 40, 80], repeats=3 if args.quick else 5)
    bench_decoding("Karvonen's 25M shape", karvonen, [10, 80] if args.quick else [10, 40, 80, 560],
                   repeats=1 if args.quick else 3)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
