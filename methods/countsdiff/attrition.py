"""Attrition (death-rate) schedules of the reverse process (SPEC section 4, step 3; paper Prop. 3.2).

``sigma`` must lie in ``[0, sigma_max]`` with ``sigma_max = min(1, (1 - alpha_s) / alpha_t)``, or the
birth probability ``beta`` leaves [0, 1]. A constant sigma violates this near t = 0, so it is not offered
(SPEC section 9, bug 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from countsbench.methods.diffusion.transitions import max_attrition

AttritionName = Literal["none", "max", "capped", "rescaled"]
ATTRITIONS = ("none", "max", "capped", "rescaled")


@dataclass(frozen=True)
class Attrition:
    """``none``: 0 (pure birth, Blackout); ``max``: sigma_max; ``capped``: min(eta, sigma_max);
    ``rescaled``: eta * sigma_max (ReMDM-rescale, the paper's default)."""

    name: AttritionName = "rescaled"
    eta: float = 0.02

    def __post_init__(self) -> None:
        if self.name not in ATTRITIONS:
            raise ValueError(
                f"unknown attrition {self.name!r}; choose one of {', '.join(ATTRITIONS)} "
                "(a constant rate is not valid near t = 0)"
            )
        if not math.isfinite(self.eta) or self.eta < 0 or (self.name == "rescaled" and self.eta > 1):
            raise ValueError(f"attrition eta must be in [0, 1] (rescaled) or >= 0 (capped), got {self.eta}")

    def __call__(self, alpha_t: float, alpha_s: float) -> float:
        if self.name == "none":
            return 0.0
        sigma_max = max_attrition(alpha_t, alpha_s)
        if self.name == "max":
            return sigma_max
        if self.name == "capped":
            return min(self.eta, sigma_max)
        return self.eta * sigma_max
