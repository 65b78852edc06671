"""Scoring a method's output with registered metrics, with bootstrap standard errors.

An `Evaluation` bundles what a metric may look at: the complete held-out truth, the method's
prediction (the imputed matrix, or generated samples), the target mask for imputation, the K
samples of a multiple imputation, and the training split. Metrics that share an expensive
intermediate (MMD's kernel sums) compute it once through `Evaluation.cached`.

Bootstrap (SPEC section 8): the evaluated cells are resampled with replacement ``n_bootstrap``
times, each resample as large as the evaluated set, and every metric is recomputed on each; its
standard error is the standard deviation (ddof=1) of the replicate values, reported as
``<metric>/bootstrap_se`` (``<metric>/<key>/bootstrap_se`` for a dict-valued metric). A resample is
an `Evaluation` too (`Evaluation.resample`), so every metric works on it unchanged; per-cell
intermediates (`Evaluation.per_cell`) are computed once on the full set and indexed, and a metric
may answer for a resample from its parent (MMD weights each cell by its multiplicity).

SPEC asks for 10 resamples; we draw 200 by default, because the leaderboard also tests the
difference between two methods on the per-replicate values (a paired bootstrap,
`countsbench.leaderboards.significance`), and a critical value from 10 replicates (t_9 = 2.26) costs power. A
metric that is expensive per replicate declares ``max_resamples`` and gets the first that many.
The resamples come from the fixed metric seed (never the method's), so every method of a task is
resampled on the SAME cells: replicate b of one method pairs with replicate b of another. The
replicate values are kept (`BootstrapReplicates`, stored in the run's result and logged to MLflow
as the artifact ``bootstrap_replicates.json``) with what identifies the resamples: the metric seed,
the number of cells and a digest of the first resample's rows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from countsbench.data import CountData
from countsbench.registry import REGISTRY, RegistryError

DEFAULT_BOOTSTRAP = 200
#: Task kinds whose metrics are per evaluated cell, so resampling cells gives their standard errors.
BOOTSTRAPPED_KINDS = ("imputation", "denoising")
BOOTSTRAP_SUFFIX = "/bootstrap_se"
#: The MLflow artifact holding a run's `BootstrapReplicates`.
REPLICATES_ARTIFACT = "bootstrap_replicates.json"


@dataclass
class Evaluation:
    kind: str
    truth: CountData
    prediction: np.ndarray
    train: CountData
    target_mask: np.ndarray | None = None
    samples: np.ndarray | None = None
    #: Seed of the metrics' own randomness (projections, subsamples, bootstrap). Fixed, not the
    #: method's seed, so that every method is scored with the same projections and resamples.
    metric_seed: int = 0
    #: The condition key holding the cell type (downstream classifier); None = the first key.
    label_key: str | None = None
    #: Where metrics cache models trained once per task (scVI, XGBoost); None = no disk cache.
    cache_dir: Path | None = None
    #: Metric options, e.g. ``{"scvi_model": "/path/to/pretrained"}`` for scFID.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: For a bootstrap resample: the evaluation it was drawn from, its rows there, and its index.
    parent: Evaluation | None = field(default=None, repr=False)
    rows: np.ndarray | None = field(default=None, repr=False)
    replicate: int | None = None
    #: The bootstrap resamples drawn from this evaluation (rows of each), set by the bootstrap.
    resamples: list[np.ndarray] | None = field(default=None, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def per_cell(self, key: str, compute: Callable[[Evaluation], Any]) -> Any:
        """A per-cell array (or tuple of arrays) computed once on the full evaluation, indexed by
        a resample's rows; ``compute`` receives the full evaluation."""
        if self.parent is not None:
            full = self.parent.per_cell(key, compute)
            return tuple(a[self.rows] for a in full) if isinstance(full, tuple) else full[self.rows]
        return self.cached("per_cell:" + key, lambda: compute(self))

    def root(self) -> Evaluation:
        return self if self.parent is None else self.parent

    @property
    def n_cells(self) -> int:
        return self.truth.n_samples

    def true_dense(self) -> np.ndarray:
        return self.cached("true_dense", lambda: self.truth.dense().astype(np.float64))

    def predicted(self) -> np.ndarray:
        return self.cached("predicted", lambda: np.asarray(self.prediction, dtype=np.float64))

    def require_targets(self) -> np.ndarray:
        if self.target_mask is None:
            raise RegistryError("this metric needs an imputation task's target mask")
        return self.target_mask

    def target_values(self) -> tuple[np.ndarray, np.ndarray]:
        """(true, predicted) values at the target entries, in row-major order."""
        mask = self.require_targets()
        return self.true_dense()[mask], self.predicted()[mask]

    def labels(self, data: CountData | None = None) -> tuple[str, np.ndarray]:
        """(key, integer codes) of the cell-type condition of ``data`` (the truth by default)."""
        data = self.truth if data is None else data
        key = self.label_key or next(iter(data.condition_keys), None)
        if key is None or key not in data.conditions:
            raise RegistryError(f"this metric needs a cell-type condition; the data has {list(data.condition_keys)}")
        return key, data.conditions[key]

    def resample(self, rows: np.ndarray, replicate: int | None = None) -> Evaluation:
        """The evaluation restricted to ``rows`` of the evaluated cells (repeats allowed)."""
        return replace(
            self,
            truth=self.truth.subset(rows),
            prediction=np.asarray(self.prediction)[rows],
            target_mask=None if self.target_mask is None else self.target_mask[rows],
            samples=None if self.samples is None else np.asarray(self.samples)[:, rows],
            parent=self,
            rows=np.asarray(rows),
            replicate=replicate,
            resamples=None,
            _cache={},
        )


