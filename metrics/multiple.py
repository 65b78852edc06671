"""Metrics of a multiple imputation (K samples per cell), beyond the paper.

RMSE rewards the conditional mean; these test the generative claim that the K samples are draws
from the right conditional distribution.

- ``crps``: the continuous ranked probability score of the K samples' empirical distribution at
  each target entry (the 1-D energy score, Gneiting & Raftery 2007, eq. 21):
  ``mean_k |x_k - y| - 1/(2 K^2) sum_kl |x_k - x_l|``, averaged over all target entries. A single
  imputation (K = 1) scores its absolute error, so the value is comparable across K, and is then
  no separate signal from ``mae`` (declared with ``same_signal_when="equal"``).
- ``coverage_90``: the share of target entries whose true value lies in the closed interval between
  the 5% and 95% quantiles of the K samples (numpy's linear interpolation). Undefined for K < 2.
  With few samples the interval is narrow (for K = 5 it spans 80% of the range of the samples), so a
  calibrated sampler scores below 0.9 for continuous values, while ties of small integer counts
  push it up: compare methods at equal K.
"""

from __future__ import annotations

import numpy as np

from countsbench.evaluation import Evaluation
from countsbench.registry import register_metric


def samples_of(ev: Evaluation) -> np.ndarray:
    """(K, cells, genes) imputations; a single imputation is K = 1."""
    return np.asarray(ev.prediction if ev.samples is None else ev.samples, dtype=np.float64).reshape(
        (-1,) + ev.truth.counts.shape
    )


def crps_ensemble(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """CRPS of the empirical distribution of ``samples`` (K, ...) at ``truth`` (...), element-wise."""
    k = samples.shape[0]
    spread_to_truth = np.abs(samples - truth[None]).mean(axis=0)
    ordered = np.sort(samples, axis=0)
    # sum_{k,l} |x_k - x_l| = 2 sum_i (2i - K + 1) x_(i) over the sorted samples (i from 0)
    ranks = (2 * np.arange(k) - k + 1).reshape((k,) + (1,) * truth.ndim)
    pair_sum = 2.0 * (ranks * ordered).sum(axis=0)
    return spread_to_truth - pair_sum / (2.0 * k * k)


def _crps_sums(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    mask = ev.require_targets()
    crps = np.where(mask, crps_ensemble(samples_of(ev), ev.true_dense()), 0.0)
    return mask.sum(axis=1), crps.sum(axis=1)


@register_metric(
    "crps",
    kinds=("imputation",),
    direction="minimize",
    summary="CRPS of the K imputations at each target entry, pooled (K = 1: absolute error).",
    same_signal_as="mae",
    same_signal_when="equal",  # a single imputation's CRPS is its MAE: not a separate signal there
)
def crps(ev: Evaluation) -> float:
    count, total = ev.per_cell("crps_sums", _crps_sums)
    return float(total.sum() / count.sum())


def _coverage_sums(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    mask = ev.require_targets()
    samples, truth = samples_of(ev), ev.true_dense()
    lower, upper = np.quantile(samples, [0.05, 0.95], axis=0)
    covered = mask & (lower <= truth) & (truth <= upper)
    return mask.sum(axis=1), covered.sum(axis=1)


@register_metric(
    "coverage_90",
    kinds=("imputation",),
    direction="target",
    target=0.9,
    summary="Share of targets inside the 5-95% quantile interval of the K imputations (K >= 2).",
)
def coverage_90(ev: Evaluation) -> float:
    if ev.samples is None or np.asarray(ev.samples).shape[0] < 2:
        return float("nan")
    count, covered = ev.per_cell("coverage_sums", _coverage_sums)
    return float(covered.sum() / count.sum())
