"""Precision, recall, density and coverage (PRDC; Naeem et al. 2020, "Reliable fidelity and diversity
metrics for generative models", ICML, eqs. 1-4), in the training PCA space (`countsbench.metrics.pca_space`).

With real rows ``x_1..x_N`` (the held-out cells), generated rows ``y_1..y_M``, ``B(c, r)`` the open
ball of radius r around c, ``r_i`` the distance from ``x_i`` to its k-th nearest other real row and
``s_j`` that of ``y_j`` among the generated rows (k = ``PRDC_K``, the reference code's default 5):

- precision ``= (1/M) sum_j 1[exists i: y_j in B(x_i, r_i)]`` (fidelity: generated cells lie on the real manifold);
- recall ``= (1/N) sum_i 1[exists j: x_i in B(y_j, s_j)]`` (diversity: real cells lie on the generated one);
- density ``= (1/(kM)) sum_j sum_i 1[y_j in B(x_i, r_i)]``;
- coverage ``= (1/N) sum_i 1[min_j |x_i - y_j| < r_i]``.

Strict inequalities, as in the authors' code (clovaai/generative-evaluation-prdc). Precision, recall
and coverage are in [0, 1], higher is better. Density is unbounded: its expectation is 1 when the two
sets come from one distribution (Naeem et al., section 3.2), above 1 when the generated cells crowd the
dense regions of the real ones, so it is ranked by its distance to 1.
"""

from __future__ import annotations

import numpy as np
import torch

from countsbench.evaluation import Evaluation
from countsbench.metrics.pca_space import BLOCK_ROWS, cdist, embedded_sets, kth_neighbour_radii
from countsbench.registry import register_metric

PRDC_K = 5
VECTOR_GENERATION = ("generation",)


def prdc(real: np.ndarray, generated: np.ndarray, k: int = PRDC_K) -> dict[str, float]:
    """The four PRDC values of two sets of rows (one pass over blocks of generated rows)."""
    real_radii = torch.as_tensor(kth_neighbour_radii(real, k))
    generated_radii = torch.as_tensor(kth_neighbour_radii(generated, k))
    x = torch.as_tensor(real, dtype=torch.float64)
    in_real_balls = torch.zeros(len(generated), dtype=torch.float64)  # sum_i 1[y_j in B(x_i, r_i)]
    real_recalled = torch.zeros(len(real), dtype=torch.bool)
    nearest_generated = torch.full((len(real),), float("inf"), dtype=torch.float64)
    for start in range(0, len(generated), BLOCK_ROWS):
        y = torch.as_tensor(generated[start : start + BLOCK_ROWS], dtype=torch.float64)
        d = cdist(y, x)  # (block, N)
        in_real_balls[start : start + len(y)] = (d < real_radii[None, :]).sum(dim=1).double()
        real_recalled |= (d < generated_radii[start : start + len(y), None]).any(dim=0)
        nearest_generated = torch.minimum(nearest_generated, d.min(dim=0).values)
    return {
        "precision": float((in_real_balls > 0).double().mean()),
        "recall": float(real_recalled.double().mean()),
        "density": float(in_real_balls.mean() / k),
        "coverage": float((nearest_generated < real_radii).double().mean()),
    }


def _prdc(ev: Evaluation) -> dict[str, float]:
    return ev.cached("prdc", lambda: prdc(*embedded_sets(ev)))


@register_metric(
    "prdc_precision",
    kinds=VECTOR_GENERATION,
    direction="maximize",
    summary="PRDC precision (k = 5, training PCA space): share of generated cells in a real cell's k-NN ball.",
    paper="Naeem et al. 2020",
)
def prdc_precision(ev: Evaluation) -> float:
    return _prdc(ev)["precision"]


@register_metric(
    "prdc_recall",
    kinds=VECTOR_GENERATION,
    direction="maximize",
    summary="PRDC recall (k = 5, training PCA space): share of real cells in a generated cell's k-NN ball.",
    paper="Naeem et al. 2020",
)
def prdc_recall(ev: Evaluation) -> float:
    return _prdc(ev)["recall"]


@register_metric(
    "prdc_density",
    kinds=VECTOR_GENERATION,
    direction="target",
    target=1.0,
    summary="PRDC density (k = 5): mean number of real k-NN balls holding a generated cell / k (1: same law).",
    paper="Naeem et al. 2020",
)
def prdc_density(ev: Evaluation) -> float:
    return _prdc(ev)["density"]


@register_metric(
    "prdc_coverage",
    kinds=VECTOR_GENERATION,
    direction="maximize",
    summary="PRDC coverage (k = 5): share of real cells whose k-NN ball holds a generated cell.",
    paper="Naeem et al. 2020",
)
def prdc_coverage(ev: Evaluation) -> float:
    return _prdc(ev)["coverage"]
