"""The ONE training loop of every diffusion method (SPEC section 3; paper Algorithm 1).

Adam (0.9, 0.999) with optional weight decay, linear warm-up, gradient clipping, classifier-free condition
dropout, and an EMA updated AFTER the optimiser step (SPEC section 9, bug 3). A family supplies only its
loss: a callable in the EDM style that draws its own times and noise, ``loss(model, batch, randomness)``.
Reproducible from ``ctx.seed`` (batches, times, noise and dropout come from seeded streams) and resumable:
a checkpoint holds the model, EMA, optimiser, step and every generator's state, so a resumed run continues
exactly as an uninterrupted one.

Speed (issue 17): a step does not wait for the device; losses stay on it and are read (and checked for
finiteness) every ``log_every`` steps, at checkpoints and at the end. Options, default off because they
change the floating-point results of a fixed seed: ``micro_batches = K`` (or ``"auto"``: 8 rows a
bucket on a CPU, one on a GPU) runs each batch as K length buckets with gradient accumulation
(`countsbench.methods.diffusion.buckets`; each bucket's loss weighted by its share of the rows, so a
loss that is a mean over rows keeps its gradient) and ``compile_model`` runs the network's backbone
through ``torch.compile``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from countsbench.context import RunContext
from countsbench.methods.diffusion.buckets import BucketSetting, bucket_count, length_buckets
from countsbench.methods.diffusion.compile import compile_backbone
from countsbench.methods.diffusion.ema import EMA
from countsbench.methods.diffusion.rows import TrainingRows
from countsbench.safe_io import write_atomic


@dataclass(frozen=True)
class Streams:
    """The independent random streams of one run (`RunContext.rng` / `torch_generator` ids)."""

    init: int
    batches: int
    times: int
    noise: int
    sampling: int


@dataclass(frozen=True)
class TrainingBatch:
    """One training batch: counts (B, d), valid entries (B, d) or None, condition codes (B, n_keys), and
    ``keep`` (B,): False replaces the sample's conditions by the null condition (classifier-free training)."""

    x0: Tensor
    valid: Tensor | None
    codes: Tensor
    keep: Tensor


@dataclass(frozen=True)
class Randomness:
    """What a loss may draw from: ``times`` (a CPU generator, schedules draw in float64 on the CPU) and
    ``noise`` (a generator on the training device)."""

    times: torch.Generator
    noise: torch.Generator


#: ``loss(model, batch, randomness) -> scalar``: draws its times and noise, weights, reduces.
Loss = Callable[[nn.Module, TrainingBatch, Randomness], Tensor]


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
    checkpoint_every: int = 500
    log_every: int = 25
    micro_batches: BucketSetting = 1  # or "auto" (`bucket_count`)
    compile_model: bool = False


