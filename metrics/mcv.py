"""Molecular cross-validation metrics of denoising tasks (Batson et al. 2019; openproblems task_denoising).

The prediction is the method's denoised training counts (expected counts on the training scale), the
truth the held-out test molecules of the same cells (tasks/denoising.py).

- ``mcv_mse``: openproblems' ``mse``: both matrices normalised to 10^4 counts per cell
  (``sc.pp.normalize_total(target_sum=1e4)``; an all-zero row stays zero), ``log1p``, then the mean
  squared difference over every entry. Per-cell normalisation makes it blind to the prediction's scale.
- ``mcv_poisson``: openproblems' ``poisson``: the prediction rescaled by the depth ratio
  ``sum(test) / sum(train)`` (their ``uns["train_sum"]``), then the MCV reference loss
  ``poisson_nll_loss(y_pred, y_true) = mean(y_pred - y_true ln(y_pred + 1e-6))`` with y_pred the rescaled
  prediction and y_true the test counts. openproblems v1 (and v2 before its fix) passed the two the
  other way round, which rewards sharpening and penalises smoothing (tests/test_mcv.py).

Both are means over cells of per-cell terms, so the cell bootstrap applies (`Evaluation.per_cell`
keeps the training totals of a resample's cells).
"""

from __future__ import annotations

import numpy as np

from countsbench.evaluation import Evaluation
from countsbench.registry import register_metric

DENOISING = ("denoising",)
TARGET_SUM = 1e4
POISSON_EPS = 1e-6


def log_cp10k(counts: np.ndarray) -> np.ndarray:
    """``log1p(x / total * 1e4)`` per row; a row of zeros stays zero (as scanpy's normalize_total)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.log1p(counts / np.where(totals > 0, totals, 1.0) * TARGET_SUM)


def poisson_nll_loss(y_pred: np.ndarray, y_true: np.ndarray) -> float:
    """The MCV reference code's loss (molecular_cross_validation.mcv_sweep): prediction first."""
    return float(np.mean(y_pred - y_true * np.log(y_pred + POISSON_EPS)))


def depth_ratio(ev: Evaluation) -> float:
    """``sum(test) / sum(train)`` over the evaluated cells (a resample's own cells)."""
    train_totals = ev.per_cell("mcv_train_totals", lambda full: full.train.dense().sum(axis=1).astype(np.float64))
    return float(ev.true_dense().sum() / max(train_totals.sum(), 1.0))


@register_metric(
    "mcv_mse",
    kinds=DENOISING,
    direction="minimize",
    summary="MSE between log1p(CP10k) of the denoised training counts and of the held-out test counts",
    paper="openproblems v2 task_denoising (mse); Batson et al. 2019",
)
def mcv_mse(ev: Evaluation) -> float:
    per_cell = ev.per_cell(
        "mcv_squared_errors",
        lambda full: ((log_cp10k(full.true_dense()) - log_cp10k(full.predicted())) ** 2).mean(axis=1),
    )
    return float(np.mean(per_cell))


@register_metric(
    "mcv_poisson",
    kinds=DENOISING,
    direction="minimize",
    summary="Poisson NLL of the test counts under the denoised counts rescaled by sum(test)/sum(train)",
    paper="openproblems v2 task_denoising (poisson), argument order of the MCV reference code; Batson et al. 2019",
)
def mcv_poisson(ev: Evaluation) -> float:
    return poisson_nll_loss(ev.predicted() * depth_ratio(ev), ev.true_dense())
