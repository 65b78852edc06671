"""Generation metrics against brute-force, POT and scipy values."""

from __future__ import annotations

import numpy as np
import ot
import pytest
from scipy import stats

from countsbench.data import CountData
from countsbench.evaluation import Evaluation, score
from countsbench.metrics.generation import mmd_v_statistic


def brute_force_mmd(x: np.ndarray, y: np.ndarray, gamma: float = 1.0) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-gamma * ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).mean())

    return k(x, x) + k(y, y) - 2 * k(x, y)


def evaluation(truth: np.ndarray, generated: np.ndarray, **options) -> Evaluation:
    data = CountData(truth)
    return Evaluation("generation", data, generated, data, options=options)


@pytest.fixture()
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.poisson(1.0, size=(300, 3)), rng.poisson(1.3, size=(250, 3))


def test_mmd_v_statistic_equals_brute_force(pair) -> None:
    x, y = pair
    assert mmd_v_statistic(x, y, block=64) == pytest.approx(brute_force_mmd(x, y), rel=1e-10, abs=1e-14)
    assert mmd_v_statistic(x, x) == pytest.approx(0.0, abs=1e-12)


def test_joint_and_marginal_metrics_against_references(pair) -> None:
    x, y = pair
    values = score(evaluation(x, y), ["joint_mmd", "marginal_mmd", "marginal_wasserstein", "joint_sliced_wasserstein"])
    assert values["joint_mmd"] == pytest.approx(brute_force_mmd(x, y), rel=1e-10)
    for j in range(3):
        assert values[f"marginal_mmd/{j}"] == pytest.approx(brute_force_mmd(x[:, [j]], y[:, [j]]), rel=1e-10)
        assert values[f"marginal_wasserstein/{j}"] == pytest.approx(stats.wasserstein_distance(x[:, j], y[:, j]))
    w1 = [ot.wasserstein_1d(x[:, j].astype(float), y[:, j].astype(float), p=1) for j in range(3)]
    assert values["marginal_wasserstein/mean"] == pytest.approx(np.mean(w1), rel=1e-6)
    # Sliced W2 with 500 projections vs POT's estimate with 20,000: Monte-Carlo error well below 5%.
    reference = ot.sliced_wasserstein_distance(x.astype(float), y.astype(float), n_projections=20_000, seed=1)
    assert values["joint_sliced_wasserstein"] == pytest.approx(reference, rel=0.05)


def test_comparison_rows_limit_the_distances(pair) -> None:
    x, y = pair
    values = score(evaluation(x, y, comparison_rows=100), ["joint_mmd", "zero_share", "max_count"])
    assert values["joint_mmd"] == pytest.approx(brute_force_mmd(x[:100], y[:100]), rel=1e-10)
    assert values["zero_share/generated"] == pytest.approx(np.mean(y[:100] == 0))
    assert values["zero_share/truth"] == pytest.approx(np.mean(x[:100] == 0))
    assert values["max_count/generated"] == y[:100].max()


def test_variance_ratio_uses_the_true_variance_and_all_rows(pair) -> None:
    x, y = pair
    true = np.array([1.0, 2.0, 1.3])
    values = score(
        evaluation(x, y, true_variance=true, comparison_rows=10),
        ["variance_ratio", "variance_ratio_in_band", "variance_log_error"],
    )
    ratios = y.var(axis=0, ddof=1) / true
    assert [values[f"variance_ratio/{j}"] for j in range(3)] == pytest.approx(ratios)
    assert values["variance_ratio_in_band"] == np.sum((ratios >= 0.9) & (ratios <= 1.1))
    assert values["variance_log_error"] == pytest.approx(np.mean(np.abs(np.log(ratios))))


def test_variance_ratio_without_a_known_generator_uses_the_truth(pair) -> None:
    x, y = pair
    values = score(evaluation(x, y), ["variance_ratio"])
    assert values["variance_ratio/0"] == pytest.approx(y[:, 0].var(ddof=1) / x[:, 0].var(ddof=1))
