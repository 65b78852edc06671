"""Distributional metrics (SPEC section 8).

- ``energy_distance``: scipy's 1-D energy distance between the flattened true and imputed target
  values (the paper's column).
- ``mmd`` / ``log_mmd``: unbiased RBF MMD^2 between true and predicted full profiles (rows), and
  ``ln(max(mmd2, 1e-12))`` for the paper's column.
- ``sliced_wasserstein``: 1000 seeded random unit directions; sqrt of the mean squared difference of
  the sorted projections (the sliced 2-Wasserstein distance).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from countsbench.evaluation import Evaluation
from countsbench.registry import register_metric
from metrics.kernels import mmd2_unbiased

PROFILE_KINDS = ("imputation", "generation")


@register_metric(
    "energy_distance",
    kinds=("imputation",),
    direction="minimize",
    summary="1-D energy distance between flattened true and imputed target values.",
)
def energy_distance(ev: Evaluation) -> float:
    true, pred = ev.target_values()
    return float(stats.energy_distance(true, pred))


def _mmd2(ev: Evaluation) -> float:
    return ev.cached("mmd2", lambda: mmd2_unbiased(ev.true_dense(), np.asarray(ev.prediction), seed=ev.metric_seed))


@register_metric(
    "mmd",
    kinds=PROFILE_KINDS,
    direction="minimize",
    summary="Unbiased MMD^2, RBF kernel averaged over 5 bandwidths around the median heuristic.",
)
def mmd(ev: Evaluation) -> float:
    return _mmd2(ev)


@register_metric("log_mmd", kinds=PROFILE_KINDS, direction="minimize", summary="ln(max(MMD^2, 1e-12)).")
def log_mmd(ev: Evaluation) -> float:
    return math.log(max(_mmd2(ev), 1e-12))


def random_directions(n_features: int, n_projections: int, seed: int) -> np.ndarray:
    """(n_features, n_projections) seeded unit vectors, uniform on the sphere."""
    directions = np.random.default_rng(seed).standard_normal((n_features, n_projections))
    return directions / np.linalg.norm(directions, axis=0, keepdims=True)


def sliced_wasserstein_distance(
    x: np.ndarray, y: np.ndarray, n_projections: int = 1000, seed: int = 0, block: int = 100
) -> float:
    """Sliced 2-Wasserstein distance between the rows of x and y (uniform weights).

    Sets of different sizes are compared through their quantile functions at the midpoints of
    ``max(n, m)`` equal steps. Projections are processed ``block`` at a time to bound memory.
    """
    directions = random_directions(x.shape[1], n_projections, seed)
    levels = (np.arange(max(len(x), len(y))) + 0.5) / max(len(x), len(y))
    total = 0.0
    for start in range(0, n_projections, block):
        d = directions[:, start : start + block]
        px, py = np.sort(x @ d, axis=0), np.sort(y @ d, axis=0)
        if len(px) != len(py):
            px, py = (np.quantile(p, levels, axis=0, method="inverted_cdf") for p in (px, py))
        total += float(np.sum((px - py) ** 2))
    return math.sqrt(total / (n_projections * len(levels)))


@register_metric(
    "sliced_wasserstein",
    kinds=PROFILE_KINDS,
    direction="minimize",
    summary="Sliced 2-Wasserstein distance between true and predicted profiles, 1000 projections.",
)
def sliced_wasserstein(ev: Evaluation) -> float:
    return sliced_wasserstein_distance(
        ev.true_dense(), np.asarray(ev.prediction, dtype=np.float64), seed=ev.metric_seed
    )
