"""Evaluation masks and the scIDPMs valid mask (SPEC section 8).

All masks are boolean arrays of the data's shape, True = selected, and are fixed by an explicit seed
(SPEC section 9, bug 8: the research code drew MNAR masks from an unseeded generator).
"""

from __future__ import annotations

import numpy as np

from countsbench.data import ExpressedValidity


def dropout_valid_mask(counts: np.ndarray, cell_types: np.ndarray) -> np.ndarray:
    """scIDPMs Algorithm 1: which entries are real measurements (True) and which are dropouts.

    Within each cell type, a zero of a gene that is expressed somewhere in that cell type is a
    dropout (not valid); non-zeros and the zeros of genes never expressed in that type are valid.
    """
    _, groups = np.unique(cell_types, return_inverse=True)
    rule = ExpressedValidity.from_counts(counts, groups, groups.max() + 1)
    return rule.mask(np.asarray(counts))


def mcar_mask(valid: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Missing completely at random: each valid entry is selected with probability ``rate``."""
    _check_rate(rate)
    rng = np.random.default_rng(seed)
    return valid & (rng.random(valid.shape) < rate)


def default_slack(n_valid: int) -> int:
    """The MNAR candidate slack for small test sets: 2% of a gene's valid entries, at least 1."""
    return max(1, round(0.02 * n_valid))


def mnar_mask(
    counts: np.ndarray, valid: np.ndarray, rate: float, seed: int, *, low: bool = True, slack: int | None = None
) -> np.ndarray:
    """Missing not at random, biased to low (or high) values, per gene.

    For each gene with ``n_valid`` valid entries, ``n = floor(rate * n_valid)`` entries are chosen
    uniformly among its ``n + slack`` smallest (largest when ``low=False``) valid values; ties are
    broken by a seeded random key so that equal values do not favour low cell indices. ``slack``
    defaults to `default_slack` (the paper's absolute 5000 suits only atlas-sized test sets).
    """
    _check_rate(rate)
    counts = np.asarray(counts)
    rng = np.random.default_rng(seed)
    mask = np.zeros(counts.shape, dtype=bool)
    for gene in range(counts.shape[1]):
        rows = np.flatnonzero(valid[:, gene])
        n = int(np.floor(rate * rows.size))
        if n == 0:
            continue
        values = counts[rows, gene].astype(np.float64)
        tie_break = rng.random(rows.size)
        order = np.lexsort((tie_break, values if low else -values))
        n_candidates = min(rows.size, n + (default_slack(rows.size) if slack is None else slack))
        chosen = rng.choice(order[:n_candidates], size=n, replace=False)
        mask[rows[chosen], gene] = True
    return mask


def _check_rate(rate: float) -> None:
    if not 0.0 < rate < 1.0:
        raise ValueError(f"mask rate must be in (0, 1), got {rate}")
