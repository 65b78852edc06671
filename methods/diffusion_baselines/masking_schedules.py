"""Keep probabilities ``alpha(t)`` of masked diffusion and the MDLM loss weight (SPEC section 7).

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


def unmask_probability(alpha_t: float, alpha_s: float, sigma: float) -> float:
    """Probability that a masked token is decoded in the step t -> s:
    ``(alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)``."""
    return (alpha_s - (1.0 - sigma) * alpha_t) / (1.0 - alpha_t)


def remask_probability(alpha_t: float, alpha_s: float, eta: float) -> float:
    """ReMDM-rescale: ``sigma = eta * sigma_max``, ``sigma_max = min(1, (1 - alpha_s) / alpha_t)`` (0 for MDLM)."""
    if alpha_t <= 0.0:
        return 0.0
    return eta * min(1.0, (1.0 - alpha_s) / alpha_t)
