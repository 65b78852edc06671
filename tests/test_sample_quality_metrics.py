"""Oracles of the sample-quality metrics (`countsbench.metrics.prdc`, `countsbench.metrics.c2st`,
`countsbench.metrics.memorisation`,
`countsbench.metrics.count_properties`): identical sets, a shifted set, a memorised set, a hand-computed PRDC and
independent implementations (scipy's KS, sklearn's AUC).

Statistical tolerances: a null AUC of n = m = 300 cells has s.e. sqrt((n + m + 1) / (12 n m)) = 0.024;
out-of-fold k-NN scores are noisier, so 0.1 (4 s.e.) is allowed. A memorisation rate of m = 400
generated cells against a quantile of n = 400 held-out ones has s.e. about sqrt(2 q (1 - q) / 400) =
0.015; 0.06 (4 s.e.) is allowed.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from countsbench import CountData
from countsbench.evaluation import Evaluation, score
from countsbench.metrics.c2st import roc_auc
from countsbench.metrics.count_properties import ks_statistic
from countsbench.metrics.memorisation import MEMORISATION_QUANTILE, calibrated_rate
from countsbench.metrics.prdc import prdc
from countsbench.registry import REGISTRY

SAMPLE_QUALITY = ("prdc_precision", "prdc_recall", "prdc_density", "prdc_coverage", "c2st_auc", "memorisation_rate")
COUNT_PROPERTIES = ("ks_library_size", "ks_zeros_per_cell", "ks_zeros_per_gene", "mean_variance_error")


def draw(n: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """(n, 30) negative-binomial counts with 3 correlated programmes (a low-rank structure, like cells)."""
    programme = rng.gamma(2.0, 1.0, size=(n, 3))
    loadings = np.random.default_rng(99).gamma(1.0, 1.0, size=(3, 30))
    return rng.poisson(rng.gamma(4.0, scale * programme @ loadings / 4.0)).astype(np.int64)


def evaluation(truth: np.ndarray, generated: np.ndarray, train: np.ndarray) -> Evaluation:
    return Evaluation("generation", CountData(truth), generated, CountData(train))


@pytest.fixture(scope="module")
def sets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"train": draw(800, rng), "test": draw(300, rng), "fresh": draw(300, rng), "shifted": draw(300, rng, 10.0)}


def test_directions_are_registered():
    expected = {"prdc_precision": "maximize", "prdc_recall": "maximize", "prdc_coverage": "maximize"}
    for name, direction in expected.items():
        assert REGISTRY.metrics.get(name).direction == direction
    assert (REGISTRY.metrics.get("prdc_density").target, REGISTRY.metrics.get("c2st_auc").target) == (1.0, 0.5)
    assert REGISTRY.metrics.get("memorisation_rate").target == MEMORISATION_QUANTILE
    assert all(REGISTRY.metrics.get(name).direction == "minimize" for name in COUNT_PROPERTIES)


def test_prdc_on_a_hand_computed_example():
    # k = 1. Real radii (nearest other real): 0 -> 1, 1 -> 1, 3 -> 2, 6 -> 3; generated radii: 2.4, 2.4, 7.1.
    # precision: 0.5 in B(0, 1), 2.9 in B(3, 2), 10 in no ball: 2/3. density: 0.5 lies in 2 balls,
    # 2.9 in 1, 10 in 0: 3 / (1 * 3) = 1. recall: 0, 1 near 0.5 (< 2.4), 3 near 2.9, 6 near 10 (4 < 7.1): 1.
    # coverage: the nearest generated point of 6 is 2.9 at 3.1, not < 3: 3/4.
    real, generated = np.array([[0.0], [1.0], [3.0], [6.0]]), np.array([[0.5], [2.9], [10.0]])
    assert prdc(real, generated, k=1) == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "density": 1.0, "coverage": 0.75}
    )


def test_prdc_recall_is_precision_with_the_roles_swapped():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 4)), rng.normal(0.5, 1.2, size=(150, 4))
    assert prdc(a, b)["recall"] == pytest.approx(prdc(b, a)["precision"])


def test_identical_memorised_fresh_and_shifted_sets(sets):
    def values(generated: np.ndarray) -> dict[str, float]:
        return score(evaluation(sets["test"], generated, sets["train"]), SAMPLE_QUALITY + COUNT_PROPERTIES)

    same = values(sets["test"])
    assert same["prdc_precision"] == same["prdc_recall"] == same["prdc_coverage"] == 1.0
    assert same["c2st_auc"] < 0.5  # exact copies are each other's nearest neighbours, with the other label
    assert all(same[name] == 0.0 for name in COUNT_PROPERTIES)
    fresh = values(sets["fresh"])  # the same distribution, other cells
    assert abs(fresh["c2st_auc"] - 0.5) < 0.1
    assert abs(fresh["memorisation_rate"] - MEMORISATION_QUANTILE) < 0.06
    assert fresh["prdc_precision"] > 0.8 and fresh["prdc_recall"] > 0.8 and abs(fresh["prdc_density"] - 1) < 0.3
    memorised = values(sets["train"][:300])
    assert memorised["memorisation_rate"] == 1.0 and abs(memorised["c2st_auc"] - 0.5) < 0.1
    shifted = values(sets["shifted"])
    assert shifted["c2st_auc"] > 0.95 and shifted["prdc_precision"] < 0.2 and shifted["prdc_coverage"] < 0.2
    assert shifted["ks_library_size"] > 0.9 and shifted["mean_variance_error"] > 1.0
    for name in COUNT_PROPERTIES:
        assert shifted[name] > fresh[name]


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500) + 0.3 * labels, 1)  # many ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_memorisation_rate_of_the_held_out_cells_is_exactly_the_quantile():
    rng = np.random.default_rng(3)
    continuous = rng.gamma(2.0, 1.0, 400)
    tied = np.where(rng.random(400) < 0.3, 0.0, continuous)  # 30% exact duplicates of training rows
    for heldout in (continuous, tied):
        assert calibrated_rate(heldout, heldout) == pytest.approx(MEMORISATION_QUANTILE)
    assert calibrated_rate(np.zeros(50), continuous) == 1.0
    # tau = 0 (30% held-out ties at 0 > q): exact copies count at weight q / 0.3
    assert calibrated_rate(np.zeros(50), tied) == pytest.approx(MEMORISATION_QUANTILE / np.mean(tied == 0))


def test_ks_matches_scipy_with_ties():
    rng = np.random.default_rng(4)
    for a, b in ((rng.poisson(3, 300), rng.poisson(3.5, 200)), (rng.normal(size=50), rng.normal(1, 2, 80))):
        assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_mean_variance_error_by_hand():
    # one gene: real (0, 2) has mean 1, variance 2; generated (0, 0) has mean 0, variance 0
    ev = evaluation(np.array([[0], [2]]), np.array([[0], [0]]), np.array([[1], [2], [3]]))
    assert score(ev, ["mean_variance_error"])["mean_variance_error"] == pytest.approx(np.hypot(np.log(2), np.log(3)))
