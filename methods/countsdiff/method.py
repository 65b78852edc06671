"""The registered methods: ``countsdiff`` (the reference) and ``blackout`` (Santos et al. 2023).

Both are the same code with different defaults (SPEC section 7): Blackout is CountsDiff with the
``fi_discrete`` schedule, no guidance and no attrition. Every constructor argument is a hyperparameter
(settable with ``--set``); `CountsDiff.defaults` gives the per-profile, per-task defaults.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.registry import register_method
from countsbench.task import TaskInfo
from methods.countsdiff.attrition import Attrition
from methods.countsdiff.denoiser import Denoiser, feature_scales
from methods.countsdiff.inference import SamplerSettings, condition_codes, generate, impute
from methods.countsdiff.networks import NetworkConfig, choose_network
from methods.countsdiff.schedules import AlphaSchedule, make_schedule
from methods.countsdiff.trainer import STREAM_INIT, Trainer, TrainingConfig, TrainingRows

PAPER = "CountsDiff: A Diffusion Model on the Natural Numbers"
MODEL_FILE = "countsdiff.pt"

#: Sampler defaults per task kind (SPEC section 4 table); images are told apart by their (C, H, W) shape.
SAMPLER_DEFAULTS: dict[str, dict[str, Any]] = {
    "imputation": {"n_steps": 20, "guidance": 0.5, "attrition": "rescaled", "eta": 0.02},
    "image": {"n_steps": 100, "guidance": 1.0, "attrition": "rescaled", "eta": 0.005},
    "vector": {"n_steps": 200, "guidance": None, "attrition": "none"},
}

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
        "steps": 1500,
        "batch_size": 32,
        "lr": 1e-3,
        "warmup_steps": 100,
        "ema_decay": 0.999,
        "output_scale": True,  # a small network learns the large counts of high genes in minutes (see report)
    },
    ("transformer", "paper"): {"dim": 64, "n_heads": 4, "n_layers": 3, "steps": 100_000, "batch_size": 512},
    ("unet", "quick"): {  # digits in minutes on a loaded 2-core CPU; 50 steps beat 100 (FID 18.9 vs 28.0)
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
#: The heart atlas configuration (SPEC section 6): E = 128, H = 8, 50k steps, weight decay 1e-4.
HEART_PAPER = {"dim": 128, "n_heads": 8, "steps": 50_000, "weight_decay": 1e-4}


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.replace(" ", "").split(",") if part)


@register_method(
    "countsdiff",
    kinds=("imputation", "generation"),
    role="reference",
    summary="CountsDiff: binomial-death diffusion on counts (cosine schedule, rescaled attrition, guidance).",
    paper=PAPER,
)
class CountsDiff(Method):
    """CountsDiff (paper sections 3-4): binomial death forward process, weighted Poisson loss, birth-death
    reverse process with attrition, predictor-free guidance and RePaint imputation."""

    #: Method-specific defaults applied over the profile's (Blackout overrides them).
    family_defaults: ClassVar[Mapping[str, Any]] = {}
    inference_only = frozenset(
        {
            "n_steps",
            "time_spacing",
            "guidance",
            "attrition",
            "eta",
            "tau_leaping",
            "repaint_repeats",
            "repaint_jump",
            "n_samples",
            "sample_batch_size",
        }
    )

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
    ) -> None:
        # Hyperparameters are attributes of the same name (the runner resets inference-only ones).
        vars(self).update({k: v for k, v in locals().items() if k not in ("self", "__class__")})
        self.sampler_settings()  # fail early on an invalid attrition or an impossible grid
        self.denoiser: Denoiser | None = None
        self.condition_keys: tuple[str, ...] = ()
        self.max_value: int | None = None
        self.losses: list[float] = []

    @property
    def alpha_schedule(self) -> AlphaSchedule:
        return make_schedule(self.schedule, self.fi_horizon, self.discrete_grid)

    # --- defaults -----------------------------------------------------------------------------
    @classmethod
    def defaults(cls, profile: str, task: TaskInfo) -> dict[str, Any]:
        """Profile and task-kind defaults (SPEC sections 4 and 6), then this method's own."""
        network = choose_network(tuple(task.sample_shape))
        data_kind = "imputation" if task.kind == "imputation" else ("image" if network == "unet" else "vector")
        values: dict[str, Any] = {"network": network, **SAMPLER_DEFAULTS[data_kind]}
        if not task.condition_keys:
            values["guidance"] = None
        if data_kind == "image" and profile == "paper":
            values["n_steps"] = 1000
        if data_kind == "imputation" and profile == "paper":
            values["n_samples"] = 5  # the paper's fetal settings (SPEC section 5)
        values.update(NETWORK_PRESETS[(network, profile)])
        if profile == "paper" and network == "transformer" and "heart" in task.name:
            values.update(HEART_PAPER)
        values.update(cls.family_defaults)
        if values.get("schedule") == "fi_discrete" and profile == "paper":
            values["n_steps"] = values.get("discrete_grid", 1000)  # Blackout samples on its own grid
        return values

    # --- training -----------------------------------------------------------------------------
    def network_config(self, data: CountData) -> NetworkConfig:
        c = self.config
        kind = choose_network(data.sample_shape) if c["network"] == "auto" else c["network"]
        keys = data.condition_keys if self.use_conditions else ()
        return NetworkConfig(
            kind=kind,
            sample_shape=tuple(data.sample_shape),
            vocabulary_sizes=tuple(len(data.vocabularies[key]) for key in keys),
            mlp_hidden=c["mlp_hidden"],
            mlp_layers=c["mlp_layers"],
            time_dim=c["time_dim"],
            dim=c["dim"],
            n_heads=c["n_heads"],
            n_layers=c["n_layers"],
            ff_mult=c["ff_mult"],
            dropout=c["dropout"],
            attention_dropout=c["attention_dropout"],
            pack=c["pack_tokens"],
            unet_channels=_ints(c["unet_channels"]),
            unet_layers_per_block=c["unet_layers_per_block"],
            unet_attention_resolutions=_ints(c["unet_attention_resolutions"]),
        )

    def training_config(self) -> TrainingConfig:
        fields = {f.name for f in dataclasses.fields(TrainingConfig)}
        return TrainingConfig(**{k: v for k, v in self.config.items() if k in fields})

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        torch.manual_seed(int(ctx.rng(STREAM_INIT).integers(2**62)))  # weights and dropout
        network = self.network_config(train)
        self.condition_keys = train.condition_keys if self.use_conditions else ()
        self.max_value = train.max_value
        denoiser = Denoiser(network, train.max_value)
        if self.output_scale:
            denoiser.output_scale.copy_(feature_scales(train))
        checkpoint = None if ctx.output_dir is None else Path(ctx.output_dir) / "checkpoints" / "countsdiff.pt"
        trainer = Trainer(denoiser, self.alpha_schedule, self.training_config(), ctx, checkpoint)
        self.losses = trainer.fit(TrainingRows(self._conditioned(train), ctx.device))
        self.denoiser = trainer.ema.model

    def _conditioned(self, data: CountData) -> CountData:
        return data if self.use_conditions else dataclasses.replace(data, conditions={}, vocabularies={})

    # --- inference ----------------------------------------------------------------------------
    def sampler_settings(self) -> SamplerSettings:
        return SamplerSettings(
            grid=self.alpha_schedule.sampling_grid(self.n_steps, self.time_spacing),
            attrition=Attrition(self.attrition, self.eta),
            guidance=self.guidance,
            max_value=getattr(self, "max_value", None),
            tau_leaping=self.tau_leaping,
            repeats=self.repaint_repeats,
            jump=self.repaint_jump,
            batch_size=self.sample_batch_size,
        )

    def _ready(self, ctx: RunContext) -> Denoiser:
        if self.denoiser is None:
            raise RuntimeError(f"{self.name or type(self).__name__} must be fitted (or loaded) before sampling")
        return self.denoiser.to(ctx.device).eval()

    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        """RePaint imputation: (n, d) for one imputation, (K, n, d) for K = ``n_samples`` > 1."""
        k = n_samples if n_samples > 1 else self.n_samples
        denoiser = self._ready(ctx)
        data = self._conditioned(data)
        if data.condition_keys != self.condition_keys:
            raise ValueError(f"the model was trained with conditions {self.condition_keys}, got {data.condition_keys}")
        out = impute(denoiser, data, target_mask, self.sampler_settings(), ctx, k, bool(self.condition_keys))
        return out[0] if k == 1 else out

    def sample(self, n: int, conditions: Mapping[str, np.ndarray] | None, ctx: RunContext) -> np.ndarray:
        denoiser = self._ready(ctx)
        codes = condition_codes(conditions, self.condition_keys, n)
        return generate(denoiser, n, codes, self.sampler_settings(), ctx)

    # --- persistence --------------------------------------------------------------------------
    def n_parameters(self) -> int | None:
        return None if self.denoiser is None else sum(p.numel() for p in self.denoiser.parameters())

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "method": self.name,
            "config": self.config,
            "network": None if self.denoiser is None else dataclasses.asdict(self.denoiser.config),
            "condition_keys": self.condition_keys,
            "max_value": self.max_value,
            "losses": self.losses,
            "model": None if self.denoiser is None else {k: v.cpu() for k, v in self.denoiser.state_dict().items()},
        }
        torch.save(state, directory / MODEL_FILE)

    @classmethod
    def load(cls, directory: Path) -> CountsDiff:
        state = torch.load(Path(directory) / MODEL_FILE, map_location="cpu", weights_only=False)
        if state["method"] != cls.name:
            raise TypeError(f"{directory} holds a {state['method']!r} model, not {cls.name!r}")
        method = cls(**state["config"])
        method.condition_keys, method.max_value, method.losses = (
            tuple(state["condition_keys"]),
            state["max_value"],
            state["losses"],
        )
        if state["network"] is not None:
            network = NetworkConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["network"].items()})
            method.denoiser = Denoiser(network, method.max_value)
            method.denoiser.load_state_dict(state["model"])
            method.denoiser.eval()
        return method


