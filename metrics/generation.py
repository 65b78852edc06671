"""Generation metrics (SPEC section 8; paper section 4.1): generated samples against held-out truth.

Distances compare a comparison set: the first ``comparison_rows`` rows of the truth and of the
generated samples (a task sets it through ``Evaluation.options``; the toy task uses the paper's
4,000 test rows), or all rows when the task sets none.
- ``joint_mmd``: RBF kernel with gamma 1, the biased V-statistic (as the paper), on whole vectors.
- ``joint_sliced_wasserstein``: `countsbench.metrics.distributional.sliced_wasserstein_distance`, 500 projections.
- ``marginal_mmd`` / ``marginal_wasserstein``: the same MMD, and scipy's Wasserstein-1, per
  dimension; reported per dimension and as their mean.
- ``variance_ratio``: ``Var(all generated rows) / Var(true)`` per dimension (target 1), with the true
  variance from ``options["true_variance"]`` (the toy task's population estimate) or, for tasks
  without a known generator, the sample variance of the whole scored split.
  ``variance_ratio_in_band`` counts the dimensions within [0.9, 1.1]; ``variance_log_error`` is
  the mean of ``|ln ratio|`` over dimensions.
- ``zero_share`` and ``max_count``: the share of zero entries and the largest count, next to the
  truth's value (direction "target" at the truth).

For the leaderboard's scaled score each signal counts once: the per-dimension values stand behind
their mean (``scored_keys``), and the variance ratios behind ``variance_log_error``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from countsbench.evaluation import Evaluation
from countsbench.metrics.distributional import sliced_wasserstein_distance
from countsbench.metrics.kernels import rbf_kernel, weighted_kernel_sum
from countsbench.registry import register_metric

GENERATION = ("generation",)
MMD_GAMMA = 1.0
SLICED_PROJECTIONS = 500
VARIANCE_BAND = (0.9, 1.1)


def comparison_sets(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """(truth, generated) float64 rows compared by the distance metrics."""
    rows = ev.options.get("comparison_rows")
    truth, generated = ev.true_dense(), ev.predicted()
    if rows is None:
        return truth, generated
    return truth[: int(rows)], generated[: int(rows)]


def _unique_rows(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows and their multiplicities as float64 tensors (counts repeat a lot)."""
    values, counts = np.unique(x, axis=0, return_counts=True)
    return torch.as_tensor(values, dtype=torch.float64), torch.as_tensor(counts, dtype=torch.float64)[:, None]


def mmd_v_statistic(x: np.ndarray, y: np.ndarray, gamma: float = MMD_GAMMA, block: int = 2048) -> float:
    """Biased MMD^2 ``mean k(x, x') + mean k(y, y') - 2 mean k(x, y)`` over ALL pairs, diagonals included,
    with ``k = exp(-gamma |u - v|^2)``; equal rows are merged and weighted by their multiplicity."""
    if len(x) == 0 or len(y) == 0:
        raise ValueError("MMD needs at least one row in each set")
    kernel = rbf_kernel(torch.tensor([gamma], dtype=torch.float64))
    (ux, wx), (uy, wy) = _unique_rows(np.asarray(x)), _unique_rows(np.asarray(y))
    n, m = float(len(x)), float(len(y))
    kxx = weighted_kernel_sum(ux, ux, wx, wx, kernel, block, symmetric=True) / n**2
    kyy = weighted_kernel_sum(uy, uy, wy, wy, kernel, block, symmetric=True) / m**2
    kxy = weighted_kernel_sum(ux, uy, wx, wy, kernel, block) / (n * m)
    return float((kxx + kyy - 2.0 * kxy)[0])


def _per_dimension(ev: Evaluation, distance) -> dict[str, float]:
    truth, generated = comparison_sets(ev)
    names = ev.truth.feature_names
    values = {names[j]: float(distance(truth[:, j : j + 1], generated[:, j : j + 1])) for j in range(truth.shape[1])}
    return {"mean": float(np.mean(list(values.values()))), **values}


@register_metric(
    "joint_mmd", kinds=GENERATION, direction="minimize", summary="Biased (V-statistic) RBF MMD^2, gamma 1, joint."
)
def joint_mmd(ev: Evaluation) -> float:
    return mmd_v_statistic(*comparison_sets(ev))


