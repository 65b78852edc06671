"""The `Method` base class: the contract every registered method fulfils.

Contract:
- ``__init__`` takes the hyperparameters as keyword arguments with type hints and defaults; the
  runner builds the method from the resolved config (constructor defaults < profile < ``--set``) and
  records that config with the run. The constructor hook records every hyperparameter as an attribute
  of the same name BEFORE ``__init__`` runs (in the spirit of diffusers' ``register_to_config``), so a
  method writes no bookkeeping; ``config`` reads them back, and the runner resets inference-only ones on
  a cached model. ``hyperparameter_defaults`` changes defaults declaratively (see `config.hyperparameters`).
- ``defaults(profile, task)`` gives a profile's defaults, which may depend on the task (its kind,
  its data shape, whether it has conditions).
- ``fit(train, valid, ctx)`` learns from the training split (``valid`` is for early stopping or
  tuning only). It never sees test data.
- Imputation: ``impute(data, target_mask, ctx, n_samples)`` receives test data whose target entries
  were set to 0 by the runner, and returns integer counts of shape (n, d) with every non-target
  entry unchanged, or (n_samples, n, d) for multiple imputation.
- Generation: ``sample(n, conditions, ctx)`` returns (n, d) integer counts, conditioned on
  ``conditions`` (key -> (n,) codes) when the task has them.
- Denoising: ``denoise(data, ctx)`` receives the training counts of a molecular cross-validation
  split (the very counts ``fit`` saw) and returns (n, d) non-negative finite expected counts on the
  scale of its input (tasks/denoising.py). A control that must see the held-out counts (openproblems'
  ``perfect_denoising``) sets ``reads_held_out`` and receives them through ``see_held_out`` first.
- ``save(directory)`` / ``load(directory)`` persist a fitted method WITHOUT pickle (`countsbench.method_state`):
  the hyperparameters and the structure of ``state()`` as JSON, its arrays in an ``.npz`` read with
  ``allow_pickle=False``, so loading a received model runs no code. The default ``state()`` is every
  attribute that is not a hyperparameter and must be arrays or JSON values; a method holding other
  objects (a network) overrides ``state``/``restore``, or declares ``persistable = False`` (it is then
  refitted for every run and cannot be saved by ``countsbench fit``).
- Randomness comes from ``ctx.rng(...)`` / ``ctx.torch_generator(...)``, so a seed fixes a run.
"""

from __future__ import annotations

import functools
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
    #: A denoising control that is handed the held-out counts (`see_held_out`) before `denoise`; only
    #: methods of role "control" may set it (the runner refuses any other).
    reads_held_out: ClassVar[bool] = False
    #: Constructor defaults this class replaces (a subclass that differs only in defaults declares these).
    hyperparameter_defaults: ClassVar[Mapping[str, Any]] = {}
    #: Accepted values of hyperparameters (`config.Range`), checked with their types before any work.
    hyperparameter_ranges: ClassVar[Mapping[str, Any]] = {}
    #: False: the fitted state is not arrays (e.g. XGBoost models); never cached, always refitted.
    persistable: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not hasattr(init, "__wrapped__"):
            cls.__init__ = _recording_hyperparameters(init)  # type: ignore[method-assign]

    @property
    def config(self) -> dict[str, Any]:
        """The hyperparameters as the constructor takes them, read back from their same-name attributes."""
        from countsbench.config import hyperparameters

        return {name: getattr(self, name) for name in hyperparameters(type(self))}

    @classmethod
    def defaults(cls, profile: str, task: TaskInfo) -> dict[str, Any]:
        """The profile's hyperparameter defaults for this task (override for task-dependent ones)."""
        return dict(cls.profiles.get(profile, {}))

    @classmethod
    def defaults_for(cls, profile: str, task: TaskInfo, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """`defaults` given the user's ``--set`` values: a method whose presets depend on one of its
        hyperparameters (CountsDiff's ``network``) picks them by the user's value. The overrides
        themselves are applied after, by `resolve_config`."""
        return cls.defaults(profile, task)

    def needs_validation(self) -> bool:
        """Whether `fit` uses its ``valid`` split (tuning, early stopping). `countsbench fit` on a user's
        own data holds cells out for it only then; a method that never reads it trains on every cell."""
        return False

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        """Learn from the training split. Controls that need no training may keep the default."""

    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not impute")

    def sample(self, n: int, conditions: Mapping[str, np.ndarray] | None, ctx: RunContext) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not generate")

    def denoise(self, data: CountData, ctx: RunContext) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not denoise")

    def see_held_out(self, held_out: CountData) -> None:
        """The held-out counts of a denoising task, for a control with ``reads_held_out`` only."""
        raise NotImplementedError(f"{type(self).__name__} does not read held-out counts")

    def n_parameters(self) -> int | None:
        """Number of learned parameters (None when the notion does not apply)."""
        return None

    def state(self) -> dict[str, Any]:
        """What ``fit`` learned, as arrays and JSON values: by default every attribute that is not a
        hyperparameter. Override (with `restore`) when it holds other objects, e.g. a network's weights."""
        from countsbench.config import hyperparameters

        known = hyperparameters(type(self))
        return {k: v for k, v in vars(self).items() if k not in known and k != "_hyperparameters_recorded"}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Put back what `state` returned (on a method built from the saved hyperparameters)."""
        vars(self).update(state)

    def save(self, directory: Path) -> None:
        from countsbench.method_state import ModelStateError, save_state

        if not self.persistable:
            raise ModelStateError(f"{self.name or type(self).__name__}: its fitted state cannot be saved")
        save_state(Path(directory), self.name, self.config, self.state())

    @classmethod
    def load(cls, directory: Path) -> Method:
        """A method saved by `save`; its hyperparameters are type- and range-checked like ``--set``."""
        from countsbench.config import ConfigError, hyperparameters, resolve_values
        from countsbench.method_state import load_state
        from countsbench.safe_io import UnsafeFileError

        config, state = load_state(Path(directory), cls.name)
        try:
            method = cls(**resolve_values(cls, config, hyperparameters(cls)))
        except ConfigError as error:
            raise UnsafeFileError(f"{directory}: saved hyperparameters refused ({error})") from None
        method.restore(state)
        return method


def _recording_hyperparameters(init: Any) -> Any:
    """Wraps a method's ``__init__``: the outermost call resolves every hyperparameter (keywords over the
    declared defaults), stores each as an attribute of the same name, and passes them all to ``init``."""

    @functools.wraps(init)
    def recording(self: Method, *args: Any, **kwargs: Any) -> None:
        if args:
            raise TypeError(f"{type(self).__name__} takes its hyperparameters as keyword arguments")
        if "_hyperparameters_recorded" not in vars(self):
            from countsbench.config import hyperparameters

            known = hyperparameters(type(self))
            unknown = sorted(set(kwargs) - set(known))
            if unknown:
                raise TypeError(f"{type(self).__name__}: unknown hyperparameter(s) {', '.join(unknown)}")
            kwargs = {name: kwargs.get(name, hp.default) for name, hp in known.items()}
            vars(self).update(kwargs, _hyperparameters_recorded=True)
        init(self, **kwargs)

    return recording
