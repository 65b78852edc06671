"""The benchmark's FLOP formulas: the linear and attention parts add up to a layer and agree with torch's
FLOP counter; the attention throughput probe runs the kernel it reports on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.speed_flops import (  # noqa: E402
    attention_flops,
    attention_throughput,
    layer_flops,
    linear_flops,
    step_flops,
)


@pytest.mark.parametrize(("length", "dim"), [(1, 16), (37, 64), (300, 64)])
def test_linear_and_attention_parts_add_up_to_a_layer(length, dim):
    assert linear_flops(length, dim) + attention_flops(length, dim) == layer_flops(length, dim)
    lengths = [length, length + 5]
    whole = step_flops(lengths, dim, 3, training=True)
    parts = step_flops(lengths, dim, 3, True, linear_flops) + step_flops(lengths, dim, 3, True, attention_flops)
    assert parts == pytest.approx(whole, rel=1e-12)


def test_attention_flops_match_torch_flop_counter():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    rows, heads, length, dim = 3, 4, 29, 64
    q, k, v = (torch.randn(rows, heads, length, dim // heads) for _ in range(3))
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        F.scaled_dot_product_attention(q, k, v)
    assert counter.get_total_flops() == rows * attention_flops(length, dim)


@pytest.mark.parametrize("training", [False, True])
def test_attention_throughput_reports_its_shape_and_a_positive_rate(training):
    measured = attention_throughput(2, 11, 2, 16, training=training, repeats=1)
    assert measured["shape"] == {"rows": 2, "length": 11, "heads": 2, "head_dim": 8}
    assert measured["flops_per_cpu_s"] > 0
