"""Distributional metrics (SPEC section 8).

- ``energy_distance``: scipy's 1-D energy distance between the flattened true and imputed target
  values (the paper's "ED" column).
- ``energy_distance_profiles``: the multivariate energy distance between true and predicted full
  profiles (rows), blocked in torch.
- ``mmd`` / ``log_mmd``: unbiased RBF MMD^2 between true and predicted full profiles (rows), and
  ``ln(max(mmd2, 1e-12))`` for the paper's "log(MMD)" column.
- ``sliced_wasserstein``: 1000 seeded random unit directions; sqrt of the mean squared difference of
  the sorted projections (the paper's "SWD", a sliced 2-Wasserstein distance).

The profile metrics answer for a bootstrap resample from its parent evaluation: all replicates
come from one weighted pass over the kernel blocks (`countsbench.metrics.kernels`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats

from countsbench.evaluation import Evaluation
from countsbench.metrics.kernels import energy_distance_replicates, mmd2_replicates, mmd2_unbiased, multiplicities
from countsbench.registry import register_metric

PROFILE_KINDS = ("imputation", "generation")


def device_of(ev: Evaluation) -> str:
    """Where blocked kernel sums run: ``ev.options["device"]`` (cpu by default)."""
    return str(ev.options.get("device", "cpu"))


def from_replicates(ev: Evaluation, key: str, weighted: Callable[[Evaluation, np.ndarray], np.ndarray]) -> float:
    """A weighted-sum metric: computed on the full set with unit weights, and for a bootstrap
    resample read from its parent's single weighted pass over all resamples."""
    root = ev.parent
    if root is not None and root.resamples is not None and ev.replicate is not None:
        weights = root.cached("multiplicities", lambda: multiplicities(root.resamples, root.n_cells))
        values = root.cached(f"{key}:replicates:{len(root.resamples)}", lambda: weighted(root, weights))
        return float(values[ev.replicate])
    return ev.cached(key, lambda: float(weighted(ev, np.ones((ev.n_cells, 1)))[0]))


@register_metric(
    "energy_distance",
    kinds=("imputation",),
    direction="minimize",
    summary="1-D energy distance between flattened true and imputed target values (scipy).",
    paper="ED",
    max_resamples=20,  # a sort of every target value per replicate: seconds each on an atlas
)
def energy_distance(ev: Evaluation) -> float:
    true, pred = ev.target_values()
    return float(stats.energy_distance(true, pred))


def _energy_profiles(ev: Evaluation, weights: np.ndarray) -> np.ndarray:
    return energy_distance_replicates(ev.true_dense(), ev.predicted(), weights, weights, device=device_of(ev))


@register_metric(
    "energy_distance_profiles",
    kinds=PROFILE_KINDS,
    direction="minimize",
    summary="Multivariate energy distance between true and predicted full profiles (V-statistics).",
)
def energy_distance_profiles(ev: Evaluation) -> float:
    return from_replicates(ev, "energy_profiles", _energy_profiles)


def _mmd2_paired(ev: Evaluation, weights: np.ndarray) -> np.ndarray:
    return mmd2_replicates(ev.true_dense(), ev.predicted(), weights, device=device_of(ev), seed=ev.metric_seed)


def _mmd2(ev: Evaluation) -> float:
    if ev.n_cells == np.asarray(ev.prediction).shape[0]:
        return from_replicates(ev, "mmd2", _mmd2_paired)
    return ev.cached(
        "mmd2", lambda: mmd2_unbiased(ev.true_dense(), ev.predicted(), device=device_of(ev), seed=ev.metric_seed)
    )


@register_metric(
    "mmd",
    kinds=PROFILE_KINDS,
    direction="minimize",
    summary="Unbiased MMD^2, RBF kernel averaged over 5 bandwidths around the median heuristic.",
    paper="MMD",
)
def mmd(ev: Evaluation) -> float:
    return _mmd2(ev)


@register_metric(
    "log_mmd",
    kinds=PROFILE_KINDS,
    direction="minimize",
    summary="ln(max(MMD^2, 1e-12)).",
    paper="log(MMD)",
    same_signal_as="mmd",
)
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
    paper="SWD",
    max_resamples=20,  # 1000 projections of every profile, sorted, per replicate
)
def sliced_wasserstein(ev: Evaluation) -> float:
    return sliced_wasserstein_distance(ev.true_dense(), ev.predicted(), seed=ev.metric_seed)
