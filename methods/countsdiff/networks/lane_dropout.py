"""Dropout whose keep mask comes from 16-bit lanes of 64-bit random words: `nn.Dropout`'s operation,
cheaper on the CPU (a shorter paper-network training step; docs/performance.md has the figures).

torch's CPU ``bernoulli_`` (behind `nn.Dropout`) costs ~5-6 ns an element on a 2-core CPU, 8x a multiply,
and was 19% of the bucketed paper-network training step (docs/performance.md). Here one ``random_`` int64
word gives four uniform 16-bit lanes, and an element is kept when its lane is at or above
``k = round(p 2^16)``: the drop probability is ``p' = k / 2^16`` (``|p' - p| <= 2^-17``; 0.1 -> 0.100006)
and kept values are scaled by ``1 / (1 - p')``, so the output is unbiased. The mask is built once as a
scaled float tensor (saved for the backward: 4 bytes an element where a bool mask takes 1), which spares
the float-by-bool product's two casts (forward and backward). Off the CPU it is `F.dropout` (CUDA's fused
kernel is cheap already).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

LANES = 1 << 16


class LaneDropout(nn.Module):
    """Inverted dropout with drop probability ``round(p 2^16) / 2^16`` (identity in eval mode or at p = 0)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        threshold = round(p * LANES)
        if not 0.0 <= p < 1.0 or threshold >= LANES:
            raise ValueError(f"dropout probability must be in [0, 1 - 2^-17), got {p}")
        self.p, self.threshold = p, threshold
        self.scale = LANES / (LANES - threshold)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.threshold == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
        lanes = words.view(torch.int16)[:n].view(x.shape)  # uniform on [-2^15, 2^15)
        # the scaled float mask, built once: a float-by-bool product would cast the mask forward and backward
        mask = (lanes >= self.threshold - LANES // 2).to(x.dtype).mul_(self.scale)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
