"""Pointwise imputation metrics on the target entries (SPEC section 8).

Pooled (over all target entries of all evaluated cells, how the paper's numbers were computed):
``rmse``, ``mae``, ``bias`` (mean of imputed - true), ``r2``, ``spearman``, ``pearson``.
Per cell (each cell's value over its own target entries, then the NaN-safe mean over cells):
``rmse_per_cell``, ``mae_per_cell``, ``bias_per_cell``, ``r2_per_cell``, ``spearman_per_cell``,
``pearson_per_cell``. A cell's value is undefined (skipped, not counted as 0) when it has no
targets, or for correlations and R^2 fewer than 2 targets or constant values.
R^2 is ``1 - sum (y - yhat)^2 / sum (y - ybar)^2`` with ``y`` the truth (SPEC section 9, bug 7:
not with truth and prediction swapped).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from countsbench.evaluation import Evaluation
from countsbench.registry import register_metric

IMPUTATION = ("imputation",)


def error_sums(ev: Evaluation) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: (number of targets, sum of squared, absolute and signed errors)."""
    mask = ev.require_targets()
    error = np.where(mask, ev.predicted() - ev.true_dense(), 0.0)
    return mask.sum(axis=1), (error**2).sum(axis=1), np.abs(error).sum(axis=1), error.sum(axis=1)


def _sums(ev: Evaluation) -> tuple[np.ndarray, ...]:
    return ev.per_cell("error_sums", error_sums)


def _mean_over_cells(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.any(np.isfinite(values)) else float("nan")


def _per_cell(numerator: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, numerator / np.maximum(count, 1), np.nan)


@register_metric(
    "rmse", kinds=IMPUTATION, direction="minimize", summary="Root mean squared error, pooled.", paper="RMSE"
)
def rmse(ev: Evaluation) -> float:
    count, squared, _, _ = _sums(ev)
    return float(np.sqrt(squared.sum() / count.sum()))


@register_metric("mae", kinds=IMPUTATION, direction="minimize", summary="Mean absolute error, pooled.", paper="MAE")
def mae(ev: Evaluation) -> float:
    count, _, absolute, _ = _sums(ev)
    return float(absolute.sum() / count.sum())


@register_metric(
    "bias",
    kinds=IMPUTATION,
    direction="target",
    target=0.0,
    summary="Mean of imputed minus true, pooled.",
    paper="Bias",
)
def bias(ev: Evaluation) -> float:
    count, _, _, signed = _sums(ev)
    return float(signed.sum() / count.sum())


@register_metric(
    "rmse_per_cell", kinds=IMPUTATION, direction="minimize", summary="Mean over cells of each cell's RMSE."
)
def rmse_per_cell(ev: Evaluation) -> float:
    count, squared, _, _ = _sums(ev)
    return _mean_over_cells(np.sqrt(_per_cell(squared, count)))


@register_metric("mae_per_cell", kinds=IMPUTATION, direction="minimize", summary="Mean over cells of each cell's MAE.")
def mae_per_cell(ev: Evaluation) -> float:
    count, _, absolute, _ = _sums(ev)
    return _mean_over_cells(_per_cell(absolute, count))


@register_metric(
    "bias_per_cell", kinds=IMPUTATION, direction="target", target=0.0, summary="Mean over cells of each cell's bias."
)
def bias_per_cell(ev: Evaluation) -> float:
    count, _, _, signed = _sums(ev)
    return _mean_over_cells(_per_cell(signed, count))


def r2_score(true: np.ndarray, pred: np.ndarray) -> float:
    """``1 - SS_res / SS_tot`` around the truth's mean; NaN when the truth is constant."""
    total = np.sum((true - true.mean()) ** 2)
    return float(1.0 - np.sum((true - pred) ** 2) / total) if total > 0 else float("nan")


def _correlation(kind: str) -> callable:
    def correlate(true: np.ndarray, pred: np.ndarray) -> float:
        if np.all(true == true[0]) or np.all(pred == pred[0]):
            return float("nan")
        result = stats.spearmanr(true, pred) if kind == "spearman" else stats.pearsonr(true, pred)
        return float(result.statistic)

    return correlate


PAIRED_SCORES = {"r2": r2_score, "spearman": _correlation("spearman"), "pearson": _correlation("pearson")}


def per_cell_scores(true: np.ndarray, pred: np.ndarray, mask: np.ndarray, score: callable) -> np.ndarray:
    """``score(true, pred)`` per row over the masked entries; NaN for rows with fewer than 2."""
    out = np.full(true.shape[0], np.nan)
    for i in np.flatnonzero(mask.sum(axis=1) >= 2):
        cols = mask[i]
        out[i] = score(true[i, cols], pred[i, cols])
    return out


def per_cell_spearman(true: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Spearman correlation per row over the masked entries; NaN where undefined."""
    return per_cell_scores(true, pred, mask, PAIRED_SCORES["spearman"])


def _register_paired(name: str, score: callable, summary: str, paper: str) -> None:
    def pooled(ev: Evaluation) -> float:
        true, pred = ev.target_values()
        return score(true, pred) if true.size >= 2 else float("nan")

    def per_cell(ev: Evaluation) -> float:
        values = ev.per_cell(
            f"{name}_per_cell",
            lambda full: per_cell_scores(full.true_dense(), full.predicted(), full.require_targets(), score),
        )
        return _mean_over_cells(values)

    pooled.__qualname__ = pooled.__name__ = name
    per_cell.__qualname__ = per_cell.__name__ = f"{name}_per_cell"
    register_metric(
        name,
        kinds=IMPUTATION,
        direction="maximize",
        summary=f"{summary}, pooled over all targets.",
        max_resamples=20,  # a pass (Spearman: a sort) over every target value per replicate
    )(pooled)
    register_metric(
        f"{name}_per_cell",
        kinds=IMPUTATION,
        direction="maximize",
        summary=f"Mean over cells of each cell's {summary}.",
        paper=paper,
    )(per_cell)


_register_paired("r2", r2_score, "R^2 of imputed against true targets", "R^2")
_register_paired("spearman", PAIRED_SCORES["spearman"], "Spearman correlation of true and imputed targets", "Spearman")
_register_paired("pearson", PAIRED_SCORES["pearson"], "Pearson correlation of true and imputed targets", "Pearson")
