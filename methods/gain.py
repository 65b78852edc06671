"""GAIN: Generative Adversarial Imputation Nets (Yoon et al. 2018), in PyTorch (SPEC section 7).

The original architecture and defaults: generator and discriminator are 3-layer MLPs of width d
on [data, mask] and [imputed data, hint]; hint rate 0.9, alpha 100, batch 128, 10,000 iterations,
Adam, per-feature min-max scaling over observed training entries, missing inputs replaced by
U(0, 0.01) noise. Changes from the original, as SPEC asks: no final sigmoid on the generator (a
sigmoid squashes the scaled values towards its asymptotes, compressing the large counts of every
gene), estimates clamped at 0, and rows with no observed entry handled (they get pure noise as
input and add no reconstruction term; the research code divided by their zero observed count).
Entries that are not valid measurements (scRNA dropouts) count as missing. Without the sigmoid the
ReLU generator extrapolates linearly: on pbmc a few query values far above their gene's training maximum turned into
imputations of millions (RMSE 34,177). So inputs are clipped to each gene's training range and
estimates kept within it (``clip_to_training_range``, a hard limit that leaves values inside the
range untouched, unlike a sigmoid).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from countsbench.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, UNIT_INTERVAL
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.methods.imputation_output import finish_imputation, observed_mask
from countsbench.methods.torch_helpers import as_tensor, init_generator, seeded_init_
from countsbench.registry import register_method


def mlp(d_in: int, d: int) -> nn.Sequential:
    """The GAIN network body: d_in -> d -> d -> d with ReLU between (no output activation)."""
    return nn.Sequential(nn.Linear(d_in, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))


class MinMaxScaler:
    """Per-feature min-max scaling to [0, 1] over observed entries (GAIN's normalisation)."""

    def __init__(self, counts: np.ndarray, observed: np.ndarray) -> None:
        masked = np.where(observed, counts, np.nan)
        has_any = observed.any(axis=0)
        self.low = np.where(has_any, np.nanmin(np.where(has_any, masked, 0.0), axis=0), 0.0)
        high = np.where(has_any, np.nanmax(np.where(has_any, masked, 0.0), axis=0), 1.0)
        self.span = np.maximum(high - self.low, 1e-6)

    def scale(self, counts: np.ndarray) -> np.ndarray:
        return (counts - self.low) / self.span

    def unscale(self, values: np.ndarray) -> np.ndarray:
        return values * self.span + self.low


@register_method(
    "gain",
    kinds=("imputation",),
    role="baseline",
    summary="GAIN adversarial imputation (original architecture, no final sigmoid, clamped at 0).",
    paper="Yoon, Jordon & van der Schaar 2018, GAIN: Missing Data Imputation using Generative Adversarial Nets, ICML",
)
class GainImputation(Method):
    profiles = {"quick": {"iterations": 400}, "paper": {"iterations": 10000}}
    hyperparameter_ranges = {
        "iterations": AT_LEAST_ONE,
        "batch_size": AT_LEAST_ONE,
        "hint_rate": UNIT_INTERVAL,
        "alpha": NON_NEGATIVE,
        "learning_rate": POSITIVE,
    }

    def __init__(
        self,
        iterations: int = 10000,
        batch_size: int = 128,
        hint_rate: float = 0.9,
        alpha: float = 100.0,
        learning_rate: float = 1e-3,
        clip_to_training_range: bool = True,
    ) -> None:
        self.iterations = iterations
        self.batch_size = batch_size
        self.hint_rate = hint_rate
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.clip_to_training_range = clip_to_training_range
        self.scaler: MinMaxScaler | None = None
        self.generator_net: nn.Module | None = None
        self.loss_curve: list[tuple[float, float]] = []

    def n_parameters(self) -> int | None:
        return None if self.generator_net is None else 2 * sum(p.numel() for p in self.generator_net.parameters())

    def state(self) -> dict:
        """The scaler's arrays and the generator's weights (the discriminator is not needed to impute)."""
        if self.generator_net is None:
            return {}
        scaler = {"low": self.scaler.low, "span": self.scaler.span}
        return {"scaler": scaler, "generator": self.generator_net.state_dict(), "loss_curve": self.loss_curve}

    def restore(self, state) -> None:
        if not state:
            return
        self.scaler = MinMaxScaler.__new__(MinMaxScaler)
        self.scaler.low, self.scaler.span = state["scaler"]["low"], state["scaler"]["span"]
        d = len(self.scaler.low)
        self.generator_net = mlp(2 * d, d)
        self.generator_net.load_state_dict(state["generator"])
        self.generator_net.eval()
        self.loss_curve = list(state["loss_curve"])

    def _generator_input(self, x: torch.Tensor, m: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.clip_to_training_range:
            x = x.clamp(0.0, 1.0)
        noise = torch.rand(x.shape, generator=generator, device=x.device) * 0.01
        return torch.cat([m * x + (1 - m) * noise, m], dim=1)

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        counts, observed = train.dense().astype(np.float64), observed_mask(train)
        self.scaler = MinMaxScaler(counts, observed)
        n, d = counts.shape
        x_all = as_tensor(np.where(observed, self.scaler.scale(counts), 0.0), ctx.device)
        m_all = as_tensor(observed, ctx.device)
        init = init_generator(ctx, 10)
        generator_net = seeded_init_(mlp(2 * d, d), init).to(ctx.device)
        discriminator = seeded_init_(mlp(2 * d, d), init).to(ctx.device)
        opt_g = torch.optim.Adam(generator_net.parameters(), lr=self.learning_rate)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=self.learning_rate)
        noise = ctx.torch_generator(11)
        batches = ctx.rng(12)
        batch = min(self.batch_size, n)
        for step in ctx.progress(range(self.iterations), desc="gain"):
            rows = torch.as_tensor(batches.choice(n, size=batch, replace=False), device=ctx.device)
            x, m = x_all[rows], m_all[rows]
            hint = m * (torch.rand(m.shape, generator=noise, device=m.device) < self.hint_rate).float()
            with ctx.autocast():
                fake = generator_net(self._generator_input(x, m, noise))
                imputed = m * x + (1 - m) * fake
                d_logits = discriminator(torch.cat([imputed.detach(), hint], dim=1))
                d_loss = F.binary_cross_entropy_with_logits(d_logits.float(), m)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            with ctx.autocast():
                d_logits = discriminator(torch.cat([imputed, hint], dim=1)).float()
                adversarial = -((1 - m) * F.logsigmoid(d_logits)).mean()
                reconstruction = ((m * (x - fake.float())) ** 2).sum() / m.sum().clamp(min=1.0)
                g_loss = adversarial + self.alpha * reconstruction
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            if step % 100 == 0:
                self.loss_curve.append((float(d_loss.detach()), float(g_loss.detach())))
        self.generator_net = generator_net.cpu().eval()

    @torch.no_grad()
    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        net = self.generator_net.to(ctx.device)
        observed = observed_mask(data, target_mask)
        x = as_tensor(np.where(observed, self.scaler.scale(data.dense().astype(np.float64)), 0.0), ctx.device)
        m = as_tensor(observed, ctx.device)
        noise = ctx.torch_generator(13)
        samples = []
        for _ in range(n_samples):
            with ctx.autocast():
                fake = net(self._generator_input(x, m, noise)).float()
            if self.clip_to_training_range:
                fake = fake.clamp(0.0, 1.0)
            samples.append(self.scaler.unscale(fake.cpu().numpy().astype(np.float64)))
        self.generator_net = net.cpu()
        estimates = np.stack(samples)
        return finish_imputation(data, target_mask, estimates[0] if n_samples == 1 else estimates)
