"""`DiffusionMethod`: the Method shared by every diffusion family (fit, sample, impute, save/load).

A family subclass contributes only its mathematics through four hooks: `model_spec` (what rebuilds its
network, JSON-able), `build_model`, `make_loss` (the training objective, a `Loss` callable) and
`reverse` (its reverse process on a `Rows` chunk). Training is the ONE `Trainer`, sampling and
imputation the ONE chunked driver of `countsbench.methods.diffusion.sampling`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from countsbench.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, UNIT_INTERVAL, Range
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.methods.diffusion import sampling
from countsbench.methods.diffusion.compile import compile_backbone
from countsbench.methods.diffusion.rows import TrainingRows
from countsbench.methods.diffusion.sampling import Rows
from countsbench.methods.diffusion.training import Loss, Streams, Trainer, TrainingConfig
from countsbench.methods.diffusion.transfer import sampling_chunk_rows

#: Saved models: weights as a tensor-only torch file, everything else as JSON (nothing executes on load).
WEIGHTS_FILE, MANIFEST_FILE = "weights.pt", "model.json"
MODEL_FORMAT = 2


class DiffusionMethod(Method):
    """Base of the diffusion methods. Hyperparameters are the subclass constructor's keyword arguments
    (recorded by the `Method` constructor hook); those of `TrainingConfig` drive the `Trainer`."""

    #: Random stream ids of this family (fixed per family so that a seed fixes its runs).
    streams: ClassVar[Streams]
    base_inference_only: ClassVar[frozenset[str]] = frozenset({"n_steps", "n_samples", "sample_batch_size"})
    #: The accepted values of every family's hyperparameters (a family has a subset of these names).
    hyperparameter_ranges = {
        **dict.fromkeys(
            ["steps", "batch_size", "checkpoint_every", "n_steps", "n_samples", "sample_batch_size"], AT_LEAST_ONE
        ),
        **dict.fromkeys(
            [
                "hidden",
                "mlp_hidden",
                "mlp_layers",
                "time_dim",
                "dim",
                "n_heads",
                "n_layers",
                "ff_mult",
                "token_dim",
                "unet_layers_per_block",
                "n_train_steps",
                "discrete_grid",
                "repaint_repeats",
                "micro_batches",  # or "auto" (a string: outside a numeric range)
                "sample_buckets",
            ],
            AT_LEAST_ONE,
        ),
        **dict.fromkeys(["lr", "grad_clip", "fi_horizon"], POSITIVE),
        **dict.fromkeys(["warmup_steps", "weight_decay", "guidance", "repaint_jump"], NON_NEGATIVE),
        **dict.fromkeys(["ema_decay", "cond_drop_prob", "eta"], UNIT_INTERVAL),
        **dict.fromkeys(["dropout", "attention_dropout"], Range(0, 1, high_open=True)),
    }

    def __init__(self, **config: Any) -> None:
        self.model: nn.Module | None = None
        self.spec: dict[str, Any] = {}
        self.condition_keys: tuple[str, ...] = ()
        self.losses: list[float] = []

    # --- family hooks -------------------------------------------------------------------------
    def model_spec(self, train: CountData) -> dict[str, Any]:
        """JSON-able facts about the training data that `build_model` needs (saved with the model)."""
        raise NotImplementedError

    def build_model(self, spec: Mapping[str, Any]) -> nn.Module:
        raise NotImplementedError

    def make_loss(self) -> Loss:
        raise NotImplementedError

    def reverse(
        self, model: nn.Module, rows: Rows, generator: torch.Generator, ctx: RunContext, on_step: Callable[[], object]
    ) -> Tensor:
        """(n, d) integer-valued counts; for imputation the target entries are what is kept."""
        raise NotImplementedError

    def prepare_model(self, model: nn.Module, train: CountData) -> None:
        """Data-dependent initialisation before training (none by default)."""

    def steps_per_chunk(self) -> int:
        """Reverse steps (network evaluations) per chunk, for progress reporting."""
        return int(self.n_steps)

    # --- fitting ------------------------------------------------------------------------------
    def conditioned(self, data: CountData) -> CountData:
        """``data``, without its conditions when ``use_conditions`` is off."""
        use = getattr(self, "use_conditions", True)
        return data if use else dataclasses.replace(data, conditions={}, vocabularies={})

    def vocabulary_sizes(self, data: CountData) -> tuple[int, ...]:
        return tuple(len(data.vocabularies[key]) for key in self.conditioned(data).condition_keys)

    def training_config(self) -> TrainingConfig:
        fields = {f.name for f in dataclasses.fields(TrainingConfig)}
        return TrainingConfig(**{k: v for k, v in self.config.items() if k in fields})

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        torch.manual_seed(int(ctx.rng(self.streams.init).integers(2**62)))  # initial weights and dropout
        data = self.conditioned(train)
        self.condition_keys = data.condition_keys
        self.spec = self.model_spec(train)
        model = self.build_model(self.spec)
        self.prepare_model(model, train)
        checkpoint = None if ctx.output_dir is None else Path(ctx.output_dir) / "checkpoints" / f"{self.name}.pt"
        trainer = Trainer(
            model, self.make_loss(), self.training_config(), ctx, self.streams, checkpoint, f"train {self.name}"
        )
        self.losses = trainer.fit(TrainingRows(data, ctx.device))
        self.model = trainer.ema.model.eval()

    def _ready(self, ctx: RunContext) -> nn.Module:
        if self.model is None:
            raise RuntimeError(f"{self.name or type(self).__name__} must be fitted (or loaded) before sampling")
        model = self.model.to(ctx.device).eval()
        if getattr(self, "compile_model", False):
            compile_backbone(model, ctx.device, training=False)
        return model

    # --- inference ----------------------------------------------------------------------------
    def _reverse_on(self, model: nn.Module, ctx: RunContext) -> sampling.Reverse:
        return lambda rows, generator, on_step: self.reverse(model, rows, generator, ctx, on_step)

    @torch.inference_mode()
    def sample(self, n: int, conditions: Mapping[str, np.ndarray] | None, ctx: RunContext) -> np.ndarray:
        model = self._ready(ctx)
        codes = sampling.condition_codes(conditions, self.condition_keys, n)
        generator = ctx.torch_generator(self.streams.sampling)
        return sampling.generate(
            self._reverse_on(model, ctx),
            n,
            int(self.spec["n_features"]),
            codes,
            ctx,
            generator,
            sampling_chunk_rows(self.sample_batch_size, ctx.device),
            self.steps_per_chunk(),
            desc=f"sample {self.name}",
        )

    @torch.inference_mode()
    def impute(
        self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int | None = None
    ) -> np.ndarray:
        """RePaint imputation (SPEC section 5): (n, d) for one imputation, (K, n, d) for K > 1.
        ``n_samples`` is authoritative; the ``n_samples`` hyperparameter is only its default."""
        k = int(self.n_samples if n_samples is None else n_samples)
        if k < 1:
            raise ValueError(f"n_samples must be >= 1, got {k}")
        model = self._ready(ctx)
        data = self.conditioned(data)
        if data.condition_keys != self.condition_keys:
            raise ValueError(f"the model was trained with conditions {self.condition_keys}, got {data.condition_keys}")
        codes = data.condition_matrix() if self.condition_keys else None
        generator = ctx.torch_generator(self.streams.sampling)
        out = sampling.impute(
            self._reverse_on(model, ctx),
            data,
            target_mask,
            k,
            codes,
            ctx,
            generator,
            sampling_chunk_rows(self.sample_batch_size, ctx.device),
            self.steps_per_chunk(),
            desc=f"impute {self.name}",
        )
        return out[0] if k == 1 else out

    # --- persistence --------------------------------------------------------------------------
    def n_parameters(self) -> int | None:
        return None if self.model is None else sum(p.numel() for p in self.model.parameters())

    def save(self, directory: Path) -> None:
        """``model.json`` (method, format, hyperparameters, model spec, condition keys, losses) and
        ``weights.pt`` (the EMA weights, tensors only), each written atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {
            "method": self.name,
            "format": MODEL_FORMAT,
            "config": self.config,
            "spec": self.spec,
            "condition_keys": list(self.condition_keys),
            "losses": self.losses,
        }
        if self.model is not None:
            weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            _atomic(directory / WEIGHTS_FILE, lambda path: torch.save(weights, path))
        _atomic(directory / MANIFEST_FILE, lambda path: path.write_text(json.dumps(manifest, indent=1)))

    @classmethod
    def load(cls, directory: Path) -> DiffusionMethod:
        directory = Path(directory)
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        if manifest.get("method") != cls.name:
            raise TypeError(f"{directory} holds a {manifest.get('method')!r} model, not {cls.name!r}")
        if manifest.get("format") != MODEL_FORMAT:
            raise TypeError(f"{directory}: model format {manifest.get('format')!r}, expected {MODEL_FORMAT}; refit it")
        method = cls(**manifest["config"])
        method.spec, method.losses = manifest["spec"], list(manifest["losses"])
        method.condition_keys = tuple(manifest["condition_keys"])
        if (directory / WEIGHTS_FILE).exists():
            model = method.build_model(method.spec)
            model.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
            method.model = model.eval()
        return method


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same directory, fsync, then rename over ``path``."""
    partial = path.with_name(path.name + ".partial")
    write(partial)
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, path)
