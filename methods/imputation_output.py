"""Turning a method's real-valued estimates into the imputation contract's integer counts.

Every learned baseline predicts real values on some scale; this clamps them at 0 (the research
code's GAIN and HI-VAE could return negative counts), rounds half up like the naive controls, and
puts every observed (non-target) entry back unchanged.
"""

from __future__ import annotations

import numpy as np

from countsbench.data import CountData
from countsbench.methods.naive import fill_targets


def finish_imputation(data: CountData, target_mask: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """(n, d) or (K, n, d) estimates -> int64 counts of the same shape, observed entries unchanged."""
    estimates = np.asarray(estimates, dtype=np.float64)
    if not np.all(np.isfinite(estimates[..., target_mask])):
        raise FloatingPointError("the model produced non-finite estimates for target entries")
    clamped = np.maximum(np.where(target_mask, estimates, 0.0), 0.0)
    if clamped.ndim == 2:
        return fill_targets(data, target_mask, clamped)
    return np.stack([fill_targets(data, target_mask, sample) for sample in clamped])


def observed_mask(data: CountData, target_mask: np.ndarray | None = None) -> np.ndarray:
    """Entries a method may learn from: valid measurements that are not imputation targets."""
    observed = data.valid_mask().copy()
    if target_mask is not None:
        observed &= ~np.asarray(target_mask, dtype=bool)
    return observed
