"""Keep probabilities ``alpha(t)`` of masked diffusion and the MDLM loss weight (SPEC section 7). The
per-step unmask and re-mask probabilities are the shared `countsbench.methods.diffusion.transitions`.

``linear``: ``alpha = 1 - t`` (the toy task's "linear mutual-information" schedule, Austin et al. 2021).
``cosine``: ``alpha = cos(pi t / 2)`` (MDLM's cosine noise, used on scRNA).
The weight is ``w(t) = -alpha'(t) / (1 - alpha(t))`` with t clamped to [1e-3, 1].
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

MaskingScheduleName = Literal["linear", "cosine"]
MIN_WEIGHT_TIME = 1e-3


def keep_probability(name: MaskingScheduleName, t: Tensor | float) -> Tensor | float:
    """``alpha(t)``, the probability that a token is still unmasked at time t."""
    if name == "linear":
        return 1.0 - t
    if name == "cosine":
        return torch.cos(math.pi * t / 2) if isinstance(t, Tensor) else math.cos(math.pi * t / 2)
    raise ValueError(f"unknown masking schedule {name!r}; choose linear or cosine")


def loss_weight(name: MaskingScheduleName, t: Tensor) -> Tensor:
    """``-alpha'(t) / (1 - alpha(t))`` at ``t`` clamped to [1e-3, 1] (linear: 1 / t)."""
    t = t.clamp(MIN_WEIGHT_TIME, 1.0)
    if name == "linear":
        return 1.0 / t
    if name == "cosine":
        return (math.pi / 2) * torch.sin(math.pi * t / 2) / (1.0 - torch.cos(math.pi * t / 2))
    raise ValueError(f"unknown masking schedule {name!r}; choose linear or cosine")
