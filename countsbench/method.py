"""The `Method` base class: the contract every registered method fulfils.

Contract:
- ``__init__`` takes the hyperparameters as keyword arguments with type hints and defaults; the
  runner builds the method from the resolved config (constructor defaults < profile < ``--set``) and
  records that config with the run. Methods keep each as an attribute of the same name (``config``
  reads them back; the runner resets inference-only ones on a cached model).
- ``defaults(profile, task)`` gives a profile's defaults, which may depend on the task (its kind,
  its data shape, whether it has conditions).
- ``fit(train, valid, ctx)`` learns from the training split (``valid`` is for early stopping or
  tuning only). It never sees test data.
- Imputation: ``impute(data, target_mask, ctx, n_samples)`` receives test data whose target entries
  were set to 0 by the runner, and returns integer counts of shape (n, d) with every non-target
  entry unchanged, or (n_samples, n, d) for multiple imputation.
- Generation: ``sample(n, conditions, ctx)`` returns (n, d) integer counts, conditioned on
  ``conditions`` (key -> (n,) codes) when the task has them.
- ``save(directory)`` / ``load(directory)`` persist a fitted method; the default pickles it.
- Randomness comes from ``ctx.rng(...)`` / ``ctx.torch_generator(...)``, so a seed fixes a run.
"""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from countsbench.context import RunContext
    from countsbench.data import CountData
    from countsbench.task import TaskInfo


class Method:
    """Base class of every method; subclass it and decorate with `register_method`."""

    name: ClassVar[str] = ""
    #: Per-profile hyperparameter defaults, e.g. ``{"paper": {"n_steps": 1000}}``.
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: Hyperparameters that only affect inference (imputation or sampling), not ``fit``. A fitted
    #: model is reused across runs whose configs differ only in these keys ("train once, impute many").
    inference_only: ClassVar[frozenset[str]] = frozenset()

    @property
    def config(self) -> dict[str, Any]:
        """The hyperparameters as the constructor takes them, read back from their same-name attributes."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    @classmethod
    def defaults(cls, profile: str, task: TaskInfo) -> dict[str, Any]:
        """The profile's hyperparameter defaults for this task (override for task-dependent ones)."""
        return dict(cls.profiles.get(profile, {}))

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        """Learn from the training split. Controls that need no training may keep the default."""

    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not impute")

    def sample(self, n: int, conditions: Mapping[str, np.ndarray] | None, ctx: RunContext) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not generate")

    def n_parameters(self) -> int | None:
        """Number of learned parameters (None when the notion does not apply)."""
        return None

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "method.pkl", "wb") as handle:
            pickle.dump(self, handle)

    @classmethod
    def load(cls, directory: Path) -> Method:
        with open(Path(directory) / "method.pkl", "rb") as handle:
            method = pickle.load(handle)
        if not isinstance(method, cls):
            raise TypeError(f"{directory} holds a {type(method).__name__}, not a {cls.__name__}")
        return method
