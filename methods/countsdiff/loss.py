"""The weighted Poisson-style loss of CountsDiff (SPEC section 3; paper eq. 6), as a small callable."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from countsbench.methods.countsdiff.schedules import AlphaSchedule, TrainingTimes
from countsbench.methods.diffusion.training import Randomness, TrainingBatch
from countsbench.methods.diffusion.transfer import to_device

LOG_EPS = 1e-8
LossWeighting = Literal["paper", "elbo"]
LOSS_WEIGHTINGS = ("paper", "elbo")


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


def loss_weights(times: TrainingTimes, weighting: LossWeighting) -> Tensor:
    """``paper``: the schedule's ``w(t) = -alpha'(t)`` (SPEC section 2). ``elbo``: ``w(t) / (1 - alpha(t))``,
    the weight of the Poisson KL terms in the continuous-time ELBO of the death process (Blackout's
    objective); it restores the low-noise end's share of the loss, whose per-entry terms shrink like
    ``1 - alpha`` under the scaled rate head. Float64; 0 where ``w = 0``."""
    if weighting == "paper":
        return times.weight
    if weighting == "elbo":
        removed = 1.0 - times.alpha
        return torch.where(times.weight > 0, times.weight / removed.clamp_min(1e-300), torch.zeros_like(removed))
    raise ValueError(f"unknown loss weighting {weighting!r}; choose one of {', '.join(LOSS_WEIGHTINGS)}")


class BinomialDeathLoss:
    """Draws ``t`` (the schedule's training times), thins ``x_t ~ Binomial(x0, alpha_t)``, and scores the
    predicted remaining births with `poisson_rate_loss` over the valid entries (paper Algorithm 1)."""

    def __init__(self, schedule: AlphaSchedule, weighting: LossWeighting = "paper", stratified: bool = False) -> None:
        if weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"unknown loss weighting {weighting!r}; choose one of {', '.join(LOSS_WEIGHTINGS)}")
        self.schedule, self.weighting, self.stratified = schedule, weighting, stratified

    def __call__(self, model: nn.Module, batch: TrainingBatch, randomness: Randomness) -> Tensor:
        x0, device = batch.x0, batch.x0.device
        times = self.schedule.training_times(x0.shape[0], randomness.times, self.stratified)
        # the times are drawn on the CPU: copied without a host sync (`to_device`); alpha stays float64, the
        # rate head needs 1 - alpha at full precision
        alpha = to_device(times.alpha, None, device)
        x_t = self.schedule.add_noise(x0, alpha, randomness.noise)
        rate = model(x_t, to_device(times.t, torch.float32, device), alpha, batch.codes, batch.keep, batch.valid)
        weight = to_device(loss_weights(times, self.weighting), torch.float32, device)
        return poisson_rate_loss(rate.float(), x0 - x_t, weight, batch.valid)
