"""The classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017), as CFGen and scDiffusion use it.

A k-nearest-neighbour classifier (k = ``C2ST_NEIGHBOURS``) learns to tell real (held-out) cells, label
0, from generated cells, label 1, in the training PCA space (`countsbench.metrics.pca_space`). Every cell is
scored out of fold (``C2ST_FOLDS``-fold stratified cross-validation, folds shuffled with the metric
seed) by its predicted probability of being generated, and ``c2st_auc`` is the area under the ROC
curve of those scores: the Mann-Whitney statistic ``(R_1 - M(M+1)/2) / (N M)`` with ``R_1`` the sum
of the generated cells' mid-ranks. 0.5 = indistinguishable. A classifier cannot find a difference by
chance on average, but exact copies of real cells score BELOW 0.5 (the copy is a nearest neighbour with
the other label), so the metric is ranked by its distance to 0.5, in either direction.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from countsbench.evaluation import Evaluation
from countsbench.metrics.pca_space import embedded_sets
from countsbench.registry import register_metric

C2ST_NEIGHBOURS = 5
C2ST_FOLDS = 5


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUC of ``scores`` for binary ``labels`` (1 = positive), ties at half weight (mid-ranks)."""
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("an AUC needs both classes")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def out_of_fold_scores(real: np.ndarray, generated: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, out-of-fold probability of "generated") for every real and generated row."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    features = np.concatenate([real, generated])
    labels = np.concatenate([np.zeros(len(real), dtype=int), np.ones(len(generated), dtype=int)])
    folds = StratifiedKFold(C2ST_FOLDS, shuffle=True, random_state=seed)
    classifier = KNeighborsClassifier(n_neighbors=C2ST_NEIGHBOURS)
    probabilities = cross_val_predict(classifier, features, labels, cv=folds, method="predict_proba")
    return labels, probabilities[:, 1]


@register_metric(
    "c2st_auc",
    kinds=("generation",),
    direction="target",
    target=0.5,
    summary="Out-of-fold ROC AUC of a 5-NN classifier telling real from generated cells in the training PCA space.",
    paper="Lopez-Paz & Oquab 2017 (C2ST)",
)
def c2st_auc(ev: Evaluation) -> float:
    real, generated = embedded_sets(ev)
    return roc_auc(*out_of_fold_scores(real, generated, ev.metric_seed))
