"""The CountsDiff reverse process (SPEC section 4; paper Algorithm 2, Prop. 3.2) with RePaint (section 5)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from countsbench.methods.countsdiff.attrition import Attrition
from countsbench.methods.countsdiff.rounding import random_round
from countsbench.methods.countsdiff.schedules import SamplingGrid
from countsbench.methods.diffusion.transitions import birth_probability

RateFunction = Callable[[Tensor, float, float], Tensor]


def _binomial(count: Tensor, p: float | Tensor, generator: torch.Generator | None) -> Tensor:
    prob = p if isinstance(p, Tensor) else torch.full_like(count, float(p))
    return torch.binomial(count, prob, generator=generator)


def reverse_step(
    x: Tensor,
    r: Tensor,
    alpha_t: float,
    alpha_s: float,
    sigma: float,
    generator: torch.Generator | None,
    *,
    max_value: float | None = None,
    tau_leaping: bool = False,
) -> Tensor:
    """One step t -> s from the state ``x`` and predicted remaining births ``r`` (SPEC section 4, 1-4).

    ``beta = (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)``; births ~ Binomial(n, beta) with
    ``n = random_round(r)`` (or Poisson(beta r) when tau-leaping); deaths ~ Binomial(x, sigma).
    """
    if max_value is not None:  # bounded data: at most c - x births remain
        r = torch.minimum(r.clamp_min(0.0), max_value - x)
    beta = birth_probability(alpha_t, alpha_s, sigma)
    if tau_leaping:
        births = torch.poisson(beta * r.clamp_min(0.0), generator=generator)
    else:
        births = _binomial(random_round(r, generator), beta, generator)
    deaths = _binomial(x, sigma, generator) if sigma > 0 else 0.0
    x = x + births - deaths
    return x.clamp(max=max_value) if max_value is not None else x


def repaint_windows(n_steps: int, repeats: int, jump: int) -> Iterator[tuple[int, int, int]]:
    """``(start, end, repeat)`` windows of ``jump`` steps, each run ``repeats`` times (SPEC section 5).

    ``repeats = 1`` is the plain sampler. Resampling needs ``jump < n_steps``: a window over the whole
    trajectory would turn every repeat into a restart from zeros (SPEC section 9, bug 5).
    """
    if repeats < 1:
        raise ValueError(f"RePaint repeats must be >= 1, got {repeats}")
    if repeats > 1 and not 1 <= jump < n_steps:
        raise ValueError(f"RePaint resampling needs 1 <= jump < n_steps = {n_steps}, got jump={jump}")
    jump = jump if repeats > 1 else n_steps
    for start in range(0, n_steps, jump):
        end = min(start + jump, n_steps)
        for repeat in range(repeats):
            yield start, end, repeat


def reverse_process(
    rates: RateFunction,
    shape: tuple[int, int],
    grid: SamplingGrid,
    attrition: Attrition,
    generator: torch.Generator | None,
    *,
    device: str | torch.device = "cpu",
    keep: Tensor | None = None,
    observed: Tensor | None = None,
    target: Tensor | None = None,
    max_value: float | None = None,
    tau_leaping: bool = False,
    repeats: int = 1,
    jump: int = 0,
    on_step: Callable[[], object] | None = None,
) -> Tensor:
    """Run the reverse process from ``x = 0`` at t = 1 to t = 0 and return float counts of ``shape``.

    ``keep``: entries that may be non-zero (valid OR target, SPEC section 4 step 5); the rest are forced
    to 0. RePaint (SPEC section 5): with ``observed`` counts ``y`` and a boolean ``target`` mask, the
    non-target entries are re-imposed after each step as a fresh draw ``Binomial(y, alpha_s)`` (``y`` at
    s = 0); between repeats of a window the state is re-noised ``Binomial(x, alpha(start) / alpha(end))``.
    """
    x = torch.zeros(shape, device=device)
    for start, end, repeat in repaint_windows(grid.n_steps, repeats, jump):
        for i in range(start, end):
            alpha_t, alpha_s = float(grid.alpha[i]), float(grid.alpha[i + 1])
            r = rates(x, float(grid.t[i]), alpha_t)
            sigma = attrition(alpha_t, alpha_s)
            x = reverse_step(x, r, alpha_t, alpha_s, sigma, generator, max_value=max_value, tau_leaping=tau_leaping)
            if keep is not None:
                x = x * keep
            if observed is not None:
                known = observed if alpha_s >= 1.0 else _binomial(observed, alpha_s, generator)
                x = torch.where(target, x, known)
            if on_step is not None:
                on_step()
        if repeat < repeats - 1:
            x = _binomial(x, float(grid.alpha[start] / grid.alpha[end]), generator)
    return x


def n_evaluations(n_steps: int, repeats: int = 1, jump: int = 0) -> int:
    """Network evaluations (reverse steps) of one run of `reverse_process`."""
    return sum(end - start for start, end, _ in repaint_windows(n_steps, repeats, jump))
