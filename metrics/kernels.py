"""Blocked, float64 kernel sums for MMD and the multivariate energy distance (SPEC section 8), in
torch so they run on CPU or GPU.

A kernel is a function of the squared distances of a block. Every sum is weighted,
``sum_ij a_i k(x_i, y_j) b_j``, for R weight vectors at once. Unit weights give the plain
estimator; the multiplicities of bootstrap resamples give all R replicates in the same single pass
over the kernel blocks, so a bootstrap of MMD costs about one MMD.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

BANDWIDTH_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def _tensor(x: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)


def median_squared_distance(x: np.ndarray, max_rows: int = 2000, seed: int = 0) -> float:
    """Median squared Euclidean distance between distinct rows (a seeded subsample of at most
    ``max_rows`` rows for large sets)."""
    if x.shape[0] > max_rows:
        x = x[np.random.default_rng(seed).choice(x.shape[0], max_rows, replace=False)]
    xt = _tensor(x, "cpu")
    d2 = torch.cdist(xt, xt).pow(2)
    upper = torch.triu_indices(xt.shape[0], xt.shape[0], offset=1)
    return float(d2[upper[0], upper[1]].median())


def rbf_gammas(median: float, scales: tuple[float, ...] = BANDWIDTH_SCALES) -> list[float]:
    """``gamma_k = 1 / (2 c_k m)`` for the bandwidth scales ``c_k`` (SPEC section 8)."""
    return [1.0 / (2.0 * c * median) for c in scales]


Kernel = Callable[[torch.Tensor], torch.Tensor]


def rbf_kernel(gammas: torch.Tensor) -> Kernel:
    """The RBF kernel averaged over bandwidths, as a function of squared distances (any shape).

    When the gammas are the smallest one times powers of two (the default scales 0.25..4 are), one
    exp and repeated squaring give every bandwidth: exp(-2g d) = exp(-g d)^2.
    """
    ordered = torch.sort(gammas).values
    powers = torch.log2(ordered / ordered[0])
    if torch.allclose(powers, torch.arange(len(ordered), dtype=powers.dtype, device=powers.device)):

        def squared(d2: torch.Tensor) -> torch.Tensor:
            term = torch.exp(-ordered[0] * d2)
            total = term.clone()
            for _ in range(len(ordered) - 1):
                term = term * term
                total += term
            return total / len(ordered)

        return squared
    return lambda d2: torch.exp(-gammas.reshape((-1,) + (1,) * d2.dim()) * d2[None]).mean(dim=0)


def distance_kernel(d2: torch.Tensor) -> torch.Tensor:
    """The Euclidean distance (the energy distance's "kernel")."""
    return d2.sqrt()


def weighted_kernel_sum(
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    kernel: Kernel,
    block: int,
    symmetric: bool = False,
) -> torch.Tensor:
    """``sum_ij a[i, r] k(x_i, y_j) b[j, r]`` for each column r of the (n, R) / (m, R) weights.

    ``symmetric`` (x is y and a is b): only blocks on or above the diagonal are computed.
    """
    total = torch.zeros(a.shape[1], dtype=torch.float64, device=x.device)
    for i in range(0, x.shape[0], block):
        xb, ab = x[i : i + block], a[i : i + block]
        for j in range(i if symmetric else 0, y.shape[0], block):
            d2 = torch.cdist(xb, y[j : j + block]).pow(2).clamp_min(0)
            part = ((kernel(d2) @ b[j : j + block]) * ab).sum(dim=0)
            total += 2.0 * part if symmetric and j != i else part
    return total


def paired_kernel(x: torch.Tensor, y: torch.Tensor, kernel: Kernel) -> torch.Tensor:
    """k(x_i, y_i) for row-aligned sets, shape (n,)."""
    return kernel((x - y).pow(2).sum(dim=1))


def multiplicities(resamples: list[np.ndarray], n: int) -> np.ndarray:
    """(n, R) counts of each row in each resample."""
    return np.stack([np.bincount(rows, minlength=n) for rows in resamples], axis=1).astype(np.float64)


def mmd2_replicates(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    scales: tuple[float, ...] = BANDWIDTH_SCALES,
    block: int = 1024,
    device: str = "cpu",
    seed: int = 0,
) -> np.ndarray:
    """Unbiased MMD^2 of row-aligned sets ``x`` (real) and ``y`` (imputed) under R cell weightings.

    ``weights`` (n, R) are multiplicities (a bootstrap resample of cells; all ones = the full set).
    Within each weighting, pairs drawn from the same original cell are excluded from all three
    terms, as Gretton et al.'s (2012, eq. 3) MMD^2_u excludes i = j: for imputation, row i of ``y``
    is an imputation of row i of ``x``, and k(x_i, y_i) would bias the cross term. With
    ``N = sum_i w_i`` and ``S = sum_i w_i^2`` each term is ``(w^T K w - diagonal) / (N^2 - S)``.
    The kernel is RBF averaged over ``gamma_k = 1 / (2 c_k m)``, ``m`` the median squared distance
    between rows of the full ``x``; sums are accumulated in float64 (SPEC section 8).
    """
    n = x.shape[0]
    if y.shape[0] != n or weights.shape[0] != n:
        raise ValueError("paired MMD needs x, y and weights with the same number of rows")
    if n < 2:
        raise ValueError("MMD needs at least 2 rows in each set")
    kernel = rbf_kernel(torch.tensor(_bandwidths(x, scales, seed), dtype=torch.float64, device=device))
    xt, yt = _tensor(x, device), _tensor(y, device)
    w = _tensor(weights, device)
    total, squares = w.sum(dim=0), w.pow(2).sum(dim=0)
    pairs = total.pow(2) - squares
    kxx = (weighted_kernel_sum(xt, xt, w, w, kernel, block, symmetric=True) - squares) / pairs
    kyy = (weighted_kernel_sum(yt, yt, w, w, kernel, block, symmetric=True) - squares) / pairs
    diagonal = (w.pow(2) * paired_kernel(xt, yt, kernel)[:, None]).sum(dim=0)
    kxy = (weighted_kernel_sum(xt, yt, w, w, kernel, block) - diagonal) / pairs
    return (kxx + kyy - 2.0 * kxy).cpu().numpy()


def mmd2_unbiased(
    x: np.ndarray,
    y: np.ndarray,
    scales: tuple[float, ...] = BANDWIDTH_SCALES,
    block: int = 1024,
    device: str = "cpu",
    seed: int = 0,
) -> float:
    """Unbiased U-statistic MMD^2 between the rows of ``x`` (real) and ``y`` (generated).

    Within-set sums drop their diagonal and are divided by n(n-1) (SPEC section 9, bug 7: not
    n^2). Sets of equal size are treated as paired (`mmd2_replicates` with unit weights: the cross
    term drops i = j, Gretton et al.'s MMD^2_u); otherwise the cross term is ``sum k / (n m)``.
    """
    n, m = x.shape[0], y.shape[0]
    if n == m:
        return float(mmd2_replicates(x, y, np.ones((n, 1)), scales, block, device, seed)[0])
    if n < 2 or m < 2:
        raise ValueError("MMD needs at least 2 rows in each set")
    kernel = rbf_kernel(torch.tensor(_bandwidths(x, scales, seed), dtype=torch.float64, device=device))
    xt, yt = _tensor(x, device), _tensor(y, device)
    ones_x = torch.ones((n, 1), dtype=torch.float64, device=device)
    ones_y = torch.ones((m, 1), dtype=torch.float64, device=device)
    kxx = (weighted_kernel_sum(xt, xt, ones_x, ones_x, kernel, block, symmetric=True) - n) / (n * (n - 1))
    kyy = (weighted_kernel_sum(yt, yt, ones_y, ones_y, kernel, block, symmetric=True) - m) / (m * (m - 1))
    kxy = weighted_kernel_sum(xt, yt, ones_x, ones_y, kernel, block) / (n * m)
    return float((kxx + kyy - 2.0 * kxy)[0])


def _bandwidths(x: np.ndarray, scales: tuple[float, ...], seed: int) -> list[float]:
    median = median_squared_distance(x, seed=seed)
    if median <= 0:
        raise ValueError("MMD bandwidth undefined: the real rows are all identical")
    return rbf_gammas(median, scales)


def energy_distance_replicates(
    x: np.ndarray, y: np.ndarray, weights_x: np.ndarray, weights_y: np.ndarray, block: int = 1024, device: str = "cpu"
) -> np.ndarray:
    """Multivariate energy distance ``sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|)`` between the weighted
    empirical distributions of the rows (Szekely & Rizzo; V-statistics as scipy's 1-D version),
    for each column of the (n, R) / (m, R) weights."""
    xt, yt = _tensor(x, device), _tensor(y, device)
    a, b = _tensor(weights_x, device), _tensor(weights_y, device)
    na, nb = a.sum(dim=0), b.sum(dim=0)
    exy = weighted_kernel_sum(xt, yt, a, b, distance_kernel, block) / (na * nb)
    exx = weighted_kernel_sum(xt, xt, a, a, distance_kernel, block, symmetric=True) / na.pow(2)
    eyy = weighted_kernel_sum(yt, yt, b, b, distance_kernel, block, symmetric=True) / nb.pow(2)
    return (2.0 * exy - exx - eyy).clamp_min(0).sqrt().cpu().numpy()
