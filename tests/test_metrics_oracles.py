"""Metrics against independent implementations: scipy, scikit-learn and brute-force NumPy."""

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import r2_score
from sklearn.metrics.pairwise import rbf_kernel as sklearn_rbf

from countsbench import CountData
from countsbench.evaluation import Evaluation, score
from countsbench.metrics.kernels import energy_distance_replicates, mmd2_replicates, rbf_kernel
from countsbench.metrics.multiple import crps_ensemble
from countsbench.registry import REGISTRY


def evaluation(truth, prediction, target, samples=None):
    data = CountData(counts=truth)
    return Evaluation("imputation", data, prediction, data, target_mask=target, samples=samples)


@pytest.fixture()
def paired():
    rng = np.random.default_rng(0)
    truth = rng.poisson(3.0, size=(8, 25))
    pred = np.maximum(truth + rng.integers(-2, 3, size=truth.shape), 0)
    target = rng.random(truth.shape) < 0.5
    target[7] = False  # no targets: skipped by every per-cell metric
    pred[6] = 4  # constant prediction: correlations undefined for this cell
    return truth, pred, target


def test_per_cell_r2_pearson_spearman_match_sklearn_and_scipy(paired):
    truth, pred, target = paired
    values = score(evaluation(truth, pred, target), ["r2_per_cell", "pearson_per_cell", "spearman_per_cell"], 0)
    rows = range(6)
    r2 = np.mean([r2_score(truth[i, target[i]], pred[i, target[i]]) for i in range(7)])
    pearson = np.mean([stats.pearsonr(truth[i, target[i]], pred[i, target[i]]).statistic for i in rows])
    spearman = np.mean([stats.spearmanr(truth[i, target[i]], pred[i, target[i]]).statistic for i in rows])
    assert values["r2_per_cell"] == pytest.approx(r2)
    assert values["pearson_per_cell"] == pytest.approx(pearson)
    assert values["spearman_per_cell"] == pytest.approx(spearman)


def test_r2_is_oriented_on_the_truth():
    truth = np.array([[1, 2, 3, 10]])
    pred = np.array([[2, 2, 2, 2]])
    target = np.ones_like(truth, dtype=bool)
    value = score(evaluation(truth, pred, target), ["r2"], 0)["r2"]
    assert value == pytest.approx(r2_score(truth[0], pred[0]))  # swapped arguments would give -inf/NaN


def test_pooled_variants_match_scipy(paired):
    truth, pred, target = paired
    values = score(evaluation(truth, pred, target), ["spearman", "pearson", "r2", "rmse_per_cell"], 0)
    t, p = truth[target], pred[target]
    assert values["spearman"] == pytest.approx(stats.spearmanr(t, p).statistic)
    assert values["pearson"] == pytest.approx(stats.pearsonr(t, p).statistic)
    assert values["r2"] == pytest.approx(r2_score(t, p))
    per_cell = [np.sqrt(np.mean((truth[i, target[i]] - pred[i, target[i]]) ** 2)) for i in range(7)]
    assert values["rmse_per_cell"] == pytest.approx(np.mean(per_cell))


def test_rbf_kernel_matches_sklearn_for_power_of_two_and_other_bandwidths():
    rng = np.random.default_rng(1)
    x, y = rng.poisson(2.0, (7, 4)).astype(float), rng.poisson(2.0, (5, 4)).astype(float)
    d2 = torch.cdist(torch.tensor(x), torch.tensor(y)).pow(2)
    for gammas in ([0.1, 0.05, 0.025, 0.2, 0.4], [0.1, 0.3, 0.7]):  # the first takes the squaring path
        expected = np.mean([sklearn_rbf(x, y, gamma=g) for g in gammas], axis=0)
        ours = rbf_kernel(torch.tensor(gammas, dtype=torch.float64))(d2).numpy()
        np.testing.assert_allclose(ours, expected, rtol=1e-12)


def brute_force_resampled_mmd2(x, y, rows, gammas):
    """MMD^2_u of a resample, excluding every pair drawn from the same original cell."""

    def k(a, b):
        return np.mean([np.exp(-g * np.sum((a - b) ** 2)) for g in gammas])

    total, pairs = 0.0, 0
    for i, a in enumerate(rows):
        for j, b in enumerate(rows):
            if i != j and a != b:
                total += k(x[a], x[b]) + k(y[a], y[b]) - k(x[a], y[b]) - k(x[b], y[a])
                pairs += 1
    return total / pairs


