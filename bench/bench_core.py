"""Benchmark of the training core: training throughput by setting, move decoding with and without KV cache.

    python bench/bench_core.py [--quick] [--threads N]

Every figure is printed next to a reference measured in the same run, because absolute numbers drift
between runs and machines (and other processes may share the CPU):

(a) training tokens/s of a small GPT (4 layers x 256 wide, T=256, B=16) under each setting, and its ratio
    to plain float32 (foreach AdamW, N threads), which is timed twice to show the noise of the run: fused
    AdamW, the training defaults (TrainConfig's dtype resolved on this machine, whose bfloat16 capability
    is printed; on N threads and on torch's default count), bfloat16 autocast, torch.compile (its one-time
    compile is printed apart), 2N threads, and two shapes (8 heads of 32; 240 wide, not a multiple of 64;
    compare those by FLOP/s, their FLOPs differ). Steps are timed round-robin, one step of each setting in
    turn, so a change in the machine's load hits every setting alike, and each is its fastest step (a
    setting more than 5x slower than the reference is timed once). Then the model FLOP/s (6 x params +
    attention per token, nanoGPT's estimate) against the FLOP/s of torch.matmul on the model's own MLP
    shape, and the optimizer step alone (fused vs foreach);
(a2) the output layer only where a target exists vs at every position, on batches shaped like the
    chess-position-move codec's (74-token samples, a 2001-token vocabulary, one scored target per sample);
(b) time to produce one move (6 tokens, one at a time, greedy) after a history of P tokens:
    - kv cache: the cache already holds the history up to the opponent's last move (6 tokens), which is
      fed in one chunk, then 6 tokens are generated (what a player that keeps the common prefix does);
    - cold cache: the whole history is fed into an empty cache, then 6 tokens;
    - recompute: every new token re-reads the whole sequence (nanoGPT's `generate`).
    Printed as ms per move and the ratio recompute / kv cache.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamegpt.core.model import GPT, GPTConfig  # noqa: E402
from gamegpt.core.train import TrainConfig, native_bfloat16, resolve_dtype  # noqa: E402

DEFAULT_THREADS = torch.get_num_threads()

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
    """GFLOP/s of torch.matmul on (rows x inner) @ (inner x cols), float32: its fastest of `repeats`."""
    a = torch.randn(rows, inner)
    b = torch.randn(inner, cols)
    timed(lambda: torch.matmul(a, b), repeats=1, warmup=2)
    seconds = min(timed(lambda: torch.matmul(a, b), repeats=1, warmup=0) for _ in range(repeats))
    return 2.0 * rows * inner * cols / seconds / 1e9


@dataclass
class Setting:
    """One way of running a training step, with what its speed is compared by."""

    name: str
    step: Callable[[], None]
    tokens_per_step: int
    flops_per_token: float
    threads: int
    times: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """The fastest timed step: other processes on the machine only ever slow a step down."""
        return min(self.times)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_per_step / self.seconds


def flops_per_token(model: GPT, context: int) -> float:
    """nanoGPT's estimate of training FLOPs per token (PaLM appendix B): 6 x params + attention."""
    c = model.config
    return 6 * model.num_params() + 12 * c.n_layer * c.n_embd * context


