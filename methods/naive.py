"""The naive controls (SPEC section 7): zero, gene mean and conditional mean imputation.

Means use only the valid training entries, never held-out values (SPEC section 9, bug 9), and are
rounded to the nearest integer so that every method returns counts. On a denoising task the two mean
controls denoise every cell to its (conditional) gene means, unrounded (expected counts).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.registry import register_method


def fill_targets(data: CountData, target_mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Observed entries unchanged, targets set to ``values`` rounded half-up to integers."""
    rounded = np.floor(np.asarray(values, dtype=np.float64) + 0.5).astype(np.int64)
    return np.where(target_mask, np.broadcast_to(rounded, target_mask.shape), data.dense())


def valid_group_means(data: CountData, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_groups, d) means over the valid entries of each group's rows, and the valid counts behind
    them (a mean is 0 where its count is 0). One streamed pass in row blocks."""
    totals = np.zeros((n_groups, data.n_features))
    counts = np.zeros((n_groups, data.n_features))
    for rows, block, valid in data.blocks():
        n = block.shape[0]
        indicator = sp.csr_matrix((np.ones(n), (groups[rows], np.arange(n))), shape=(n_groups, n))
        totals += indicator @ np.where(valid, block, 0)
        counts += indicator @ valid.astype(np.float64)
    return totals / np.maximum(counts, 1), counts


def valid_gene_means(data: CountData) -> np.ndarray:
    """Per-gene mean over valid entries (0 for a gene with no valid entry)."""
    return valid_group_means(data, np.zeros(data.n_samples, dtype=np.int64), 1)[0][0]


@register_method("zero", kinds=("imputation",), role="control", summary="Impute every target with 0.")
class ZeroImputation(Method):
    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        return fill_targets(data, target_mask, np.zeros(data.n_features))


@register_method(
    "mean",
    kinds=("imputation", "denoising"),
    role="control",
    summary="Impute (or denoise) with the gene's mean over valid training entries.",
)
class MeanImputation(Method):
    def __init__(self) -> None:
        self.gene_means: np.ndarray | None = None

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        self.gene_means = valid_gene_means(train)

    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        return fill_targets(data, target_mask, self.gene_means)

    def denoise(self, data: CountData, ctx: RunContext) -> np.ndarray:
        return np.broadcast_to(self.gene_means, data.counts.shape).copy()


@register_method(
    "conditional_mean",
    kinds=("imputation", "denoising"),
    role="control",
    summary="Impute (or denoise) with the gene's mean over valid training cells of the same conditions "
    "(else the gene mean).",
)
class ConditionalMeanImputation(Method):
    """Mean per (combination of condition codes, gene); falls back to the gene mean when the
    combination has no valid training entry for that gene (or never occurs in training)."""

    def __init__(self, condition_keys: str = "all") -> None:
        self.condition_keys = condition_keys
        self.gene_means: np.ndarray | None = None
        self.group_means: Mapping[tuple[int, ...], np.ndarray] = {}
        self.keys: tuple[str, ...] = ()

    def _keys(self, data: CountData) -> tuple[str, ...]:
        if self.condition_keys == "all":
            return data.condition_keys
        keys = tuple(k.strip() for k in self.condition_keys.split(",") if k.strip())
        missing = [k for k in keys if k not in data.conditions]
        if missing:
            raise ValueError(f"condition_keys {missing} not in the task's conditions {list(data.condition_keys)}")
        return keys

    def _group_keys(self, data: CountData) -> np.ndarray:
        """(n, n_keys) condition codes of the chosen keys."""
        return np.stack([data.conditions[k] for k in self.keys], axis=1)

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        self.keys = self._keys(train)
        self.gene_means = valid_gene_means(train)
        if not self.keys:
            return
        combos, groups = np.unique(self._group_keys(train), axis=0, return_inverse=True)
        means, n_valid = valid_group_means(train, groups.ravel(), len(combos))
        fallback = np.where(n_valid > 0, means, self.gene_means)
        self.group_means = {tuple(combo): row for combo, row in zip(combos.tolist(), fallback, strict=True)}

    def means(self, data: CountData) -> np.ndarray:
        """(n, d) the mean of each row's combination of conditions (the gene means without keys)."""
        if not self.keys:
            return np.broadcast_to(self.gene_means, data.counts.shape)
        return np.stack([self.group_means.get(tuple(g), self.gene_means) for g in self._group_keys(data).tolist()])

    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        return fill_targets(data, target_mask, self.means(data))

    def denoise(self, data: CountData, ctx: RunContext) -> np.ndarray:
        return np.array(self.means(data), dtype=np.float64)
