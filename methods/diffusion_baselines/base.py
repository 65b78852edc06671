"""The Method shared by the diffusion baselines: hyperparameters, fitting, chunked sampling and RePaint
imputation, persistence. A family supplies `build_model`, `loss` and `reverse` (its sampler)."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.task import TaskInfo
from methods.countsdiff.inference import condition_codes
from methods.countsdiff.trainer import TrainingRows
from methods.diffusion_baselines.training import STREAM_INIT, STREAM_SAMPLING, TrainingSettings, train_model

#: Defaults per (task kind, profile): the toy MLPs of the paper (quick budgets as CountsDiff's on CPU).
TRAINING_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("generation", "quick"): {"steps": 4000, "batch_size": 256, "lr": 2e-3, "ema_decay": 0.999, "n_steps": 200},
    ("generation", "paper"): {"steps": 50_000, "batch_size": 256, "lr": 2e-4, "n_steps": 1000},
    ("imputation", "quick"): {"steps": 1500, "batch_size": 64, "lr": 1e-3, "ema_decay": 0.999, "n_steps": 20},
    ("imputation", "paper"): {"steps": 100_000, "batch_size": 512, "lr": 2e-4, "n_steps": 20},
}


@dataclasses.dataclass
class Rows:
    """One chunk of rows to run the reverse process on (``observed``/``target``/``keep`` for imputation)."""

    n: int
    codes: Tensor | None
    observed: Tensor | None = None  # (n, d) float counts
    target: Tensor | None = None  # (n, d) bool: entries to impute
    keep: Tensor | None = None  # (n, d) bool: valid OR target (the rest are hidden, SPEC section 4 step 5)


class DiffusionBaseline(Method):
    """Base of ``gaussian_ddpm``, ``mdlm`` and ``remdm``; hyperparameters are the subclasses' ``__init__``
    arguments, kept as attributes of the same name (the runner resets inference-only ones)."""

    base_inference_only: ClassVar[frozenset[str]] = frozenset({"n_steps", "n_samples", "sample_batch_size"})

    def __init__(self, **config: Any) -> None:
        vars(self).update(config)
        self.model: nn.Module | None = None
        self.condition_keys: tuple[str, ...] = ()
        self.n_features = 0
        self.max_count = 0
        self.losses: list[float] = []

    @classmethod
    def defaults(cls, profile: str, task: TaskInfo) -> dict[str, Any]:
        return dict(TRAINING_PRESETS[(task.kind, profile)])

    # --- family hooks -------------------------------------------------------------------------
    def build_model(self, train: CountData) -> nn.Module:
        raise NotImplementedError

    def loss(
        self, model: nn.Module, x0: Tensor, valid: Tensor | None, codes: Tensor, keep: Tensor, g: torch.Generator
    ) -> Tensor:
        raise NotImplementedError

    def reverse(self, model: nn.Module, rows: Rows, generator: torch.Generator, ctx: RunContext) -> Tensor:
        """(n, d) integer-valued counts; for imputation the target entries are what is kept."""
        raise NotImplementedError

    # --- fitting ------------------------------------------------------------------------------
    def _conditioned(self, data: CountData) -> CountData:
        use = getattr(self, "use_conditions", True)
        return data if use else dataclasses.replace(data, conditions={}, vocabularies={})

    def vocabulary_sizes(self, data: CountData) -> tuple[int, ...]:
        return tuple(len(data.vocabularies[key]) for key in self._conditioned(data).condition_keys)

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        torch.manual_seed(int(ctx.rng(STREAM_INIT).integers(2**62)))  # initial weights
        data = self._conditioned(train)
        self.condition_keys = data.condition_keys
        self.n_features, self.max_count = train.n_features, train.max_count()
        settings = TrainingSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainingSettings)})
        model = self.build_model(train)
        rows = TrainingRows(data, ctx.device)
        self.model, self.losses = train_model(model, self.loss, rows, settings, ctx, self.name)

    def _ready(self, ctx: RunContext) -> nn.Module:
        if self.model is None:
            raise RuntimeError(f"{self.name} must be fitted (or loaded) before sampling")
        return self.model.to(ctx.device).eval()

    # --- inference ----------------------------------------------------------------------------
    def _chunks(self, n: int, per_row: int = 1) -> list[np.ndarray]:
        size = max(1, self.sample_batch_size // per_row)
        return [np.arange(start, min(start + size, n)) for start in range(0, n, size)]

    @torch.inference_mode()
    def sample(self, n: int, conditions: Mapping[str, np.ndarray] | None, ctx: RunContext) -> np.ndarray:
        model = self._ready(ctx)
        generator = ctx.torch_generator(STREAM_SAMPLING)
        codes = condition_codes(conditions, self.condition_keys, n)
        out = np.zeros((n, self.n_features), dtype=np.int64)
        for rows in ctx.progress(self._chunks(n), desc=f"sample {self.name}"):
            chunk_codes = None if codes is None else torch.as_tensor(codes[rows], device=ctx.device)
            out[rows] = self.reverse(model, Rows(len(rows), chunk_codes), generator, ctx).long().cpu().numpy()
        return out

    @torch.inference_mode()
    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        """RePaint imputation (SPEC section 5): (n, d), or (K, n, d) for K = ``n_samples`` > 1."""
        k = n_samples if n_samples > 1 else self.n_samples
        model = self._ready(ctx)
        data = self._conditioned(data)
        if data.condition_keys != self.condition_keys:
            raise ValueError(f"the model was trained with conditions {self.condition_keys}, got {data.condition_keys}")
        generator = ctx.torch_generator(STREAM_SAMPLING)
        all_codes = data.condition_matrix() if self.condition_keys else None
        n, d = data.counts.shape
        out = np.zeros((k, n, d), dtype=np.int64)
        for rows in ctx.progress(self._chunks(n, k), desc=f"impute {self.name}"):
            observed, target = data.dense(rows), np.asarray(target_mask[rows], dtype=bool)

            def tiled(array: np.ndarray, dtype: torch.dtype) -> Tensor:
                return torch.as_tensor(np.tile(array, (k, 1)), dtype=dtype, device=ctx.device)

            chunk = Rows(
                k * len(rows),
                None if all_codes is None else tiled(all_codes[rows], torch.long),
                observed=tiled(observed, torch.float32),
                target=tiled(target, torch.bool),
                keep=tiled(data.valid_mask(rows) | target, torch.bool),
            )
            imputed = self.reverse(model, chunk, generator, ctx).long().cpu().numpy().reshape(k, len(rows), d)
            out[:, rows] = np.where(target[None], imputed, observed[None])
        return out[0] if k == 1 else out

    # --- persistence --------------------------------------------------------------------------
    def n_parameters(self) -> int | None:
        return None if self.model is None else sum(p.numel() for p in self.model.parameters())

    def save(self, directory: Path) -> None:
        if self.model is not None:
            self.model.cpu()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "method.pkl", "wb") as handle:
            pickle.dump(self, handle)