def training_step(
    config: GPTConfig, batch: int, *, fused: bool | None, dtype: str = "float32", compile: bool = False,
    scored_only: bool = True, targets_scored: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[Callable[[], None], GPT]:
    """One training step (forward, backward, clip, AdamW) of a fresh model on a fixed random batch.

    `fused` goes to configure_optimizer (None: its default). `scored_only=False` sends every position
    through the output layer (forward's all_positions=True), as before logits were computed only where a
    target exists; `targets_scored` may set targets to -1.
    """
    torch.manual_seed(0)
    model = GPT(config)
    optimizer = model.configure_optimizer(0.1, 3e-4, (0.9, 0.95), "cpu", fused=fused)
    generator = torch.Generator().manual_seed(1)
    x = torch.randint(0, config.vocab_size, (batch, config.block_size), generator=generator)
    y = torch.randint(0, config.vocab_size, (batch, config.block_size), generator=generator)
    if targets_scored is not None:
        y = targets_scored(y)
    forward = torch.compile(model) if compile else model
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bfloat16" else contextlib.nullcontext

    def step() -> None:
        with autocast():
            _, loss = forward(x, y, all_positions=not scored_only)
        assert loss is not None
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step, model


def run_step(setting: Setting) -> float:
    """Seconds of one step of `setting`, on its thread count."""
    torch.set_num_threads(setting.threads)
    started = time.perf_counter()
    setting.step()
    return time.perf_counter() - started


def time_round_robin(settings: list[Setting], repeats: int) -> None:
    """Warm every setting up, then time one step of each in turn, `repeats` rounds (the first setting is the
    reference; one more than 5x slower than it is timed once)."""
    warmup = [run_step(s) for s in settings]
    slow = [w > 5 * warmup[0] for w in warmup]
    for round_number in range(repeats):
        for setting, is_slow in zip(settings, slow):
            if not (is_slow and round_number > 0):
                setting.times.append(run_step(setting))


def print_settings(settings: list[Setting], flops: bool = True) -> None:
    """A table of the settings, each with its tokens/s over the first one's (`flops`: with model GFLOP/s)."""
    reference = settings[0]
    print(f"    {'setting':<52} {'tokens/s':>9} {'ms/step':>9} {'GFLOP/s' if flops else '':>8} {'ratio':>7}")
    for s in settings:
        gflops = f"{s.flops_per_token * s.tokens_per_second / 1e9:8.1f}" if flops else " " * 8
        timed = f"  (best of {len(s.times)})" if len(s.times) > 1 else "  (timed once)"
        print(f"    {s.name:<52} {s.tokens_per_second:9,.0f} {s.seconds * 1000:9.1f} {gflops} "
              f"{s.tokens_per_second / reference.tokens_per_second:6.2f}x{timed}")


def optimizer_step_ms(config: GPTConfig, fused: bool, repeats: int) -> float:
    """Median ms of one AdamW step alone on a model's parameters (gradients set once)."""
    torch.manual_seed(0)
    model = GPT(config)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    optimizer = model.configure_optimizer(0.1, 3e-4, (0.9, 0.95), "cpu", fused=fused)
    return timed(optimizer.step, repeats=repeats, warmup=2) * 1000


def bench_training(quick: bool, threads: int) -> None:
    n_layer, n_embd, n_head, T, B, vocab = 4, 256, 4, 256, 16, 32
    repeats = 3 if quick else 6
    config = GPTConfig(vocab_size=vocab, block_size=T, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    cpu = torch.device("cpu")
    native, why = native_bfloat16(cpu)
    auto_dtype, _ = resolve_dtype("auto", cpu)
    defaults = TrainConfig(data_dir="-", out_dir="-")  # what `gamegpt train` uses unless told otherwise
    default_dtype, _ = resolve_dtype(defaults.dtype, cpu)
    print(f"(a) training {n_layer}x{n_embd} (T={T}, B={B}), {threads} thread(s) unless named; every ratio is "
          f"against the first row, same run")
    print(f"    bfloat16 in hardware: {'yes' if native else 'no'} ({why}), so dtype auto trains in {auto_dtype}; "
          f"threads=None (the default) is torch's {DEFAULT_THREADS} here")

    def setting(name: str, shape: GPTConfig = config, threads_used: int = threads, **options: Any) -> Setting:
        step, model = training_step(shape, B, **options)
        return Setting(name, step, B * T, flops_per_token(model, T), threads_used)

    default_options: dict[str, Any] = dict(fused=None, dtype=default_dtype, compile=defaults.compile)
    settings = [
        setting("fp32, foreach AdamW (reference)", fused=False),
        setting("fp32, foreach AdamW (reference again: the noise)", fused=False),
        setting("fp32, fused AdamW", fused=True),
        setting(f"training defaults (dtype {defaults.dtype}: {default_dtype}, fused AdamW)", **default_options),
    ]
    if DEFAULT_THREADS != threads:
        settings.append(setting(f"training defaults, threads=None ({DEFAULT_THREADS} here)",
                                threads_used=DEFAULT_THREADS, **default_options))
    settings += [
        setting("bf16 autocast, fused AdamW", fused=True, dtype="bfloat16"),
        setting(f"fp32, foreach AdamW, {2 * threads} threads", threads_used=2 * threads, fused=False),
        setting("fp32, foreach, shape: 8 heads of 32 (same params)",
                GPTConfig(vocab_size=vocab, block_size=T, n_layer=n_layer, n_head=8, n_embd=n_embd), fused=False),
        setting("fp32, foreach, shape: 240 wide, 4 heads of 60",
                GPTConfig(vocab_size=vocab, block_size=T, n_layer=n_layer, n_head=4, n_embd=240), fused=False),
    ]
    torch.set_num_threads(threads)
    compiled = setting("fp32, foreach AdamW, torch.compile (inductor)", fused=False, compile=True)
    started = time.perf_counter()
    run_step(compiled)
    compile_seconds = time.perf_counter() - started
    settings.append(compiled)
    time_round_robin(settings, repeats)
    torch.set_num_threads(threads)
    print_settings(settings)
    print(f"    torch.compile: its first step (compiling) took {compile_seconds:.0f} s, not counted above")

    reference = settings[0]
    ceiling = matmul_gflops(B * T, n_embd, 4 * n_embd, repeats=5 if quick else 10)
    achieved = reference.flops_per_token * reference.tokens_per_second / 1e9
    print(f"    fp32 model FLOP/s {achieved:7.1f} GFLOP/s   matmul ceiling {ceiling:7.1f} GFLOP/s   "
          f"ratio {achieved / ceiling:.2f}")
    foreach_ms = optimizer_step_ms(config, fused=False, repeats=10 if quick else 30)
    fused_ms = optimizer_step_ms(config, fused=True, repeats=10 if quick else 30)
    print(f"    AdamW step alone: foreach {foreach_ms:.1f} ms, fused {fused_ms:.1f} ms "
          f"({foreach_ms / fused_ms:.1f}x); a training step is {reference.seconds * 1000:.0f} ms")


def one_target_per_sample(targets: torch.Tensor) -> torch.Tensor:
    """Every target -1 but the last of each row: one scored move per position sample."""
    scored = torch.full_like(targets, -1)
    scored[:, -1] = targets[:, -1]
    return scored


def bench_output_layer(quick: bool, threads: int) -> None:
    vocab, T, B = 2001, 73, 56
    config = GPTConfig(vocab_size=vocab, block_size=T, n_layer=4, n_head=4, n_embd=256)
    print(f"(a2) output layer where a target exists, 4x256 on {B} samples of {T + 1} tokens, vocab {vocab}, "
          f"one scored target per sample, fp32, fused AdamW, {threads} thread(s)")
    settings = []
    for name, scored_only in (("every position through the output layer (reference)", False),
                              ("only positions with a target (the default)", True)):
        step, model = training_step(config, B, fused=True, scored_only=scored_only,
                                    targets_scored=one_target_per_sample)
        settings.append(Setting(name, step, B * T, flops_per_token(model, T), threads))
    time_round_robin(settings, 3 if quick else 8)
    torch.set_num_threads(threads)
    print_settings(settings, flops=False)


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
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    started = time.perf_counter()
    bench_training(args.quick, args.threads)
    bench_output_layer(args.quick, args.threads)
    small = GPTConfig(vocab_size=32, block_size=256, n_layer=4, n_head=4, n_embd=256)
    karvonen = GPTConfig(vocab_size=32, block_size=1023, n_layer=8, n_head=8, n_embd=512)
    bench_decoding("a small shape", small, [10, 40, 80], repeats=3 if args.quick else 5)
    bench_decoding("Karvonen's 25M shape", karvonen, [10, 80] if args.quick else [10, 40, 80, 560],
                   repeats=1 if args.quick else 3)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