def bootstrap_rows(n_cells: int, n_resamples: int, seed: int) -> list[np.ndarray]:
    """``n_resamples`` seeded resamples of ``n_cells`` row indices, with replacement."""
    rng = np.random.default_rng([seed, 0xB007])
    return [rng.integers(0, n_cells, size=n_cells) for _ in range(n_resamples)]


def check_metrics(names: Iterable[str], kind: str) -> list[str]:
    """The metric names, each registered and supporting the task kind (else a `RegistryError`)."""
    names = list(names)
    for name in names:
        spec = REGISTRY.metrics.get(name)
        if kind not in spec.kinds:
            raise RegistryError(f"metric {name!r} does not apply to {kind} tasks")
    return names


def _values(evaluation: Evaluation, name: str) -> dict[str, float]:
    result = REGISTRY.metrics.get(name).fn(evaluation)
    if isinstance(result, Mapping):
        return {f"{name}/{key}": float(v) for key, v in result.items()}
    return {name: float(result)}


@dataclass(frozen=True)
class BootstrapReplicates:
    """Per-replicate values of every logged metric, with what identifies the resamples.

    ``values[name][b]`` is the metric on resample b (None where undefined there); a list shorter than
    ``n_resamples`` belongs to a metric with ``max_resamples``. Two results' replicates pair up
    (`pairs_with`) when they were drawn with the same metric seed from the same number of cells.
    """

    metric_seed: int
    n_cells: int
    n_resamples: int
    resample_digest: str
    values: dict[str, list[float | None]]

    def pairs_with(self, other: BootstrapReplicates) -> bool:
        return (self.metric_seed, self.n_cells, self.resample_digest) == (
            other.metric_seed,
            other.n_cells,
            other.resample_digest,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "metric_seed": self.metric_seed,
            "n_cells": self.n_cells,
            "n_resamples": self.n_resamples,
            "resample_digest": self.resample_digest,
            "values": self.values,
        }

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> BootstrapReplicates:
        return cls(
            int(payload["metric_seed"]),
            int(payload["n_cells"]),
            int(payload["n_resamples"]),
            str(payload["resample_digest"]),
            {k: list(v) for k, v in payload["values"].items()},
        )

    def merged(self, newer: BootstrapReplicates) -> BootstrapReplicates:
        """These values updated by ``newer``'s (a re-score of some metrics), when the resamples pair up."""
        if not self.pairs_with(newer):
            return newer
        return replace(newer, values={**self.values, **newer.values})

    def standard_errors(self) -> dict[str, float]:
        return {key + BOOTSTRAP_SUFFIX: _std(values) for key, values in self.values.items()}


