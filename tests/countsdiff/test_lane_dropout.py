"""LaneDropout (methods/countsdiff/networks/lane_dropout.py) is inverted dropout: drop rate p' within
sampling error on every lane of a word, unbiased, the gradient is the mask, identity in eval mode."""

from __future__ import annotations

import math

import pytest
import torch

from countsbench.methods.countsdiff.networks.lane_dropout import LANES, LaneDropout

N = 400_000


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_lane_drops_at_the_rate_and_the_output_is_unbiased(p):
    torch.manual_seed(0)
    layer = LaneDropout(p).train()
    out = layer(torch.ones(N))
    rate = layer.threshold / LANES
    assert abs(rate - p) <= 2**-17
    for lane in range(4):  # one 64-bit word's four 16-bit lanes: each must be uniform (no fixed top bit)
        dropped = (out[lane::4] == 0).double().mean().item()
        assert abs(dropped - rate) < 4 * math.sqrt(rate * (1 - rate) / (N / 4)), (lane, dropped)
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - rate)))
    assert abs(out.double().mean().item() - 1) < 4 * math.sqrt(rate / (1 - rate) / N)


def test_the_gradient_is_the_scaled_mask_and_masks_are_independent_of_shape():
    torch.manual_seed(1)
    x = torch.randn(33, 7, 5, requires_grad=True)  # 1,155 elements: not a multiple of 4
    out = LaneDropout(0.3).train()(x)
    out.sum().backward()
    scale = LANES / (LANES - round(0.3 * LANES))
    assert torch.equal(x.grad, (out != 0).float() * scale)
    assert torch.equal(out, x.detach() * x.grad)  # x times the scaled mask, exactly


def test_fixed_seed_repeats_and_eval_or_zero_is_the_identity():
    x = torch.randn(1000)
    torch.manual_seed(3)
    first = LaneDropout(0.2).train()(x)
    torch.manual_seed(3)
    assert torch.equal(first, LaneDropout(0.2).train()(x))
    assert LaneDropout(0.2).eval()(x) is x and LaneDropout(0.0).train()(x) is x
    with pytest.raises(ValueError, match="dropout probability"):
        LaneDropout(1.0)
