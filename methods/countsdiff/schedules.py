"""alpha-schedules of the pure-death forward process (SPEC sections 1-2; paper section 3.1, App. B.2).

A schedule is a small object: the survival probability ``alpha(t)`` (normalised to exact endpoints
``alpha(0) = 1``, ``alpha(1) = 0``), the loss weight ``w(t)``, how training draws times, and the time grid
of the reverse process. A continuous schedule only writes ``raw_alpha``; its weight ``w = -alpha'(t)`` is
taken by autograd in float64 (one mechanism for every schedule). ``fi_discrete`` lives on ONE float64
grid ``k = 0..K`` indexed by the integer ``k`` (SPEC section 9, bug 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

TimeSpacing = Literal["time", "alpha"]
F64 = torch.float64


@dataclass(frozen=True)
class TrainingTimes:
    """A batch of training times with their survival probabilities and loss weights (float64)."""

    t: Tensor
    alpha: Tensor
    weight: Tensor


@dataclass(frozen=True)
class SamplingGrid:
    """Reverse-process grid: ``t`` decreasing from 1 to 0 and ``alpha(t)`` (float64 arrays, n_steps + 1)."""

    t: np.ndarray
    alpha: np.ndarray
    spacing: str

    @property
    def n_steps(self) -> int:
        return len(self.t) - 1


class AlphaSchedule:
    """Base class: a continuous, decreasing ``raw_alpha`` normalised to exact endpoints (SPEC section 1)."""

    name: str = ""

    def raw_alpha(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def alpha(self, t: Tensor | float) -> Tensor:
        """``(raw(t) - raw(1)) / (raw(0) - raw(1))`` in float64."""
        t = torch.as_tensor(t, dtype=F64)
        a0, a1 = self.raw_alpha(torch.zeros((), dtype=F64)), self.raw_alpha(torch.ones((), dtype=F64))
        return (self.raw_alpha(t) - a1) / (a0 - a1)

    def weight(self, t: Tensor | float) -> Tensor:
        """``w(t) = -alpha'(t)`` by autograd (SPEC section 2; integrates to 1 over [0, 1])."""
        t = torch.as_tensor(t, dtype=F64).detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.alpha(t).sum(), t)
        return -grad.detach()

    def training_times(self, n: int, generator: torch.Generator | None, stratified: bool = False) -> TrainingTimes:
        """``t ~ U(0, 1)``; ``stratified`` spreads the batch over [0, 1) (low-discrepancy, as MDLM)."""
        u = torch.rand(n, generator=generator, dtype=F64)
        t = (torch.arange(n, dtype=F64) + u[:1]) / n if stratified else u
        return TrainingTimes(t, self.alpha(t), self.weight(t))

    @staticmethod
    def add_noise(x0: Tensor, alpha: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The forward process: ``x_t ~ Binomial(x0, alpha_t)`` element-wise, ``alpha`` (B,) per row (SPEC
        section 1). Also the re-noising ``Binomial(x_u, alpha_t / alpha_u)`` given the ratio."""
        probability = alpha.to(x0.device, torch.float32)[:, None].expand_as(x0).contiguous()
        return torch.binomial(x0, probability, generator=generator)

    def inverse_alpha(self, alpha: np.ndarray) -> np.ndarray:
        """The ``t`` with ``alpha(t) = alpha`` (bisection in float64; alpha is decreasing)."""
        target = torch.as_tensor(alpha, dtype=F64)
        lo, hi = torch.zeros_like(target), torch.ones_like(target)
        for _ in range(60):
            mid = (lo + hi) / 2
            above = self.alpha(mid) > target
            lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
        return ((lo + hi) / 2).numpy()

    def sampling_grid(self, n_steps: int, spacing: TimeSpacing = "time") -> SamplingGrid:
        """``t_i = linspace(1, 0, n + 1)`` (SPEC section 4), or a grid uniform in alpha (paper Prop. B.1)."""
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        if spacing == "time":
            t = np.linspace(1.0, 0.0, n_steps + 1)
        elif spacing == "alpha":
            t = self.inverse_alpha(np.linspace(0.0, 1.0, n_steps + 1))
            t[0], t[-1] = 1.0, 0.0
        else:
            raise ValueError(f"unknown time spacing {spacing!r}; choose 'time' or 'alpha'")
        return SamplingGrid(t, self.alpha(torch.as_tensor(t)).numpy(), spacing)


class CosineSchedule(AlphaSchedule):
    """``alpha(t) = cos^2(pi t / 2)``, ``w(t) = (pi/2) sin(pi t)`` (paper section 3.1, the default)."""

    name = "cosine"

    def raw_alpha(self, t: Tensor) -> Tensor:
        return torch.cos(math.pi * t / 2) ** 2


class FisherInformationSchedule(AlphaSchedule):
    """Blackout's schedule in continuous time: ``sigmoid((2t - 1) L)``, ``L = ln(e^-T / (1 - e^-T))``."""

    name = "fi"

    def __init__(self, horizon: float = 15.0) -> None:
        self.horizon = horizon
        self.log_odds = -horizon - math.log1p(-math.exp(-horizon))

    def raw_alpha(self, t: Tensor) -> Tensor:
        return torch.sigmoid((2 * t - 1) * self.log_odds)


class DiscreteFisherInformationSchedule(AlphaSchedule):
    """The original Blackout schedule on ONE float64 grid ``alpha_k``, k = 0..K (SPEC section 2).

    Weights ``W_k = alpha_k (tau_k - tau_{k-1}) K`` with ``tau_k = -ln alpha_k`` for k = 1..K; at k = K
    (alpha_K = 0 after normalisation) the weight is its limit 0. Training draws ``k ~ U{1..K}``, t = k/K.
    Off-grid times are not used: ``alpha(t)`` rounds ``t K`` to the nearest grid index.
    """

    name = "fi_discrete"

    def __init__(self, horizon: float = 15.0, n_grid: int = 1000) -> None:
        if n_grid < 1:
            raise ValueError(f"fi_discrete needs K >= 1 grid steps, got {n_grid}")
        self.n_grid = n_grid
        continuous = FisherInformationSchedule(horizon)
        self.alphas = continuous.alpha(torch.arange(n_grid + 1, dtype=F64) / n_grid)
        self.alphas[0], self.alphas[-1] = 1.0, 0.0
        # alpha_k (ln alpha_{k-1} - ln alpha_k) K, written with xlogy so that alpha_K = 0 gives 0.
        previous, current = self.alphas[:-1], self.alphas[1:]
        weights = (torch.xlogy(current, previous) - torch.xlogy(current, current)) * n_grid
        self.weights = torch.cat([torch.zeros(1, dtype=F64), weights])  # W_0 is never used

    def index(self, t: Tensor | float) -> Tensor:
        return torch.round(torch.as_tensor(t, dtype=F64) * self.n_grid).long()

    def alpha(self, t: Tensor | float) -> Tensor:
        return self.alphas[self.index(t)]

    def weight(self, t: Tensor | float) -> Tensor:
        return self.weights[self.index(t)]

    def training_times(self, n: int, generator: torch.Generator | None, stratified: bool = False) -> TrainingTimes:
        if stratified:
            u = (torch.arange(n, dtype=F64) + torch.rand(1, generator=generator, dtype=F64)) / n
            k = 1 + torch.floor(u * self.n_grid).long()
        else:
            k = torch.randint(1, self.n_grid + 1, (n,), generator=generator)
        return TrainingTimes(k.to(F64) / self.n_grid, self.alphas[k], self.weights[k])

    def sampling_grid(self, n_steps: int, spacing: TimeSpacing = "time") -> SamplingGrid:
        """A sub-grid of ``n_steps`` strictly decreasing grid indices from K to 0 (all of them for n = K)."""
        if not 1 <= n_steps <= self.n_grid:
            raise ValueError(f"fi_discrete samples on at most its K = {self.n_grid} grid steps, got {n_steps}")
        if spacing == "time":
            k = np.rint(np.linspace(self.n_grid, 0, n_steps + 1)).astype(np.int64)
        elif spacing == "alpha":
            # alphas increase as k decreases: the index whose alpha is nearest each uniform level
            levels = np.linspace(0.0, 1.0, n_steps + 1)
            reversed_alphas = self.alphas.numpy()[::-1]
            k = self.n_grid - np.abs(reversed_alphas[None, :] - levels[:, None]).argmin(axis=1)
            k[0], k[-1] = self.n_grid, 0
            for i in range(1, n_steps):  # strictly decreasing: at most K - i, at least n - i
                k[i] = min(k[i], k[i - 1] - 1)
            for i in range(n_steps - 1, 0, -1):
                k[i] = max(k[i], k[i + 1] + 1)
        else:
            raise ValueError(f"unknown time spacing {spacing!r}; choose 'time' or 'alpha'")
        return SamplingGrid(k / self.n_grid, self.alphas.numpy()[k], spacing)


ScheduleName = Literal["cosine", "fi", "fi_discrete"]


def make_schedule(name: str, horizon: float = 15.0, n_grid: int = 1000) -> AlphaSchedule:
    """The schedule called ``name`` (SPEC section 2 table)."""
    if name == "cosine":
        return CosineSchedule()
    if name == "fi":
        return FisherInformationSchedule(horizon)
    if name == "fi_discrete":
        return DiscreteFisherInformationSchedule(horizon, n_grid)
    raise ValueError(f"unknown schedule {name!r}; choose cosine, fi or fi_discrete")