def score(
    evaluation: Evaluation, names: Iterable[str], n_bootstrap: int | None = DEFAULT_BOOTSTRAP
) -> dict[str, float]:
    """Run each metric; a dict-valued metric ``m`` contributes ``m/key`` entries.

    For imputation and denoising tasks each value ``v`` also gets ``v/bootstrap_se`` over ``n_bootstrap``
    resamples of the evaluated cells (0 or None: no bootstrap). A metric that raises is not caught
    here: a run whose evaluation fails is a failed run.
    """
    return score_with_replicates(evaluation, names, n_bootstrap)[0]


def score_with_replicates(
    evaluation: Evaluation, names: Iterable[str], n_bootstrap: int | None = DEFAULT_BOOTSTRAP
) -> tuple[dict[str, float], BootstrapReplicates | None]:
    """`score`, and the bootstrap replicates behind its standard errors (None without a bootstrap)."""
    names = check_metrics(names, evaluation.kind)
    values: dict[str, float] = {}
    for name in names:
        values.update(_values(evaluation, name))
    replicates = None
    if n_bootstrap and evaluation.kind in BOOTSTRAPPED_KINDS:
        replicates = bootstrap_replicates(evaluation, names, n_bootstrap)
        values.update(replicates.standard_errors())
    return values, replicates


def bootstrap_replicates(evaluation: Evaluation, names: list[str], n_resamples: int) -> BootstrapReplicates:
    """Each metric on ``n_resamples`` seeded resamples (fewer for a metric with ``max_resamples``)."""
    if n_resamples < 2:
        raise RegistryError(f"a bootstrap needs at least 2 resamples, got {n_resamples}")
    evaluation.resamples = bootstrap_rows(evaluation.n_cells, n_resamples, evaluation.metric_seed)
    counts = {name: min(n_resamples, REGISTRY.metrics.get(name).max_resamples or n_resamples) for name in names}
    replicates: dict[str, list[float | None]] = {}
    for r, rows in enumerate(evaluation.resamples):
        resample = evaluation.resample(rows, replicate=r)
        for name in names:
            if r < counts[name]:
                for key, value in _values(resample, name).items():
                    replicates.setdefault(key, []).append(finite_or_none(value))
    digest = hashlib.sha256(np.ascontiguousarray(evaluation.resamples[0], dtype=np.int64).tobytes()).hexdigest()
    return BootstrapReplicates(evaluation.metric_seed, evaluation.n_cells, n_resamples, digest[:16], replicates)


def bootstrap_standard_errors(evaluation: Evaluation, names: list[str], n_resamples: int) -> dict[str, float]:
    """``<value>/bootstrap_se``: the standard deviation (ddof=1) of each value over resamples."""
    return bootstrap_replicates(evaluation, names, n_resamples).standard_errors()


def _std(values: list[float | None]) -> float:
    finite = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.std(finite, ddof=1)) if finite.size >= 2 else float("nan")


def is_bootstrap_se(logged_name: str) -> bool:
    return logged_name.endswith(BOOTSTRAP_SUFFIX)


def metric_spec_for(logged_name: str):
    """The registered spec behind a logged metric name (``m``, ``m/key``, ``m/bootstrap_se``), or None."""
    base = logged_name.split("/", 1)[0]
    return REGISTRY.metrics.entries.get(base)


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: undefined metric values are stored as null."""
    return value if math.isfinite(value) else None
