"""Training loop (SPEC section 3; paper Algorithm 1): Adam, warm-up, clipping, EMA, classifier-free dropout.

Reproducible from ``ctx.seed`` (batches, times, noise and dropout come from seeded generators) and
resumable: a checkpoint holds the model, EMA, optimiser, step and every generator's state, so a resumed
run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from countsbench.context import RunContext
from countsbench.data import CountData
from methods.countsdiff.denoiser import Denoiser
from methods.countsdiff.ema import EMA
from methods.countsdiff.loss import poisson_rate_loss
from methods.countsdiff.schedules import AlphaSchedule

# Independent random streams of one run (RunContext.rng / torch_generator).
STREAM_INIT, STREAM_BATCHES, STREAM_TIMES, STREAM_NOISE, STREAM_SAMPLING = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class TrainingConfig:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 2e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    weight_decay: float = 0.0
    cond_drop_prob: float = 0.2
    stratified_times: bool = False
    checkpoint_every: int = 500


class TrainingRows:
    """Rows of a `CountData` as tensors on the device: ``batch(rows) -> (x0, valid, codes)``.

    Small dense data (and its valid mask) is moved once; CSR data is densified one batch at a time,
    its validity evaluated per batch (an atlas' `ExpressedValidity` rule is never materialised whole).
    """

    def __init__(self, data: CountData, device: str) -> None:
        self.data, self.device = data, device
        self.counts = None if data.is_sparse else torch.as_tensor(data.counts, dtype=torch.float32, device=device)
        dense_valid = data.valid is not None and not data.is_sparse
        self.valid = torch.as_tensor(data.valid_mask(), device=device) if dense_valid else None
        self.codes = torch.as_tensor(data.condition_matrix(), dtype=torch.long, device=device)

    def __len__(self) -> int:
        return self.data.n_samples

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        index = torch.as_tensor(rows, device=self.device)
        if self.counts is not None:
            return self.counts[index], None if self.valid is None else self.valid[index], self.codes[index]
        x0 = torch.as_tensor(self.data.dense(rows), dtype=torch.float32, device=self.device)
        valid = None if self.data.valid is None else torch.as_tensor(self.data.valid_mask(rows), device=self.device)
        return x0, valid, self.codes[index]


class Trainer:
    """Trains a `Denoiser` under a schedule; ``ema.model`` is what sampling uses."""

    def __init__(
        self,
        denoiser: Denoiser,
        schedule: AlphaSchedule,
        config: TrainingConfig,
        ctx: RunContext,
        checkpoint: Path | None = None,
    ) -> None:
        self.model, self.schedule, self.config, self.ctx = denoiser.to(ctx.device), schedule, config, ctx
        self.checkpoint = checkpoint
        self.ema = EMA(self.model, config.ema_decay)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=(0.9, 0.999), weight_decay=config.weight_decay
        )
        self.batches = ctx.rng(STREAM_BATCHES)
        self.times = replace(ctx, device="cpu").torch_generator(STREAM_TIMES)  # schedules draw on the CPU
        self.noise = ctx.torch_generator(STREAM_NOISE)
        self.step = 0
        self.losses: list[float] = []

    def learning_rate(self, step: int) -> float:
        """Linear warm-up to ``lr`` over ``warmup_steps``, then constant."""
        return self.config.lr * min(1.0, (step + 1) / max(1, self.config.warmup_steps))

    def train_step(self, rows: TrainingRows) -> float:
        config = self.config
        x0, valid, codes = rows.batch(self.batches.integers(0, len(rows), config.batch_size))
        device = x0.device
        times = self.schedule.training_times(config.batch_size, self.times, config.stratified_times)
        t, alpha = times.t.float().to(device), times.alpha.float().to(device)
        x_t = torch.binomial(x0, alpha[:, None].expand_as(x0).contiguous(), generator=self.noise)
        keep = torch.rand(config.batch_size, generator=self.noise, device=device) >= config.cond_drop_prob
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        with self.ctx.autocast():
            rate = self.model(x_t, t, alpha, codes, keep, valid)
        loss = poisson_rate_loss(rate, x0 - x_t, times.weight.float().to(device), valid)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.ema.update(self.model)  # after the optimiser step (SPEC section 9, bug 3)
        self.step += 1
        return loss.item()

    def fit(self, rows: TrainingRows) -> list[float]:
        """Train to ``config.steps``, resuming from the checkpoint when one exists; returns the losses."""
        if self.checkpoint is not None and self.checkpoint.exists():
            self.load_checkpoint(self.checkpoint)
        self.model.train()
        bar = self.ctx.progress(total=self.config.steps, desc=f"train {self.schedule.name}")
        bar.update(self.step)
        while self.step < self.config.steps:
            loss = self.train_step(rows)
            if not math.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss} at step {self.step}")
            self.losses.append(loss)
            bar.update(1)
            if self.step % 25 == 0:
                bar.set_postfix(loss=f"{np.mean(self.losses[-25:]):.4f}")
            if self.checkpoint is not None and (
                self.step % self.config.checkpoint_every == 0 or self.step == self.config.steps
            ):
                self.save_checkpoint(self.checkpoint)
        bar.close()
        self.model.eval()
        return self.losses

    def save_checkpoint(self, path: Path) -> None:
        state = {
            "step": self.step,
            "losses": self.losses,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "batches": self.batches.bit_generator.state,
            "times": self.times.get_state(),
            "noise": self.noise.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        torch.save(state, partial)
        os.replace(partial, path)

    def load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location=self.ctx.device, weights_only=False)
        self.step, self.losses = state["step"], list(state["losses"])
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.batches.bit_generator.state = state["batches"]
        self.times.set_state(state["times"].cpu())
        self.noise.set_state(state["noise"].cpu())
        torch.set_rng_state(state["torch"].cpu())
        if state["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
