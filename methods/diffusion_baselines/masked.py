"""``mdlm`` and ``remdm``: masked diffusion over count tokens (SPEC section 7; Sahoo et al. 2024,
Wang et al. 2025).

Counts ``0..C-1`` are unordered tokens (C = max training count + 1; larger values are clipped) plus a
mask token; with ``count_classes="per_feature"`` feature j predicts only
``0..m_j``, its own training maximum (`count_classes`, on gene-vector generation by default).
Forward: each token stays unmasked with probability ``alpha(t)`` (`masking_schedules`).
Loss (SUBS: the network puts no mass on the mask): ``w(t) * sum over MASKED valid positions of
cross-entropy / (number of VALID positions)``, ``w = -alpha'/(1 - alpha)``; dividing by the number
of masked positions instead would give an estimator of infinite variance.
Reverse step t -> s: a decoded token is re-masked with probability ``sigma = eta * sigma_max``
(``eta = 0``: MDLM), a masked token is decoded with probability
``(alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)``, its value drawn from the model. Guidance
interpolates log-probabilities, ``w log p_c + (1 - w) log p_u``, renormalised. RePaint imputation
re-imposes each observed token unmasked with probability ``alpha_s`` (the forward marginal).
Entries that are neither valid nor targets stay masked: hidden from the network, returned as given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.countsdiff.networks import choose_network
from countsbench.methods.diffusion.guidance import Guidance, tiled
from countsbench.methods.diffusion.method import DiffusionMethod
from countsbench.methods.diffusion.sampling import Rows
from countsbench.methods.diffusion.training import Loss, Randomness, TrainingBatch
from countsbench.methods.diffusion.transitions import birth_probability, max_attrition
from countsbench.methods.diffusion_baselines.count_classes import CountClasses
from countsbench.methods.diffusion_baselines.gaussian import BASELINE_STREAMS, TRAINING_PRESETS
from countsbench.methods.diffusion_baselines.masking_schedules import keep_probability, loss_weight
from countsbench.methods.diffusion_baselines.token_network import TokenMLP
from countsbench.registry import register_method
from countsbench.task import TaskInfo

#: ReMDM-rescale strength: the rescaled-attrition eta CountsDiff uses on scRNA (SPEC section 5).
REMDM_ETA = 0.02
PAPERS = "Sahoo et al. 2024 (MDLM); Wang et al. 2025 (ReMDM)"


def feature_maxima(data: CountData) -> np.ndarray:
    """The largest count of each feature, ``(d,)``."""
    if data.n_samples == 0:
        return np.zeros(data.n_features, dtype=np.int64)
    top = data.counts.max(axis=0)
    return np.asarray(top.todense() if hasattr(top, "todense") else top, dtype=np.int64).ravel()


class MaskedDiffusion(DiffusionMethod):
    """Shared code of MDLM and ReMDM; the re-masking strength ``eta`` is 0 here (MDLM)."""

    streams = BASELINE_STREAMS
    inference_only = DiffusionMethod.base_inference_only | {"guidance"}

    def __init__(
        self,
        hidden: int = 12,
        n_layers: int = 3,
        token_dim: int = 4,
        time_dim: int = 64,
        use_conditions: bool = True,
        schedule: Literal["linear", "cosine"] = "linear",
        steps: int = 2000,
        batch_size: int = 64,
        lr: float = 2e-4,
        warmup_steps: int = 100,
        grad_clip: float = 1.0,
        ema_decay: float = 0.9999,
        cond_drop_prob: float = 0.2,
        n_steps: int = 200,
        guidance: float | None = None,
        n_samples: int = 1,
        sample_batch_size: int = 2048,
        count_classes: Literal["shared", "per_feature"] = "shared",
    ) -> None:
        super().__init__()
        keep_probability(schedule, 0.5)  # fail early on an unknown schedule
        if count_classes not in ("shared", "per_feature"):
            raise ValueError(f"count_classes must be 'shared' or 'per_feature', got {count_classes!r}")

    @property
    def remasking(self) -> float:
        return float(getattr(self, "eta", 0.0))

    @classmethod
    def defaults(cls, profile: str, task: TaskInfo) -> dict[str, Any]:
        """Linear alpha on generation, cosine on scRNA imputation with guidance 0.5; per-feature classes on
        gene-vector generation, where shared classes cost ~2.5 h a pbmc fit on 2 cores (27x the outputs)."""
        values = dict(TRAINING_PRESETS[(task.kind, profile)])
        if task.kind == "imputation":
            values.update({"schedule": "cosine", "hidden": 64, "guidance": 0.5 if task.condition_keys else None})
        elif choose_network(tuple(task.sample_shape)) == "transformer":
            values["count_classes"] = "per_feature"
        return values

    def model_spec(self, train: CountData) -> dict[str, Any]:
        return {
            "n_features": train.n_features,
            "n_classes": train.max_count() + 1,
            "vocabulary_sizes": list(self.vocabulary_sizes(train)),
            **({"max_counts": feature_maxima(train).tolist()} if self.count_classes == "per_feature" else {}),
        }

    @property
    def classes(self) -> CountClasses:
        """The output head's count classes, from the fitted spec (a model saved before per-feature
        classes existed has shared ones). Built once per spec: its blocks and masks are reused every step."""
        cached = self.__dict__.get("_classes")
        if cached is None or cached[0] is not self.spec:
            spec = self.spec
            if "max_counts" in spec:
                classes = CountClasses.per_feature(spec["max_counts"])
            else:
                classes = CountClasses.shared_by_all(spec["n_features"], spec["n_classes"])
            cached = self.__dict__["_classes"] = (spec, classes)
        return cached[1]

    def build_model(self, spec: Mapping[str, Any]) -> nn.Module:
        return TokenMLP(
            spec["n_features"],
            spec["n_classes"],
            spec["vocabulary_sizes"],
            self.hidden,
            self.n_layers,
            self.token_dim,
            self.time_dim,
            CountClasses.per_feature(spec["max_counts"]).n_outputs if "max_counts" in spec else None,
        )

    def tokens(self, counts: Tensor) -> Tensor:
        return self.classes.clip(counts)

    def make_loss(self) -> Loss:
        return self.loss

    def loss(self, model: nn.Module, training: TrainingBatch, randomness: Randomness) -> Tensor:
        x0, valid, codes, keep, g = training.x0, training.valid, training.codes, training.keep, randomness.noise
        batch = x0.shape[0]
        t = torch.rand(batch, generator=g, device=x0.device)
        alpha = keep_probability(self.schedule, t)
        valid = torch.ones_like(x0, dtype=torch.bool) if valid is None else valid
        masked = (torch.rand(x0.shape, generator=g, device=x0.device) >= alpha[:, None]) & valid
        tokens = self.tokens(x0)
        inputs = torch.where(masked | ~valid, model.mask_id, tokens)
        logits = model(inputs, t, codes, keep).float()
        cross_entropy = self.classes.cross_entropy(logits, tokens)
        per_row = (cross_entropy * masked).sum(dim=1) / valid.sum(dim=1).clamp_min(1)
        return (loss_weight(self.schedule, t) * per_row).mean()

    def _log_probs(self, model: nn.Module, x: Tensor, t: float, codes: Tensor | None, ctx: RunContext) -> Tensor:
        n = x.shape[0]
        times = torch.full((n,), t, device=x.device)
        codes = codes if codes is not None else torch.zeros(n, 0, dtype=torch.long, device=x.device)

        def forward(keep: Tensor, repeats: int) -> Tensor:
            with ctx.autocast():
                logits = model(tiled(x, repeats), tiled(times, repeats), tiled(codes, repeats), keep)
            return classes.log_softmax(logits.float())

        def guided(conditional: Tensor, unconditional: Tensor, w: float) -> Tensor:
            """``log_softmax(w log p_c + (1 - w) log p_u)``, per feature."""
            mixed = w * classes.log_softmax(conditional) + (1.0 - w) * classes.log_softmax(unconditional)
            return classes.log_softmax(mixed)

        classes = self.classes
        return Guidance(codes, self.guidance)(forward, n, guided, x.device)

    def reverse(
        self, model: nn.Module, rows: Rows, generator: torch.Generator, ctx: RunContext, on_step: Callable[[], object]
    ) -> Tensor:
        device, mask, classes = ctx.device, model.mask_id, self.classes
        shape = (rows.n, self.spec["n_features"])
        x = torch.full(shape, mask, dtype=torch.long, device=device)
        hidden = None if rows.keep is None else ~rows.keep
        known = None if rows.observed is None else ~rows.target & rows.keep
        times = np.linspace(1.0, 0.0, self.n_steps + 1)
        for t, s in zip(times[:-1], times[1:], strict=True):
            alpha_t, alpha_s = float(keep_probability(self.schedule, t)), float(keep_probability(self.schedule, s))
            sigma = self.remasking * max_attrition(alpha_t, alpha_s)  # ReMDM-rescale (0 for MDLM)
            decoded = classes.draw(self._log_probs(model, x, float(t), rows.codes, ctx), generator)
            is_masked = x == mask
            u = torch.rand(shape, generator=generator, device=device)
            unmask = is_masked & (u < birth_probability(alpha_t, alpha_s, sigma))
            remask = ~is_masked & (u < sigma)
            x = torch.where(unmask, decoded, torch.where(remask, mask, x))
            if hidden is not None:
                x = x.masked_fill(hidden, mask)
            if known is not None:  # RePaint: observed tokens at the forward marginal of time s
                visible = torch.rand(shape, generator=generator, device=device) < alpha_s
                x = torch.where(known, torch.where(visible, self.tokens(rows.observed), mask), x)
            on_step()
        return torch.where(x == mask, 0, x).float()


@register_method(
    "mdlm",
    kinds=("generation", "imputation"),
    role="baseline",
    summary="Masked diffusion (MDLM) over count tokens: SUBS, weighted masked cross-entropy, RePaint.",
    paper=PAPERS,
)
class MDLM(MaskedDiffusion):
    """MDLM: masked diffusion without re-masking (ReMDM with eta = 0)."""


@register_method(
    "remdm",
    kinds=("generation", "imputation"),
    role="baseline",
    summary="ReMDM: masked diffusion with rescaled re-masking (sigma = eta * sigma_max).",
    paper=PAPERS,
)
class ReMDM(MaskedDiffusion):
    """ReMDM-rescale: decoded tokens are re-masked with probability ``eta * sigma_max``. Its
    hyperparameters are MaskedDiffusion's (forwarded through ``**config``) plus ``eta``."""

    inference_only = MaskedDiffusion.inference_only | {"eta"}

    def __init__(self, eta: float = REMDM_ETA, **config: Any) -> None:
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        super().__init__(**config)
