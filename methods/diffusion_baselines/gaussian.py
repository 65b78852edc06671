"""``gaussian_ddpm``: DDPM on ``ln(1 + x)`` (SPEC section 7; paper appendix D.1).

Epsilon-prediction MSE under the cosine schedule; sampling with the true DDPM posterior, clipping the
x0 estimate to ``[0, ln(1 + max training count)]`` (a [-1, 1] clip would cap counts near 2 and fake a
collapse); output ``round(max(expm1(x), 0))``. RePaint re-noises observed entries as
``sqrt(abar) ln(1 + y) + sqrt(1 - abar) eps``.

At high noise the epsilon target is nearly the input itself (``eps ~ x_k``), an identity map that an MLP
whose hidden layers are narrower than its input cannot represent: on pbmc (765 genes, hidden 48) the loss
stayed at 0.94 of its initial value and the x0 estimates ran to the clip (imputed mean 67 against 2.4).
Wider than its hidden layers, the backbone therefore gets a learned per-feature skip (`MLPBackbone`'s
``input_skip``: loss 0.29, imputed mean 2.6); on narrow data (toy_nb's 10) nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.countsdiff.networks.mlp import MLPBackbone
from countsbench.methods.diffusion.method import DiffusionMethod
from countsbench.methods.diffusion.sampling import Rows
from countsbench.methods.diffusion.training import Loss, Randomness, Streams, TrainingBatch
from countsbench.methods.diffusion_baselines.ddpm_schedule import CosineDDPMSchedule, posterior
from countsbench.registry import register_method
from countsbench.task import TaskInfo

#: Defaults per (task kind, profile): the toy MLPs of the paper (quick budgets as CountsDiff's on CPU).
TRAINING_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("generation", "quick"): {"steps": 4000, "batch_size": 256, "lr": 2e-3, "ema_decay": 0.999, "n_steps": 200},
    ("generation", "paper"): {"steps": 50_000, "batch_size": 256, "lr": 2e-4, "n_steps": 1000},
    ("imputation", "quick"): {"steps": 1500, "batch_size": 64, "lr": 1e-3, "ema_decay": 0.999, "n_steps": 20},
    ("imputation", "paper"): {"steps": 100_000, "batch_size": 512, "lr": 2e-4, "n_steps": 20},
}
#: The random streams of the diffusion baselines (their losses draw times and noise from ``noise``).
BASELINE_STREAMS = Streams(init=10, batches=11, times=14, noise=12, sampling=13)


@register_method(
    "gaussian_ddpm",
    kinds=("generation", "imputation"),
    role="baseline",
    summary="Gaussian DDPM on ln(1+x): cosine schedule, true posterior sampler with x0 clipping, RePaint.",
    paper="Ho et al. 2020; Nichol & Dhariwal 2021 (cosine schedule)",
)
class GaussianDDPM(DiffusionMethod):
    """Gaussian diffusion on log counts with CountsDiff's MLP backbone (same size: hidden 48)."""

    streams = BASELINE_STREAMS
    inference_only = DiffusionMethod.base_inference_only

    def __init__(
        self,
        hidden: int = 48,
        n_layers: int = 3,
        time_dim: int = 64,
        use_conditions: bool = True,
        n_train_steps: int = 1000,
        steps: int = 2000,
        batch_size: int = 64,
        lr: float = 2e-4,
        warmup_steps: int = 100,
        grad_clip: float = 1.0,
        ema_decay: float = 0.9999,
        cond_drop_prob: float = 0.0,
        n_steps: int = 200,
        n_samples: int = 1,
        sample_batch_size: int = 2048,
    ) -> None:
        super().__init__()
        self.schedule.sampling_indices(n_steps)  # fail early on an impossible grid

    @classmethod
    def defaults(cls, profile: str, task: TaskInfo) -> dict[str, Any]:
        return dict(TRAINING_PRESETS[(task.kind, profile)])

    @property
    def schedule(self) -> CosineDDPMSchedule:
        return CosineDDPMSchedule(self.n_train_steps)

    def model_spec(self, train: CountData) -> dict[str, Any]:
        return {
            "n_features": train.n_features,
            "vocabulary_sizes": list(self.vocabulary_sizes(train)),
            "max_count": train.max_count(),
        }

    def build_model(self, spec: Mapping[str, Any]) -> nn.Module:
        return MLPBackbone(
            spec["n_features"],
            spec["vocabulary_sizes"],
            self.hidden,
            self.n_layers,
            self.time_dim,
            input_skip=spec["n_features"] > self.hidden,
        )

    def make_loss(self) -> Loss:
        return self.loss

    def loss(self, model: nn.Module, batch: TrainingBatch, randomness: Randomness) -> Tensor:
        """``|eps_hat(x_k, k / T) - eps|^2`` averaged over valid entries, k ~ U{1..T}."""
        x0, valid, codes, keep, g = batch.x0, batch.valid, batch.codes, batch.keep, randomness.noise
        alpha_bar = torch.as_tensor(self.schedule.alpha_bar, dtype=torch.float32, device=x0.device)
        k = torch.randint(1, self.n_train_steps + 1, (x0.shape[0],), generator=g, device=x0.device)
        eps = torch.randn(x0.shape, generator=g, device=x0.device)
        abar = alpha_bar[k][:, None]
        x_k = abar.sqrt() * x0.log1p() + (1.0 - abar).sqrt() * eps
        error = (model(x_k, k / self.n_train_steps, codes, keep) - eps).pow(2)
        if valid is None:
            return error.mean()
        return (error * valid).sum() / valid.sum().clamp_min(1)

    def reverse(
        self, model: nn.Module, rows: Rows, generator: torch.Generator, ctx: RunContext, on_step: Callable[[], object]
    ) -> Tensor:
        device = ctx.device
        shape = (rows.n, self.spec["n_features"])
        alpha_bar = self.schedule.alpha_bar
        indices = self.schedule.sampling_indices(self.n_steps)
        clip = math.log1p(self.spec["max_count"])
        codes = rows.codes if rows.codes is not None else torch.zeros(rows.n, 0, dtype=torch.long, device=device)
        keep = torch.ones(rows.n, dtype=torch.bool, device=device)
        observed = None if rows.observed is None else rows.observed.log1p()
        x = torch.randn(shape, generator=generator, device=device)
        for k, j in zip(indices[:-1], indices[1:], strict=True):
            abar_k, abar_j = float(alpha_bar[k]), float(alpha_bar[j])
            t = torch.full((rows.n,), k / self.n_train_steps, device=device)
            with ctx.autocast():
                eps = model(x, t, codes, keep).float()
            x0 = ((x - math.sqrt(1.0 - abar_k) * eps) / math.sqrt(abar_k)).clamp(0.0, clip)
            c0, ct, variance = posterior(abar_k, abar_j)
            x = c0 * x0 + ct * x
            if variance > 0:
                x = x + math.sqrt(variance) * torch.randn(shape, generator=generator, device=device)
            if observed is not None:  # RePaint: observed entries re-noised to the level of step j
                noise = torch.randn(shape, generator=generator, device=device)
                known = math.sqrt(abar_j) * observed + math.sqrt(1.0 - abar_j) * noise
                x = torch.where(rows.target, x, known)
            on_step()
        return x.expm1().clamp_min(0.0).round()