@register_metric(
    "joint_sliced_wasserstein",
    kinds=GENERATION,
    direction="minimize",
    summary="Sliced Wasserstein distance of whole vectors, 500 seeded projections.",
    paper="SWD",
)
def joint_sliced_wasserstein(ev: Evaluation) -> float:
    truth, generated = comparison_sets(ev)
    return sliced_wasserstein_distance(truth, generated, n_projections=SLICED_PROJECTIONS, seed=ev.metric_seed)


@register_metric(
    "marginal_mmd",
    kinds=GENERATION,
    direction="minimize",
    summary="Biased RBF MMD^2 (gamma 1) per dimension, and its mean.",
    scored_keys=("mean",),
)
def marginal_mmd(ev: Evaluation) -> dict[str, float]:
    return _per_dimension(ev, mmd_v_statistic)


@register_metric(
    "marginal_wasserstein",
    kinds=GENERATION,
    direction="minimize",
    summary="Wasserstein-1 distance per dimension (scipy), and its mean.",
    scored_keys=("mean",),
)
def marginal_wasserstein(ev: Evaluation) -> dict[str, float]:
    return _per_dimension(ev, lambda a, b: stats.wasserstein_distance(a[:, 0], b[:, 0]))


def variance_ratios(ev: Evaluation) -> np.ndarray:
    """Per-dimension ``Var(generated) / Var(true)`` over ALL generated rows (ddof 1)."""

    def compute() -> np.ndarray:
        true = ev.options.get("true_variance")
        true = ev.true_dense().var(axis=0, ddof=1) if true is None else np.asarray(true, dtype=np.float64)
        if true.shape != (ev.predicted().shape[1],):
            raise ValueError(f"true variances of shape {true.shape} for {ev.predicted().shape[1]} dimensions")
        return ev.predicted().var(axis=0, ddof=1) / true

    return ev.cached("variance_ratios", compute)


@register_metric(
    "variance_ratio",
    kinds=GENERATION,
    direction="target",
    target=1.0,
    summary="Var(generated) / Var(true) per dimension (true: the task's known generator when it has one).",
    paper="Table 4",
    scored_keys=(),  # summarised by variance_log_error
)
def variance_ratio(ev: Evaluation) -> dict[str, float]:
    return dict(zip(ev.truth.feature_names, map(float, variance_ratios(ev)), strict=True))


@register_metric(
    "variance_ratio_in_band",
    kinds=GENERATION,
    direction="maximize",
    summary="Number of dimensions whose variance ratio lies within [0.9, 1.1].",
    same_signal_as="variance_log_error",  # both summarise the per-dimension variance ratios
)
def variance_ratio_in_band(ev: Evaluation) -> float:
    ratios = variance_ratios(ev)
    return float(np.sum((ratios >= VARIANCE_BAND[0]) & (ratios <= VARIANCE_BAND[1])))


@register_metric(
    "variance_log_error",
    kinds=GENERATION,
    direction="minimize",
    summary="Mean over dimensions of |ln(variance ratio)| (0 = every variance right).",
)
def variance_log_error(ev: Evaluation) -> float:
    ratios = variance_ratios(ev)
    return float(np.mean(np.abs(np.log(np.maximum(ratios, 1e-12))))) if np.all(np.isfinite(ratios)) else math.nan


@register_metric(
    "zero_share",
    kinds=GENERATION,
    direction="target",
    target="truth",
    summary="Share of zero entries in the generated comparison rows, beside the truth's.",
)
def zero_share(ev: Evaluation) -> dict[str, float]:
    truth, generated = comparison_sets(ev)
    return {"generated": float(np.mean(generated == 0)), "truth": float(np.mean(truth == 0))}


@register_metric(
    "max_count",
    kinds=GENERATION,
    direction="target",
    target="truth",
    summary="Largest generated count in the comparison rows, beside the truth's.",
)
def max_count(ev: Evaluation) -> dict[str, float]:
    truth, generated = comparison_sets(ev)
    return {"generated": float(generated.max()), "truth": float(truth.max())}