def with_defaults(init: Any, **defaults: Any) -> Any:
    """``init`` with other default values, visible in its signature (so the config system reads them)."""
    signature = inspect.signature(init)
    unknown = set(defaults) - set(signature.parameters)
    if unknown:
        raise TypeError(f"unknown hyperparameters {sorted(unknown)}")

    @functools.wraps(init)
    def wrapper(self: Any, **kwargs: Any) -> None:
        init(self, **{**defaults, **kwargs})

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(default=defaults.get(p.name, p.default)) for p in signature.parameters.values()]
    )
    return wrapper


BLACKOUT_DEFAULTS: dict[str, Any] = {"schedule": "fi_discrete", "guidance": None, "attrition": "none"}


@register_method(
    "blackout",
    kinds=("imputation", "generation"),
    role="baseline",
    summary="Blackout diffusion (Santos et al. 2023): CountsDiff with fi_discrete, no guidance, no attrition.",
    paper="Blackout Diffusion: Generative Diffusion Models in Discrete-State Spaces (ICML 2023)",
)
class Blackout(CountsDiff):
    """Blackout diffusion: the ``fi_discrete`` schedule, pure-birth sampling, no guidance (SPEC section 7)."""

    family_defaults = BLACKOUT_DEFAULTS
    __init__ = with_defaults(CountsDiff.__init__, **BLACKOUT_DEFAULTS)
