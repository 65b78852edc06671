"""Seeded, stratified train/validation/test splits."""

from __future__ import annotations

import numpy as np


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of (train, valid, test), each class split by ``fractions`` (rounded per class).

    Stratifying keeps every cell type in every split, which small datasets need (pbmc68k's smallest
    type has 8 cells). Indices are returned sorted.
    """
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_train = round(fractions[0] * rows.size)
        n_valid = round(fractions[1] * rows.size)
        parts[0].append(rows[:n_train])
        parts[1].append(rows[n_train : n_train + n_valid])
        parts[2].append(rows[n_train + n_valid :])
    train, valid, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, valid, test
