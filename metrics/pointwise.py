"""Pointwise imputation metrics on the target entries (SPEC section 8).

RMSE, MAE and bias are pooled over all target entries (how the paper's numbers were computed);
``spearman_per_cell`` is the NaN-safe mean over cells of each cell's rank correlation between its
true and imputed target values (cells with fewer than 2 targets or constant values are skipped).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from countsbench.evaluation import Evaluation
from countsbench.registry import register_metric


@register_metric("rmse", kinds=("imputation",), direction="minimize", summary="Root mean squared error, pooled.")
def rmse(ev: Evaluation) -> float:
    true, pred = ev.target_values()
    return float(np.sqrt(np.mean((pred - true) ** 2)))


@register_metric("mae", kinds=("imputation",), direction="minimize", summary="Mean absolute error, pooled.")
def mae(ev: Evaluation) -> float:
    true, pred = ev.target_values()
    return float(np.mean(np.abs(pred - true)))


@register_metric(
    "bias", kinds=("imputation",), direction="target", target=0.0, summary="Mean of imputed minus true, pooled."
)
def bias(ev: Evaluation) -> float:
    true, pred = ev.target_values()
    return float(np.mean(pred - true))


def per_cell_spearman(true: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Spearman correlation per row over the masked entries; NaN where undefined."""
    out = np.full(true.shape[0], np.nan)
    for i in range(true.shape[0]):
        cols = mask[i]
        if cols.sum() < 2:
            continue
        t, p = true[i, cols], pred[i, cols]
        if np.all(t == t[0]) or np.all(p == p[0]):
            continue
        out[i] = stats.spearmanr(t, p).statistic
    return out


@register_metric(
    "spearman_per_cell",
    kinds=("imputation",),
    direction="maximize",
    summary="Mean over cells of the Spearman correlation of true and imputed targets.",
)
def spearman_per_cell(ev: Evaluation) -> float:
    values = per_cell_spearman(ev.true_dense(), np.asarray(ev.prediction, dtype=np.float64), ev.target_mask)
    return float(np.nanmean(values)) if np.any(np.isfinite(values)) else float("nan")
