"""FLOPs of a gene-transformer step by formula, and this CPU's measured matmul throughput.

Per layer and row of sequence length L (tokens incl. the time and condition tokens), embedding E and
feed-forward 4E, the forward's matrix products cost ``24 L E^2`` (QKV, output projection and the two
feed-forward products, 2 FLOPs per multiply-add) plus ``4 L^2 E`` (scores and the weighted sum);
a training step is 3x the forward (backward = 2 products per forward product). Elementwise work,
embeddings and the tiny input/head/time layers are left out (under 1% at the paper size). ``executed``
FLOPs count each implementation's padded sequences; ``useful`` ones each row's own valid genes only
(the work any implementation must do: the bound the benchmark's ``flop_bound_multiple`` is against).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import torch


def layer_flops(length: int, dim: int) -> float:
    """Forward FLOPs of one layer for one row of ``length`` tokens."""
    return 24.0 * length * dim * dim + 4.0 * length * length * dim


def forward_flops(lengths: Iterable[int], dim: int, n_layers: int) -> float:
    """Forward FLOPs of rows with the given sequence lengths."""
    return n_layers * sum(layer_flops(int(length), dim) for length in lengths)


def step_flops(lengths: Iterable[int], dim: int, n_layers: int, training: bool) -> float:
    """FLOPs of one training step (3x forward) or one forward."""
    return (3.0 if training else 1.0) * forward_flops(lengths, dim, n_layers)


def bucket_lengths(valid_counts: Sequence[int], n_extra: int, groups: Sequence[Sequence[int]]) -> list[int]:
    """Executed length of every row when each group of rows is padded to its longest row."""
    lengths = [0] * len(valid_counts)
    for group in groups:
        longest = max(max(valid_counts[i] for i in group), 1)
        for i in group:
            lengths[i] = n_extra + longest
    return lengths


def matmul_throughput(shapes: Sequence[tuple[int, int, int]], repeats: int = 5) -> dict:
    """Best FLOPs per CPU-second of ``torch.mm`` over the (M, K, N) shapes (process CPU time, the
    benchmark's thread setting); the most favourable shape makes the bound the hardest to reach."""
    best, per_shape = 0.0, {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.mm(a, b)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.process_time()
            torch.mm(a, b)
            times.append(time.process_time() - start)
        rate = 2.0 * m * k * n / max(sorted(times)[len(times) // 2], 1e-9)
        per_shape[f"{m}x{k}x{n}"] = rate
        best = max(best, rate)
    return {"flops_per_cpu_s": best, "per_shape": per_shape}
