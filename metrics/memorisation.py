"""Memorisation: do generated cells sit closer to training cells than held-out cells do? (the distance
to the closest record of synthcity and SDMetrics, calibrated on held-out cells).

In the training PCA space (`countsbench.metrics.pca_space`), ``d(c)`` is the distance from a cell c to its nearest
TRAINING cell. The held-out (test) cells give the reference: ``tau`` is the ``q``-quantile
(q = ``MEMORISATION_QUANTILE``, the inverted empirical CDF: the smallest held-out d with at least a
share q of held-out cells at or below it). A generated cell counts as memorised when ``d < tau``, and
at ``d = tau`` with weight ``lambda = (q - P_ho(d < tau)) / P_ho(d = tau)``:

    memorisation_rate = P_gen(d < tau) + lambda P_gen(d = tau)

The weight breaks ties at tau so that the held-out cells' own rate, computed the same way, is exactly
q: a sampler of the data distribution that never saw the training cells draws cells exchangeable with
the held-out ones and scores q in expectation, which is the metric's target. A sampler that returns
training cells (``d = 0``) scores 1 wherever fewer than a share q of held-out cells duplicate a
training cell; where more do (tau = 0, e.g. the low-count toy task, on which most rows repeat), exact
copies are expected from any good sampler and count only at weight lambda. Ranked by the distance to q.
"""

from __future__ import annotations

import numpy as np

from countsbench.evaluation import Evaluation
from countsbench.metrics.pca_space import embedded_sets, embedded_train, nearest_distances
from countsbench.registry import register_metric

MEMORISATION_QUANTILE = 0.05


def calibrated_rate(generated: np.ndarray, heldout: np.ndarray, q: float = MEMORISATION_QUANTILE) -> float:
    """Share of ``generated`` distances below the held-out q-quantile, ties weighted so that the held-out
    distances themselves score exactly q."""
    heldout = np.asarray(heldout, dtype=np.float64)
    generated = np.asarray(generated, dtype=np.float64)
    tau = float(np.quantile(heldout, q, method="inverted_cdf"))
    below, at = np.mean(heldout < tau), np.mean(heldout == tau)
    weight = (q - below) / at  # at > 0: tau is one of the held-out values
    return float(np.mean(generated < tau) + weight * np.mean(generated == tau))


def nearest_training_distances(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """(held-out, generated) distances to the nearest training cell."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        train = embedded_train(ev)
        real, generated = embedded_sets(ev)
        return nearest_distances(real, train), nearest_distances(generated, train)

    return ev.cached("nearest_training_distances", compute)


@register_metric(
    "memorisation_rate",
    kinds=("generation",),
    direction="target",
    target=MEMORISATION_QUANTILE,
    summary="Share of generated cells nearer a training cell than the 5% quantile of held-out cells' distance "
    "(ties calibrated; held-out rate, the target, 0.05).",
    paper="distance to closest record (synthcity, SDMetrics)",
)
def memorisation_rate(ev: Evaluation) -> float:
    heldout, generated = nearest_training_distances(ev)
    return calibrated_rate(generated, heldout)
