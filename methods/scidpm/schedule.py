"""The scIDPMs noise schedule and its strided (DDIM-style) ancestral sampler step.

Quadratic betas ``beta_t = (linspace(sqrt(b0), sqrt(b1), T))^2`` (CSDI's "quad", b0 1e-4, b1 0.5,
T 300), ``abar_t = prod_{s<=t}(1 - beta_s)``. Forward: ``x_t = sqrt(abar_t) x0 + sqrt(1-abar_t) eps``.
Reverse on a sub-grid t > t' (Song et al. 2021, DDIM eq. 12):
``x_t' = sqrt(abar_t') x0_hat + sqrt(1 - abar_t' - sigma^2) eps_hat + sigma z`` with
``x0_hat = (x_t - sqrt(1-abar_t) eps_hat) / sqrt(abar_t)`` and
``sigma = eta sqrt((1-abar_t')/(1-abar_t)) sqrt(1 - abar_t/abar_t')``; eta = 1 on the full grid is
exactly the DDPM ancestral sampler that scIDPMs uses, eta = 0 is deterministic DDIM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuadraticSchedule:
    n_steps: int = 300
    beta_start: float = 1e-4
    beta_end: float = 0.5

    @property
    def alpha_bar(self) -> np.ndarray:
        """(T,) float64 cumulative products, index t = 0..T-1."""
        betas = np.linspace(self.beta_start**0.5, self.beta_end**0.5, self.n_steps) ** 2
        return np.cumprod(1.0 - betas)

    def sampling_grid(self, n_sample_steps: int) -> list[int]:
        """Descending distinct step indices from T-1 to 0 (all T of them when n_sample_steps >= T)."""
        count = min(max(n_sample_steps, 1), self.n_steps)
        return sorted({int(round(v)) for v in np.linspace(self.n_steps - 1, 0, count)}, reverse=True)


def strided_step_coefficients(alpha_bar_t: float, alpha_bar_prev: float, eta: float) -> tuple[float, float, float]:
    """(c_x, c_eps, sigma) with ``x_prev = c_x x_t + c_eps eps_hat + sigma z`` (float64; abar_t can be 1e-24)."""
    sigma = (
        eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) * math.sqrt(max(1 - alpha_bar_t / alpha_bar_prev, 0))
    )
    ratio = math.sqrt(alpha_bar_prev / alpha_bar_t)
    c_eps = math.sqrt(max(1 - alpha_bar_prev - sigma**2, 0.0)) - ratio * math.sqrt(1 - alpha_bar_t)
    return ratio, c_eps, sigma
