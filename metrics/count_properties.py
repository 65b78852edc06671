"""SimBench-style property checks of generated counts (Cao et al. 2021, "A benchmark study of
simulation methods for single-cell RNA sequencing data", Nat. Commun.): the generated cells' summary
statistics against the held-out cells', on the comparison rows (`countsbench.metrics.generation.comparison_sets`).

- ``ks_library_size``: the two-sample Kolmogorov-Smirnov statistic ``sup_t |F_gen(t) - F_real(t)|``
  of the per-cell total counts;
- ``ks_zeros_per_cell``: the same of the per-cell number of zero features;
- ``ks_zeros_per_gene``: the same of the per-feature share of zero entries (one value per feature);
- ``mean_variance_error``: each feature's place in the mean-variance plane, ``p_j = (log1p(mean_j),
  log1p(var_j))`` (variance with ddof 1) in the real and in the generated cells, and the mean over
  features of the Euclidean distance ``|p_j^gen - p_j^real|``: 0 when every feature has the right mean
  and variance, so the whole mean-variance relation is reproduced gene by gene.
All are 0 for identical sets and minimised.
"""

from __future__ import annotations

import numpy as np

from countsbench.evaluation import Evaluation
from countsbench.metrics.generation import comparison_sets
from countsbench.registry import register_metric

GENERATION = ("generation",)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """``sup_t |F_a(t) - F_b(t)|`` of the two empirical CDFs (the supremum is reached at a data point)."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    if a.size == 0 or b.size == 0:
        raise ValueError("a KS statistic needs values in both samples")
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / a.size
    cdf_b = np.searchsorted(b, points, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _ks_of(ev: Evaluation, statistic) -> float:
    real, generated = comparison_sets(ev)
    return ks_statistic(statistic(real), statistic(generated))


@register_metric(
    "ks_library_size",
    kinds=GENERATION,
    direction="minimize",
    summary="KS statistic of per-cell total counts, generated vs held-out.",
    paper="SimBench (Cao et al. 2021)",
)
def ks_library_size(ev: Evaluation) -> float:
    return _ks_of(ev, lambda x: x.sum(axis=1))


@register_metric(
    "ks_zeros_per_cell",
    kinds=GENERATION,
    direction="minimize",
    summary="KS statistic of the per-cell number of zeros, generated vs held-out.",
    paper="SimBench (Cao et al. 2021)",
)
def ks_zeros_per_cell(ev: Evaluation) -> float:
    return _ks_of(ev, lambda x: (x == 0).sum(axis=1))


@register_metric(
    "ks_zeros_per_gene",
    kinds=GENERATION,
    direction="minimize",
    summary="KS statistic of the per-gene share of zero entries, generated vs held-out.",
    paper="SimBench (Cao et al. 2021)",
)
def ks_zeros_per_gene(ev: Evaluation) -> float:
    return _ks_of(ev, lambda x: (x == 0).mean(axis=0))


def mean_variance_points(x: np.ndarray) -> np.ndarray:
    """(d, 2) ``(log1p(mean), log1p(variance))`` of each feature (column)."""
    x = np.asarray(x, dtype=np.float64)
    return np.stack([np.log1p(x.mean(axis=0)), np.log1p(x.var(axis=0, ddof=1))], axis=1)


@register_metric(
    "mean_variance_error",
    kinds=GENERATION,
    direction="minimize",
    summary="Mean over genes of the distance between generated and held-out (log1p mean, log1p variance).",
    paper="SimBench (Cao et al. 2021), mean-variance relation",
)
def mean_variance_error(ev: Evaluation) -> float:
    real, generated = comparison_sets(ev)
    return float(np.mean(np.linalg.norm(mean_variance_points(generated) - mean_variance_points(real), axis=1)))
