"""The cosine DDPM noise schedule (Nichol & Dhariwal 2021; SPEC section 7): offset s = 0.008, beta <= 0.999."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

COSINE_OFFSET = 0.008
MAX_BETA = 0.999


@dataclass(frozen=True)
class CosineDDPMSchedule:
    """``alpha_bar`` on the grid k = 0..T (k = 0 clean), from ``f(t) = cos^2((t + s) / (1 + s) * pi / 2)``.

    ``beta_k = min(1 - f(k/T) / f((k-1)/T), 0.999)`` and ``alpha_bar_k = prod_{i <= k} (1 - beta_i)``.
    """

    n_train_steps: int = 1000

    @property
    def alpha_bar(self) -> np.ndarray:
        t = np.arange(self.n_train_steps + 1, dtype=np.float64) / self.n_train_steps
        f = np.cos((t + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
        betas = np.minimum(1.0 - f[1:] / f[:-1], MAX_BETA)
        return np.concatenate([[1.0], np.cumprod(1.0 - betas)])

    def sampling_indices(self, n_steps: int) -> np.ndarray:
        """``n_steps + 1`` grid indices from T down to 0, evenly spaced (respacing; the posterior between
        any two grid points is exact)."""
        if not 1 <= n_steps <= self.n_train_steps:
            raise ValueError(f"n_steps must be in [1, {self.n_train_steps}], got {n_steps}")
        return np.round(np.linspace(self.n_train_steps, 0, n_steps + 1)).astype(np.int64)


def posterior(alpha_bar_t: float, alpha_bar_s: float) -> tuple[float, float, float]:
    """DDPM posterior ``q(x_s | x_t, x0) = N(c0 x0 + ct x_t, var)`` for grid points s < t (Ho et al. eq. 7).

    With ``beta = 1 - alpha_bar_t / alpha_bar_s`` (clipped to 0.999): ``c0 = sqrt(abar_s) beta / (1 - abar_t)``,
    ``ct = sqrt(1 - beta) (1 - abar_s) / (1 - abar_t)``, ``var = beta (1 - abar_s) / (1 - abar_t)``.
    """
    beta = min(1.0 - alpha_bar_t / alpha_bar_s, MAX_BETA)
    c0 = math.sqrt(alpha_bar_s) * beta / (1.0 - alpha_bar_t)
    ct = math.sqrt(1.0 - beta) * (1.0 - alpha_bar_s) / (1.0 - alpha_bar_t)
    return c0, ct, beta * (1.0 - alpha_bar_s) / (1.0 - alpha_bar_t)
