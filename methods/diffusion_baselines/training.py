"""The training loop shared by the diffusion baselines: Adam, linear warm-up, gradient clipping, EMA
updated after the optimiser step, classifier-free condition dropout (SPEC section 3's defaults)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from countsbench.context import RunContext
from methods.countsdiff.ema import EMA
from methods.countsdiff.trainer import TrainingRows

# Independent random streams of one run (RunContext.rng / torch_generator).
STREAM_INIT, STREAM_BATCHES, STREAM_NOISE, STREAM_SAMPLING = 10, 11, 12, 13

#: ``loss(model, x0, valid, codes, keep, generator) -> scalar``: counts (B, d), valid (B, d) or None,
#: condition codes (B, n_keys), keep (B,) (False = the null condition).
Loss = Callable[[nn.Module, Tensor, Tensor | None, Tensor, Tensor, torch.Generator], Tensor]


@dataclass(frozen=True)
class TrainingSettings:
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    grad_clip: float
    ema_decay: float
    cond_drop_prob: float


def train_model(
    model: nn.Module, loss: Loss, rows: TrainingRows, settings: TrainingSettings, ctx: RunContext, desc: str
) -> tuple[nn.Module, list[float]]:
    """Train ``model`` for ``settings.steps`` steps; returns its EMA copy (used for sampling) and the losses."""
    model = model.to(ctx.device).train()
    ema = EMA(model, settings.ema_decay)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=(0.9, 0.999))
    batches, noise = ctx.rng(STREAM_BATCHES), ctx.torch_generator(STREAM_NOISE)
    losses: list[float] = []
    with ctx.progress(total=settings.steps, desc=f"train {desc}") as bar:
        for step in range(settings.steps):
            x0, valid, codes = rows.batch(batches.integers(0, len(rows), settings.batch_size))
            keep = torch.rand(x0.shape[0], generator=noise, device=x0.device) >= settings.cond_drop_prob
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * min(1.0, (step + 1) / max(1, settings.warmup_steps))
            with ctx.autocast():
                value = loss(model, x0, valid, codes, keep, noise)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            ema.update(model)  # after the optimiser step (SPEC section 9, bug 3)
            losses.append(value.item())
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(f"{desc}: training loss became {losses[-1]} at step {step}")
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    return ema.model.eval(), losses
