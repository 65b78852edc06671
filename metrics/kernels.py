"""Blocked, float64 kernel sums for MMD (SPEC section 8), in torch so they run on CPU or GPU."""

from __future__ import annotations

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


def rbf_kernel_sum(x: torch.Tensor, y: torch.Tensor, gammas: torch.Tensor, block: int) -> float:
    """sum_ij k(x_i, y_j) with k = mean over gammas of exp(-gamma |x_i - y_j|^2), in blocks."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for i in range(0, x.shape[0], block):
        xb = x[i : i + block]
        for j in range(0, y.shape[0], block):
            d2 = torch.cdist(xb, y[j : j + block]).pow(2).clamp_min(0)
            total += torch.exp(-gammas[:, None, None] * d2[None]).mean(dim=0).sum()
    return float(total)


def rbf_kernel_diagonal(x: torch.Tensor, y: torch.Tensor, gammas: torch.Tensor) -> float:
    """sum_i k(x_i, y_i) for row-aligned sets."""
    d2 = (x - y).pow(2).sum(dim=1)
    return float(torch.exp(-gammas[:, None] * d2[None]).mean(dim=0).sum())


def mmd2_unbiased(
    x: np.ndarray,
    y: np.ndarray,
    scales: tuple[float, ...] = BANDWIDTH_SCALES,
    block: int = 1024,
    device: str = "cpu",
    seed: int = 0,
) -> float:
    """Unbiased U-statistic MMD^2 between the rows of ``x`` (real) and ``y`` (generated).

    Kernel: RBF averaged over bandwidths ``gamma_k = 1 / (2 c_k m)``, ``m`` the median squared
    distance between real rows. Within-set sums drop their diagonal and are divided by n(n-1)
    (SPEC section 9, bug 7: not n^2). For sets of equal size this is Gretton et al.'s (2012, eq. 3)
    MMD^2_u, whose cross term also drops the i = j pairs: that matters for imputation, where row i
    of ``y`` is an imputation of row i of ``x`` and k(x_i, y_i) would bias the cross term upwards.
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("MMD needs at least 2 rows in each set")
    median = median_squared_distance(x, seed=seed)
    if median <= 0:
        raise ValueError("MMD bandwidth undefined: the real rows are all identical")
    gammas = torch.tensor([1.0 / (2.0 * c * median) for c in scales], dtype=torch.float64, device=device)
    xt, yt = _tensor(x, device), _tensor(y, device)
    kxx = (rbf_kernel_sum(xt, xt, gammas, block) - n) / (n * (n - 1))
    kyy = (rbf_kernel_sum(yt, yt, gammas, block) - m) / (m * (m - 1))
    if n == m:
        kxy = (rbf_kernel_sum(xt, yt, gammas, block) - rbf_kernel_diagonal(xt, yt, gammas)) / (n * (n - 1))
    else:
        kxy = rbf_kernel_sum(xt, yt, gammas, block) / (n * m)
    return kxx + kyy - 2.0 * kxy