class Trainer:
    """Trains ``model`` with ``loss``; ``ema.model`` is what sampling uses."""

    def __init__(
        self,
        model: nn.Module,
        loss: Loss,
        config: TrainingConfig,
        ctx: RunContext,
        streams: Streams,
        checkpoint: Path | None = None,
        desc: str = "train",
    ) -> None:
        self.model, self.loss, self.config, self.ctx = model.to(ctx.device), loss, config, ctx
        self.checkpoint, self.desc = checkpoint, desc
        self.micro_batches = bucket_count(config.micro_batches, config.batch_size, ctx.device, "micro_batches")
        self.ema = EMA(self.model, config.ema_decay)
        if config.compile_model:
            compile_backbone(self.model, ctx.device, training=True)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=(0.9, 0.999), weight_decay=config.weight_decay
        )
        self.batches = ctx.rng(streams.batches)
        self.randomness = Randomness(
            times=replace(ctx, device="cpu").torch_generator(streams.times), noise=ctx.torch_generator(streams.noise)
        )
        self.step = 0
        self.losses: list[float] = []

    def learning_rate(self, step: int) -> float:
        """Linear warm-up to ``lr`` over ``warmup_steps``, then constant."""
        return self.config.lr * min(1.0, (step + 1) / max(1, self.config.warmup_steps))

    def train_step(self, rows: TrainingRows) -> Tensor:
        """One optimiser step; returns the batch's loss as a 0-d tensor on the device (no host sync)."""
        config = self.config
        x0, valid, codes = rows.batch(self.batches.integers(0, len(rows), config.batch_size))
        keep = torch.rand(x0.shape[0], generator=self.randomness.noise, device=x0.device) >= config.cond_drop_prob
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        batch = TrainingBatch(x0, valid, codes, keep)
        if self.micro_batches == 1:
            with self.ctx.autocast():
                loss = self.loss(self.model, batch, self.randomness)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        else:
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.accumulate(batch)
        nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.ema.update(self.model)  # after the optimiser step (SPEC section 9, bug 3)
        self.step += 1
        return loss.detach()

    def accumulate(self, batch: TrainingBatch) -> Tensor:
        """Backward of ``batch`` as ``micro_batches`` length buckets, each loss weighted by its share of the
        rows (the gradient of the full batch's mean loss); returns the weighted sum of the losses."""
        n = batch.x0.shape[0]
        total = torch.zeros((), device=batch.x0.device)
        for rows in length_buckets(batch.valid, n, self.micro_batches, batch.x0.device):
            part = TrainingBatch(
                batch.x0[rows], None if batch.valid is None else batch.valid[rows], batch.codes[rows], batch.keep[rows]
            )
            with self.ctx.autocast():
                loss = self.loss(self.model, part, self.randomness) * (rows.numel() / n)
            loss.backward()
            total = total + loss.detach().float()
        return total

    def _record(self, pending: list[Tensor]) -> None:
        """Read the pending losses in one host sync, check them, and append them to ``losses``."""
        if not pending:
            return
        values = torch.stack(pending).float().cpu().tolist()
        first = self.step - len(values) + 1
        for offset, value in enumerate(values):
            if not math.isfinite(value):
                raise FloatingPointError(f"{self.desc}: training loss became {value} at step {first + offset}")
        self.losses.extend(values)
        pending.clear()

    def fit(self, rows: TrainingRows) -> list[float]:
        """Train to ``config.steps``, resuming from the checkpoint when one exists; returns the losses."""
        if self.checkpoint is not None and self.checkpoint.exists():
            self.load_checkpoint(self.checkpoint)
        self.model.train()
        pending: list[Tensor] = []
        with self.ctx.progress(total=self.config.steps, desc=self.desc) as bar:
            bar.update(self.step)
            while self.step < self.config.steps:
                pending.append(self.train_step(rows))
                bar.update(1)
                checkpoint_now = self.checkpoint is not None and (
                    self.step % self.config.checkpoint_every == 0 or self.step == self.config.steps
                )
                if self.step % self.config.log_every == 0 or checkpoint_now or self.step == self.config.steps:
                    self._record(pending)
                if self.step % self.config.log_every == 0:
                    bar.set_postfix(loss=f"{np.mean(self.losses[-self.config.log_every :]):.4f}")
                if checkpoint_now:
                    self.save_checkpoint(self.checkpoint)
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
            "times": self.randomness.times.get_state(),
            "noise": self.randomness.noise.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        write_atomic(path, lambda partial: torch.save(state, partial))

    def load_checkpoint(self, path: Path) -> None:
        """Resume from ``path``, read with ``weights_only=True`` (tensors, numbers, strings, containers: it
        runs no code). One that cannot be read (cut short, or not tensors only) is reported, removed, and
        training starts from step 0, the same seeded run as without it."""
        try:
            state = torch.load(path, map_location=self.ctx.device, weights_only=True)
        except Exception as error:
            from countsbench.safe_io import warn

            warn(f"training checkpoint {path} is unreadable ({type(error).__name__}: {error}); training from step 0")
            path.unlink(missing_ok=True)
            return
        self.step, self.losses = state["step"], list(state["losses"])
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.batches.bit_generator.state = state["batches"]
        self.randomness.times.set_state(state["times"].cpu())
        self.randomness.noise.set_state(state["noise"].cpu())
        torch.set_rng_state(state["torch"].cpu())
        if state["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
