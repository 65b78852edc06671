import itertools

import numpy as np
import ot
import pytest
from scipy import stats

from countsbench import CountData
from countsbench.evaluation import Evaluation, score
from countsbench.metrics.distributional import random_directions, sliced_wasserstein_distance
from countsbench.metrics.kernels import BANDWIDTH_SCALES, mmd2_unbiased


def evaluation(truth, prediction, target):
    data = CountData(counts=truth)
    return Evaluation(kind="imputation", truth=data, prediction=prediction, train=data, target_mask=target)


def test_pointwise_metrics_on_hand_values():
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    pred = np.array([[1, 4, 3], [4, 5, 3]])
    target = np.array([[False, True, True], [True, False, True]])
    values = score(evaluation(truth, pred, target), ["rmse", "mae", "bias"])
    errors = np.array([2, 0, 0, -3])
    assert values["rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert values["mae"] == pytest.approx(np.mean(np.abs(errors)))
    assert values["bias"] == pytest.approx(-0.25)


def test_spearman_per_cell_matches_scipy_and_skips_undefined_cells():
    rng = np.random.default_rng(0)
    truth = rng.poisson(3.0, size=(6, 20))
    pred = truth + rng.poisson(1.0, size=truth.shape)
    target = rng.random(truth.shape) < 0.5
    target[5] = False  # a cell without targets is skipped, not counted as 0
    expected = np.mean([stats.spearmanr(truth[i, target[i]], pred[i, target[i]]).statistic for i in range(5)])
    value = score(evaluation(truth, pred, target), ["spearman_per_cell"])["spearman_per_cell"]
    assert value == pytest.approx(expected)


def test_energy_distance_against_its_definition():
    rng = np.random.default_rng(1)
    truth = rng.poisson(2.0, size=(10, 8))
    pred = rng.poisson(3.0, size=(10, 8))
    target = rng.random(truth.shape) < 0.6
    x, y = truth[target].astype(float), pred[target].astype(float)
    # D^2 = 2E|X-Y| - E|X-X'| - E|Y-Y'|; scipy reports D = sqrt(D^2)
    d2 = 2 * np.abs(x[:, None] - y[None]).mean() - np.abs(x[:, None] - x[None]).mean()
    d2 -= np.abs(y[:, None] - y[None]).mean()
    value = score(evaluation(truth, pred, target), ["energy_distance"])["energy_distance"]
    assert value == pytest.approx(np.sqrt(d2))


def brute_force_mmd2(x, y):
    """Gretton et al. (2012) MMD^2_u with m = n, by explicit loops over pairs."""
    d2_real = [np.sum((a - b) ** 2) for a, b in itertools.combinations(x, 2)]
    gammas = [1 / (2 * c * np.median(d2_real)) for c in BANDWIDTH_SCALES]

    def k(a, b):
        return np.mean([np.exp(-g * np.sum((a - b) ** 2)) for g in gammas])

    n = len(x)
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                total += k(x[i], x[j]) + k(y[i], y[j]) - k(x[i], y[j]) - k(x[j], y[i])
    return total / (n * (n - 1))


def test_mmd_matches_brute_force_and_blocks_do_not_matter():
    rng = np.random.default_rng(2)
    x = rng.poisson(2.0, size=(15, 4)).astype(float)
    y = rng.poisson(2.5, size=(15, 4)).astype(float)
    expected = brute_force_mmd2(x, y)
    assert mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-10)
    assert mmd2_unbiased(x, y, block=4) == pytest.approx(expected, rel=1e-10)


def test_mmd_separates_distributions_beyond_its_null_spread():
    rng = np.random.default_rng(3)
    same = [mmd2_unbiased(rng.poisson(2.0, (200, 5)), rng.poisson(2.0, (200, 5)), seed=s) for s in range(5)]
    shifted = mmd2_unbiased(rng.poisson(2.0, (200, 5)), rng.poisson(3.0, (200, 5)))
    assert shifted > max(same) + 3 * np.std(same)


def test_sliced_wasserstein_matches_pot_with_the_same_projections():
    rng = np.random.default_rng(4)
    x = rng.poisson(2.0, size=(50, 6)).astype(float)
    y = rng.poisson(3.0, size=(50, 6)).astype(float)
    ours = sliced_wasserstein_distance(x, y, n_projections=200, seed=5, block=64)
    pot = ot.sliced_wasserstein_distance(x, y, projections=random_directions(6, 200, 5), p=2)
    assert ours == pytest.approx(float(pot), rel=1e-10)


def test_sliced_wasserstein_is_zero_for_identical_sets_and_handles_unequal_sizes():
    rng = np.random.default_rng(5)
    x = rng.poisson(2.0, size=(40, 3)).astype(float)
    assert sliced_wasserstein_distance(x, x) == 0.0
    doubled = np.concatenate([x, x])  # the same empirical distribution with twice the rows
    assert sliced_wasserstein_distance(x, doubled) == pytest.approx(0.0, abs=1e-12)
