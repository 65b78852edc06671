"""The registered methods: ``countsdiff`` (the reference) and ``blackout`` (Santos et al. 2023).

Both are the same code with different defaults (SPEC section 7): Blackout is CountsDiff with the
``fi_discrete`` schedule, no guidance and no attrition. Every constructor argument is a hyperparameter
(settable with ``--set``); the defaults per task kind and profile are the tables below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.countsdiff.attrition import Attrition
from countsbench.methods.countsdiff.denoiser import Denoiser, RateHead, feature_scales
from countsbench.methods.countsdiff.loss import BinomialDeathLoss, LossWeighting
from countsbench.methods.countsdiff.networks import NetworkConfig, choose_network
from countsbench.methods.countsdiff.posterior_mean import posterior_mean_intensity
from countsbench.methods.countsdiff.rates import RateModel
from countsbench.methods.countsdiff.sampler import n_evaluations, reverse_process
from countsbench.methods.countsdiff.schedules import AlphaSchedule, make_schedule
from countsbench.methods.diffusion.buckets import bucket_count
from countsbench.methods.diffusion.method import DiffusionMethod
from countsbench.methods.diffusion.sampling import Rows
from countsbench.methods.diffusion.training import Loss, Streams
from countsbench.registry import register_method
from countsbench.task import TaskInfo

PAPER = "CountsDiff: A Diffusion Model on the Natural Numbers"

#: Sampler defaults per (data kind, profile) (SPEC section 4 table; paper section 5 for K = 5).
SAMPLER_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("imputation", "quick"): {"n_steps": 20, "guidance": 0.5, "attrition": "rescaled", "eta": 0.02},
    ("imputation", "paper"): {"n_steps": 20, "guidance": 0.5, "attrition": "rescaled", "eta": 0.02, "n_samples": 5},
    ("image", "quick"): {"n_steps": 100, "guidance": 1.0, "attrition": "rescaled", "eta": 0.005},
    ("image", "paper"): {"n_steps": 1000, "guidance": 1.0, "attrition": "rescaled", "eta": 0.005},
    ("vector", "quick"): {"n_steps": 200, "guidance": None, "attrition": "none"},
    ("vector", "paper"): {"n_steps": 200, "guidance": None, "attrition": "none"},
}

#: The backbones a user can ask for by name (``--set network=...``), each with its presets.
NETWORK_KINDS = ("mlp", "transformer", "unet")

#: Backbone and training presets: (network, profile) -> defaults (SPEC section 6; "quick" fits 2 CPU cores).
NETWORK_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("mlp", "quick"): {"steps": 4000, "batch_size": 256, "lr": 2e-3, "ema_decay": 0.999},
    ("mlp", "paper"): {"steps": 50_000, "batch_size": 256, "lr": 2e-4},
    ("transformer", "quick"): {
        "dim": 32,
        "n_heads": 4,
        "n_layers": 2,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        # 3,000 steps as 2 length buckets: 5.2 min a pbmc_mcar run on 2 idle cores (1,500 unbucketed: 3.2 min);
        # RMSE 3.06 -> 2.79, energy distance 0.059 -> 0.042 over 3 seeds (leaderboards/pbmc_mcar.md)
        "steps": 3000,
        "micro_batches": 2,
        "batch_size": 32,
        "lr": 1e-3,
        "warmup_steps": 100,
        "ema_decay": 0.999,
        "output_scale": True,  # a small network learns the large counts of high genes in minutes (see report)
    },
    ("transformer", "paper"): {
        "dim": 64,
        "n_heads": 4,
        "n_layers": 3,
        "steps": 100_000,
        "batch_size": 512,
        # length buckets of 8 cells on a CPU, none on a GPU (`bucket_count`): the same expected gradient;
        # a step 4.1-4.5x faster without attention dropout, and as shipped in 1.2-1.5 GB where one bucket needs
        # ~27 GB (benchmarks/results/countsdiff_speed.json)
        "micro_batches": "auto",
        "sample_buckets": "auto",
    },
    ("unet", "quick"): {  # digits in minutes on a loaded 2-core CPU
        "unet_channels": "16,32",
        "unet_layers_per_block": 1,
        "unet_attention_resolutions": "",
        "dropout": 0.0,
        "steps": 1000,
        "batch_size": 64,
        "lr": 1e-3,
        "ema_decay": 0.999,
        "n_steps": 50,
    },
    ("unet", "paper"): {"steps": 1_000_000, "batch_size": 128},
}


def data_kind(task: TaskInfo, network: str) -> str:
    """``imputation``, ``image`` (U-Net generation) or ``vector`` (MLP/transformer generation)."""
    if task.kind == "imputation":
        return "imputation"
    return "image" if network == "unet" else "vector"


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.replace(" ", "").split(",") if part)


@register_method(
    "countsdiff",
    kinds=("imputation", "generation", "denoising"),
    role="reference",
    summary="CountsDiff: binomial-death diffusion on counts (cosine schedule, rescaled attrition, guidance).",
    paper=PAPER,
)
class CountsDiff(DiffusionMethod):
    """CountsDiff (paper sections 3-4): binomial death forward process, weighted Poisson loss, birth-death
    reverse process with attrition, predictor-free guidance and RePaint imputation.

    Speed options (issue 17; default off, they change a fixed seed's floating-point results):
    ``micro_batches`` trains each batch as K length buckets with gradient accumulation, ``sample_buckets``
    evaluates each sampling chunk as K length buckets, ``compile_model`` runs the backbone through
    ``torch.compile`` (benchmarks/countsdiff_speed.py measures each). On a CPU, buckets of 4-8 cells
    were fastest for the paper network, whose activations then stay in cache (docs/performance.md);
    ``"auto"`` (the paper transformer preset) takes 8 cells a bucket on a CPU and one bucket on a GPU."""

    streams = Streams(init=0, batches=1, times=2, noise=3, sampling=4)
    #: Defaults of this family per profile, over the task-kind tables (Blackout samples on its own grid).
    family_profiles: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    inference_only = DiffusionMethod.base_inference_only | {
        "time_spacing",
        "guidance",
        "attrition",
        "eta",
        "tau_leaping",
        "repaint_repeats",
        "repaint_jump",
        "sample_buckets",
    }

    def __init__(
        self,
        network: Literal["auto", "mlp", "transformer", "unet"] = "auto",
        mlp_hidden: int = 48,
        mlp_layers: int = 3,
        time_dim: int = 64,
        dim: int = 64,
        n_heads: int = 4,
        n_layers: int = 3,
        ff_mult: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        pack_tokens: bool = True,
        unet_channels: str = "128,256,256,256",
        unet_layers_per_block: int = 2,
        unet_attention_resolutions: str = "16",
        use_conditions: bool = True,
        output_scale: bool = False,
        rate_head: RateHead = "scaled",
        loss_weighting: LossWeighting = "paper",
        schedule: Literal["cosine", "fi", "fi_discrete"] = "cosine",
        fi_horizon: float = 15.0,
        discrete_grid: int = 1000,
        stratified_times: bool = False,
        steps: int = 2000,
        batch_size: int = 64,
        lr: float = 2e-4,
        warmup_steps: int = 100,
        grad_clip: float = 1.0,
        ema_decay: float = 0.9999,
        weight_decay: float = 0.0,
        cond_drop_prob: float = 0.2,
        checkpoint_every: int = 500,
        micro_batches: int | Literal["auto"] = 1,
        compile_model: bool = False,
        n_steps: int = 20,
        time_spacing: Literal["time", "alpha"] = "time",
        guidance: float | None = None,
        attrition: Literal["none", "max", "capped", "rescaled"] = "rescaled",
        eta: float = 0.02,
        tau_leaping: bool = False,
        repaint_repeats: int = 1,
        repaint_jump: int = 0,
        n_samples: int = 1,
        sample_batch_size: int = 256,
        sample_buckets: int | Literal["auto"] = 1,
    ) -> None:
        super().__init__()
        for name, value in (("micro_batches", micro_batches), ("sample_buckets", sample_buckets)):
            bucket_count(value, 1, "cpu", name)  # fail early on an invalid setting
        self.sampler_grid()  # fail early on an impossible grid
        Attrition(attrition, eta)  # ... and on an invalid attrition

    @property
    def alpha_schedule(self) -> AlphaSchedule:
        return make_schedule(self.schedule, self.fi_horizon, self.discrete_grid)

    def sampler_grid(self):
        return self.alpha_schedule.sampling_grid(self.n_steps, self.time_spacing)

    @classmethod
    def defaults_for(cls, profile: str, task: TaskInfo, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """``--set network=X`` takes network X's presets (steps, batch, widths), not the automatic one's."""
        network = overrides.get("network", "auto")
        return cls.defaults(profile, task, network if network in NETWORK_KINDS else "auto")

    @classmethod
    def defaults(cls, profile: str, task: TaskInfo, network: str = "auto") -> dict[str, Any]:
        """The tables, in order: sampler by task kind, backbone by network (``auto``: chosen by the task),
        the task's own backbone presets (`TaskInfo.network_presets`), then this family's (SPEC sections 4
        and 6)."""
        if network == "auto":
            # Denoising and vector generation have no valid mask to pack the gene transformer's tokens by:
            # it attends over every gene (a pbmc_generate cell with the quick transformer: ~25 min of fit
            # and ~3 min of sampling at 1 thread, against ~30 s for the MLP, and far behind it on C2ST and
            # recall); the MLP is the default there (docs/denoising.md, docs/generation.md).
            network = choose_network(tuple(task.sample_shape))
            if task.kind == "denoising" or (task.kind == "generation" and network == "transformer"):
                network = "mlp"
        values: dict[str, Any] = {"network": network, **SAMPLER_DEFAULTS[(data_kind(task, network), profile)]}
        if not task.condition_keys:
            values["guidance"] = None  # nothing to guide by
        values.update(NETWORK_PRESETS[(network, profile)])
        values.update(task.network_presets.get(network, {}).get(profile, {}))
        if task.kind == "denoising":
            # the denoiser reads the rate head at t = 0, where the paper's w(t) = -alpha'(t) barely trains it
            # and the ELBO weighting does (docs/denoising.md, leaderboards/pbmc_denoise.md)
            values["loss_weighting"] = "elbo"
        values.update(cls.hyperparameter_defaults)  # a family's own defaults win over the task-kind tables
        values.update(cls.family_profiles.get(profile, {}))
        return values

    @torch.inference_mode()
    def denoise(self, data: CountData, ctx: RunContext) -> np.ndarray:
        """MCV denoising: ``E[lam | y]``, the rate head's unit rate at t = 0 (alpha = 1) with x_t = y, the
        training counts themselves (`posterior_mean_intensity`; ``E[x0 - x_t | x_t] = (1 - alpha_t) E[lam |
        x_t]``). On the scale of y: the expected count of an independent replicate of each training count."""
        model = self._ready(ctx)
        data = self.conditioned(data)
        codes = data.condition_matrix() if self.condition_keys else None
        return posterior_mean_intensity(
            model, data.dense(), codes, 0.0, 1.0, ctx.device, self.sample_batch_size, ctx.autocast
        )

    # --- the family's mathematics -------------------------------------------------------------
    def network_config(self, data: CountData) -> NetworkConfig:
        kind = choose_network(data.sample_shape) if self.network == "auto" else self.network
        return NetworkConfig(
            kind=kind,
            sample_shape=tuple(data.sample_shape),
            vocabulary_sizes=self.vocabulary_sizes(data),
            mlp_hidden=self.mlp_hidden,
            mlp_layers=self.mlp_layers,
            time_dim=self.time_dim,
            dim=self.dim,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            ff_mult=self.ff_mult,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            pack=self.pack_tokens,
            unet_channels=_ints(self.unet_channels),
            unet_layers_per_block=self.unet_layers_per_block,
            unet_attention_resolutions=_ints(self.unet_attention_resolutions),
        )

    def model_spec(self, train: CountData) -> dict[str, Any]:
        return {
            "network": dataclasses.asdict(self.network_config(train)),
            "max_value": train.max_value,
            "n_features": train.n_features,
        }

    def build_model(self, spec: Mapping[str, Any]) -> Denoiser:
        network = NetworkConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["network"].items()})
        return Denoiser(network, spec["max_value"], self.rate_head)

    def prepare_model(self, model: Denoiser, train: CountData) -> None:
        if self.output_scale:
            model.output_scale.copy_(feature_scales(train))

    def make_loss(self) -> Loss:
        return BinomialDeathLoss(self.alpha_schedule, self.loss_weighting, self.stratified_times)

    def steps_per_chunk(self) -> int:
        return n_evaluations(self.n_steps, self.repaint_repeats, self.repaint_jump)

    def reverse(
        self, model: Denoiser, rows: Rows, generator: torch.Generator, ctx: RunContext, on_step: Callable[[], object]
    ) -> Tensor:
        rates = RateModel(model, rows.codes, rows.keep, self.guidance, ctx.autocast, self.sample_buckets)
        return reverse_process(
            rates,
            (rows.n, model.config.n_features),
            self.sampler_grid(),
            Attrition(self.attrition, self.eta),
            generator,
            device=ctx.device,
            keep=rows.keep,
            observed=rows.observed,
            target=rows.target,
            max_value=self.spec.get("max_value"),
            tau_leaping=self.tau_leaping,
            repeats=self.repaint_repeats,
            jump=self.repaint_jump,
            on_step=on_step,
        )


@register_method(
    "blackout",
    kinds=("imputation", "generation", "denoising"),
    role="baseline",
    summary="Blackout diffusion (Santos et al. 2023): CountsDiff with fi_discrete, no guidance, no attrition.",
    paper="Blackout Diffusion: Generative Diffusion Models in Discrete-State Spaces (ICML 2023)",
)
class Blackout(CountsDiff):
    """Blackout diffusion: the ``fi_discrete`` schedule, pure-birth sampling, no guidance (SPEC section 7).
    The paper profile samples on its own K = 1000 grid; quick profiles on n_steps of it."""

    hyperparameter_defaults = {"schedule": "fi_discrete", "guidance": None, "attrition": "none"}
    family_profiles = {"paper": {"n_steps": 1000}}
