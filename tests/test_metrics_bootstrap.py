"""Bootstrap standard errors: a case with a known answer, and the naming the leaderboard reads."""

import numpy as np
import pytest

from countsbench import CountData
from countsbench.evaluation import Evaluation, bootstrap_standard_errors, score


def one_target_per_cell(errors):
    truth = np.stack([10 + np.arange(len(errors)) % 7, np.full(len(errors), 10)], axis=1)
    prediction = truth + np.stack([errors, np.zeros_like(errors)], axis=1)
    target = np.zeros_like(truth, dtype=bool)
    target[:, 0] = True
    data = CountData(counts=truth)
    return Evaluation("imputation", data, prediction, data, target_mask=target)


def test_bootstrap_se_of_the_bias_is_the_standard_error_of_a_mean():
    errors = np.random.default_rng(0).integers(-5, 6, size=200)
    n_resamples = 2000
    se = bootstrap_standard_errors(one_target_per_cell(errors), ["bias"], n_resamples)["bias/bootstrap_se"]
    expected = errors.std() / np.sqrt(errors.size)  # the bootstrap SE of a mean of n iid values
    # an SE estimated from R replicates has relative sd about 1/sqrt(2(R-1)): 4 of them is 6%
    assert se == pytest.approx(expected, rel=4 / np.sqrt(2 * (n_resamples - 1)))


def test_score_adds_bootstrap_se_per_value_and_none_when_asked_not_to():
    ev = one_target_per_cell(np.arange(-3, 4).repeat(5))
    values = score(ev, ["rmse", "mmd"], n_bootstrap=10)
    assert set(values) == {"rmse", "mmd", "rmse/bootstrap_se", "mmd/bootstrap_se"}
    assert values["rmse/bootstrap_se"] > 0
    assert set(score(ev, ["rmse"], n_bootstrap=0)) == {"rmse"}


def test_bootstrap_is_fixed_by_the_metric_seed_not_by_chance():
    ev = one_target_per_cell(np.arange(-3, 4).repeat(5))
    first = score(ev, ["rmse", "sliced_wasserstein"], 10)
    again = score(one_target_per_cell(np.arange(-3, 4).repeat(5)), ["rmse", "sliced_wasserstein"], 10)
    assert first == again


def test_mmd_bootstrap_is_read_from_one_weighted_pass_of_the_parent():
    rng = np.random.default_rng(1)
    truth = rng.poisson(3.0, size=(30, 6))
    target = rng.random(truth.shape) < 0.5
    prediction = np.where(target, rng.poisson(3.0, truth.shape), truth)
    data = CountData(counts=truth)
    ev = Evaluation("imputation", data, prediction, data, target_mask=target)
    se = bootstrap_standard_errors(ev, ["mmd"], 5)["mmd/bootstrap_se"]
    from metrics.kernels import mmd2_replicates, multiplicities

    replicates = mmd2_replicates(truth, prediction, multiplicities(ev.resamples, 30))
    assert se == pytest.approx(np.std(replicates, ddof=1))
