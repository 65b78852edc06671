"""Random rounding (SPEC section 4, step 2; paper section 3.5)."""

from __future__ import annotations

import torch
from torch import Tensor


def random_round(r: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``floor(r) + Bernoulli(r - floor(r))``: unbiased, ``E[n] = r`` (plain rounding zeroes small rates)."""
    floor = torch.floor(r)
    return floor + (torch.rand(r.shape, generator=generator, device=r.device) < (r - floor)).to(r.dtype)