def test_weighted_mmd_replicates_match_brute_force_on_explicit_resamples():
    rng = np.random.default_rng(2)
    x = rng.poisson(2.0, size=(12, 3)).astype(float)
    y = rng.poisson(2.5, size=(12, 3)).astype(float)
    resamples = [rng.integers(0, 12, 12) for _ in range(3)]
    weights = np.stack([np.bincount(r, minlength=12) for r in resamples], axis=1).astype(float)
    d2 = [np.sum((a - b) ** 2) for i, a in enumerate(x) for b in x[i + 1 :]]
    gammas = [1 / (2 * c * np.median(d2)) for c in (0.25, 0.5, 1, 2, 4)]
    ours = mmd2_replicates(x, y, weights, block=5)
    expected = [brute_force_resampled_mmd2(x, y, r, gammas) for r in resamples]
    np.testing.assert_allclose(ours, expected, rtol=1e-10)


def test_multivariate_energy_distance_is_scipys_in_one_dimension_and_brute_force_in_more():
    rng = np.random.default_rng(3)
    a, b = rng.poisson(2.0, (30, 1)).astype(float), rng.poisson(3.0, (20, 1)).astype(float)
    ones_a, ones_b = np.ones((30, 1)), np.ones((20, 1))
    ours = energy_distance_replicates(a, b, ones_a, ones_b, block=7)[0]
    assert ours == pytest.approx(stats.energy_distance(a[:, 0], b[:, 0]), rel=1e-10)
    a, b = rng.poisson(2.0, (15, 4)).astype(float), rng.poisson(3.0, (15, 4)).astype(float)

    def mean_distance(u, v):
        return np.mean(np.linalg.norm(u[:, None] - v[None], axis=2))

    expected = np.sqrt(2 * mean_distance(a, b) - mean_distance(a, a) - mean_distance(b, b))
    assert energy_distance_replicates(a, b, np.ones((15, 1)), np.ones((15, 1)))[0] == pytest.approx(expected)


def test_crps_matches_the_integral_of_the_empirical_cdf():
    rng = np.random.default_rng(4)
    samples, truth = rng.poisson(3.0, size=(5, 40)).astype(float), rng.poisson(3.0, size=40).astype(float)
    grid = np.linspace(-1, 30, 31001)
    step = grid[1] - grid[0]
    expected = []
    for j in range(40):  # CRPS = integral of (F(z) - 1{y <= z})^2 dz
        cdf = (samples[:, j][:, None] <= grid[None]).mean(axis=0)
        expected.append(np.sum((cdf - (truth[j] <= grid)) ** 2) * step)
    np.testing.assert_allclose(crps_ensemble(samples, truth), expected, atol=5e-3)


def test_crps_of_a_single_imputation_is_mae_and_coverage_needs_samples(paired):
    truth, pred, target = paired
    values = score(evaluation(truth, pred, target), ["crps", "mae", "coverage_90"], 0)
    assert values["crps"] == pytest.approx(values["mae"])
    assert np.isnan(values["coverage_90"])


def test_coverage_counts_truths_inside_the_sample_interval():
    truth = np.array([[0, 5, 10, 2]])
    samples = np.stack([np.array([[k, k, k, 2]]) for k in range(11)])  # targets 0..10 uniform; last constant 2
    target = np.ones_like(truth, dtype=bool)
    value = score(evaluation(truth, samples.mean(axis=0), target, samples), ["coverage_90"], 0)["coverage_90"]
    assert value == pytest.approx(2 / 4)  # 5 and 2 inside [0.5, 9.5] and [2, 2]; 0 and 10 outside


def test_every_imputation_metric_points_the_right_way():
    rng = np.random.default_rng(5)
    truth = rng.poisson(rng.gamma(2.0, 1.5, size=(60, 1)) * np.ones((1, 30)))
    types = np.repeat([0, 1, 2], 20)
    data = CountData(counts=truth, conditions={"type": types}, vocabularies={"type": ("a", "b", "c")})
    target = rng.random(truth.shape) < 0.5
    close = np.where(target, np.maximum(truth + rng.integers(-1, 2, truth.shape), 0), truth)
    far = np.where(target, rng.poisson(6.0, truth.shape), truth)
    names = [
        n
        for n in REGISTRY.metrics.names()
        if "imputation" in REGISTRY.metrics.get(n).kinds and n not in ("coverage_90", "scfid", "log_scfid")
    ]
    good, bad = (score(Evaluation("imputation", data, p, data, target), names, 0) for p in (close, far))
    for name in names:
        spec = REGISTRY.metrics.get(name)
        if spec.direction == "minimize":
            assert good[name] < bad[name], name
        elif spec.direction == "maximize":
            assert good[name] > bad[name], name
        else:
            assert abs(good[name] - spec.target) < abs(bad[name] - spec.target), name
