"""Scoring a method's output with registered metrics.

An `Evaluation` bundles what a metric may look at: the complete held-out truth, the method's
prediction (the imputed matrix, or generated samples), the target mask for imputation, the K
samples of a multiple imputation, and the training split. Metrics that share an expensive
intermediate (MMD's kernel sums) compute it once through `Evaluation.cached`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from countsbench.data import CountData
from countsbench.registry import REGISTRY, RegistryError


@dataclass
class Evaluation:
    kind: str
    truth: CountData
    prediction: np.ndarray
    train: CountData
    target_mask: np.ndarray | None = None
    samples: np.ndarray | None = None
    #: Seed of the metrics' own randomness (projections, subsamples). Fixed, not the method's seed,
    #: so that every method is scored with the same projections.
    metric_seed: int = 0
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def true_dense(self) -> np.ndarray:
        return self.cached("true_dense", lambda: self.truth.dense().astype(np.float64))

    def target_values(self) -> tuple[np.ndarray, np.ndarray]:
        """(true, predicted) values at the target entries, in row-major order."""
        if self.target_mask is None:
            raise RegistryError("this metric needs an imputation task's target mask")
        return self.true_dense()[self.target_mask], np.asarray(self.prediction, dtype=np.float64)[self.target_mask]


def check_metrics(names: Iterable[str], kind: str) -> list[str]:
    """The metric names, each registered and supporting the task kind (else a `RegistryError`)."""
    names = list(names)
    for name in names:
        spec = REGISTRY.metrics.get(name)
        if kind not in spec.kinds:
            raise RegistryError(f"metric {name!r} does not apply to {kind} tasks")
    return names


def score(evaluation: Evaluation, names: Iterable[str]) -> dict[str, float]:
    """Run each metric; a dict-valued metric ``m`` contributes ``m/key`` entries.

    A metric that raises is not caught here: a run whose evaluation fails is a failed run.
    """
    values: dict[str, float] = {}
    for name in check_metrics(names, evaluation.kind):
        result = REGISTRY.metrics.get(name).fn(evaluation)
        if isinstance(result, dict):
            values.update({f"{name}/{key}": float(v) for key, v in result.items()})
        else:
            values[name] = float(result)
    return values


def metric_spec_for(logged_name: str):
    """The registered spec behind a logged metric name (``m`` or ``m/key``), or None."""
    base = logged_name.split("/", 1)[0]
    return REGISTRY.metrics.entries.get(base)


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: undefined metric values are stored as null."""
    return value if math.isfinite(value) else None
