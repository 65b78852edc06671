"""FLOPs of a gene-transformer step by formula, and this CPU's measured matmul throughput.

Per layer and row of sequence length L (tokens incl. the time and condition tokens), embedding E and
feed-forward 4E, the forward's matrix products cost ``24 L E^2`` (QKV, output projection and the two
feed-forward products, 2 FLOPs per multiply-add) plus ``4 L^2 E`` (scores and the weighted sum);
a training step is 3x the forward (backward = 2 products per forward product). Elementwise work,
embeddings and the tiny input/head/time layers are left out (under 1% at the paper size). ``executed``
FLOPs count each implementation's padded sequences; ``useful`` ones each row's own valid genes only
(the work any implementation must do: the bound the benchmark's ``flop_bound_multiple`` is against).

`attention_throughput` measures what the attention products run at in PyTorch's own kernel: at the
paper's head dimension 16 each score costs 4 x 16 = 64 FLOPs of products but also an ``exp`` (and its
recomputation in the flash backward), so attention cannot run at the matmul rate the bound assumes.
``kernel_bound_multiple`` (the benchmark) prices the linear layers at the matmul rate and attention at
this measured rate: how far a step is from what its kernels allow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import torch


def linear_flops(length: int, dim: int) -> float:
    """Forward FLOPs of one layer's linear products (QKV, output projection, feed-forward), one row."""
    return 24.0 * length * dim * dim


def attention_flops(length: int, dim: int) -> float:
    """Forward FLOPs of one layer's attention products (scores and weighted sum), one row."""
    return 4.0 * length * length * dim


def layer_flops(length: int, dim: int) -> float:
    """Forward FLOPs of one layer for one row of ``length`` tokens."""
    return linear_flops(length, dim) + attention_flops(length, dim)


def forward_flops(lengths: Iterable[int], dim: int, n_layers: int, part=layer_flops) -> float:
    """Forward FLOPs of rows with the given sequence lengths (``part``: one of the per-layer counts)."""
    return n_layers * sum(part(int(length), dim) for length in lengths)


def step_flops(lengths: Iterable[int], dim: int, n_layers: int, training: bool, part=layer_flops) -> float:
    """FLOPs of one training step (3x forward) or one forward."""
    return (3.0 if training else 1.0) * forward_flops(lengths, dim, n_layers, part)


def bucket_lengths(valid_counts: Sequence[int], n_extra: int, groups: Sequence[Sequence[int]]) -> list[int]:
    """Executed length of every row when each group of rows is padded to its longest row."""
    lengths = [0] * len(valid_counts)
    for group in groups:
        longest = max(max(valid_counts[i] for i in group), 1)
        for i in group:
            lengths[i] = n_extra + longest
    return lengths


def _timed(fn: Callable[[], object], device: str, repeats: int) -> float:
    """Median seconds of ``fn`` after one warm-up: process CPU time on the CPU, synchronised wall time on
    CUDA (the benchmark's clocks)."""
    clock = time.perf_counter if device == "cuda" else time.process_time
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fn()
    times = []
    for _ in range(repeats):
        sync()
        start = clock()
        fn()
        sync()
        times.append(clock() - start)
    return max(sorted(times)[len(times) // 2], 1e-9)


def matmul_throughput(
    shapes: Sequence[tuple[int, int, int]], repeats: int = 5, device: str = "cpu", dtype=torch.float32
) -> dict:
    """Best FLOPs per second of ``torch.mm`` over the (M, K, N) shapes (per CPU-second on the CPU, at the
    benchmark's thread setting; ``dtype`` bf16 on CUDA, where the steps run under bf16 autocast); the
    most favourable shape makes the bound the hardest to reach. The product is written into a
    preallocated output: a fresh 30 MB one per call costs page faults, which are the allocator's time,
    not the kernel's (64 against 185 GFLOP/s for 30000 x 64 x 256 here)."""
    best, per_shape = 0.0, {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
        out = torch.empty(m, n, device=device, dtype=dtype)
        rate = 2.0 * m * k * n / _timed(lambda a=a, b=b, out=out: torch.mm(a, b, out=out), device, repeats)
        per_shape[f"{m}x{k}x{n}"] = rate
        best = max(best, rate)
    return {"flops_per_cpu_s": best, "per_shape": per_shape}


def attention_throughput(
    rows: int,
    length: int,
    n_heads: int,
    dim: int,
    training: bool,
    repeats: int = 5,
    device: str = "cpu",
    dtype=torch.float32,
) -> dict:
    """FLOPs (`attention_flops`, 3x in training) per second (as `matmul_throughput`) of
    ``scaled_dot_product_attention`` on ``rows`` random sequences of ``length`` tokens (forward, or
    forward + backward), median of repeats."""
    from torch.nn import functional as F

    head = dim // n_heads
    shape = (rows, n_heads, length, head)
    q, k, v = (torch.randn(shape, device=device, dtype=dtype, requires_grad=training) for _ in range(3))

    def run() -> None:
        if training:
            F.scaled_dot_product_attention(q, k, v).sum().backward()
        else:
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v)

    flops = (3.0 if training else 1.0) * rows * attention_flops(length, dim)
    shape = {"rows": rows, "length": length, "heads": n_heads, "head_dim": head}
    return {"flops_per_cpu_s": flops / _timed(run, device, repeats), "shape": shape}
