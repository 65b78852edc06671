"""The weighted Poisson-style loss of CountsDiff (SPEC section 3; paper eq. 6)."""

from __future__ import annotations

import torch
from torch import Tensor

LOG_EPS = 1e-8


def poisson_rate_loss(rate: Tensor, remaining: Tensor, weight: Tensor, valid: Tensor | None = None) -> Tensor:
    """``mean_b w(t_b) * mean_{valid j} [r - (x0 - x_t) ln(r + 1e-8)]``.

    ``rate`` is the predicted remaining births r (B, d), ``remaining`` the true ``x0 - x_t``, ``weight``
    (B,) the schedule's w(t), ``valid`` (B, d) the entries that count (None: all). The per-entry term is
    minimised by ``r = E[x0 - x_t | x_t]`` whatever the weight.
    """
    per_entry = rate - remaining * torch.log(rate + LOG_EPS)
    if valid is None:
        per_sample = per_entry.mean(dim=1)
    else:
        valid = valid.to(per_entry.dtype)
        per_sample = (per_entry * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1.0)
    return (weight.to(per_sample.dtype) * per_sample).mean()
