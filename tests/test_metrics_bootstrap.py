"""Bootstrap standard errors: a case with a known answer, and the naming the leaderboard reads;
the replicates behind them: kept per metric, bounded for expensive metrics, paired across methods."""

import json

import numpy as np
import pytest

from countsbench import CountData
from countsbench.evaluation import (
    DEFAULT_BOOTSTRAP,
    BootstrapReplicates,
    Evaluation,
    bootstrap_rows,
    bootstrap_standard_errors,
    score,
    score_with_replicates,
)
from countsbench.registry import REGISTRY


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
    from countsbench.metrics.kernels import mmd2_replicates, multiplicities

    replicates = mmd2_replicates(truth, prediction, multiplicities(ev.resamples, 30))
    assert se == pytest.approx(np.std(replicates, ddof=1))


def test_replicates_are_kept_per_metric_with_their_count():
    ev = one_target_per_cell(np.arange(-3, 4).repeat(5))
    values, replicates = score_with_replicates(ev, ["rmse", "sliced_wasserstein", "crps"], DEFAULT_BOOTSTRAP)
    assert DEFAULT_BOOTSTRAP == 200 and replicates.n_resamples == 200 and replicates.n_cells == 35
    cap = REGISTRY.metrics.get("sliced_wasserstein").max_resamples
    assert {k: len(v) for k, v in replicates.values.items()} == {"rmse": 200, "sliced_wasserstein": cap, "crps": 200}
    assert values["rmse/bootstrap_se"] == pytest.approx(np.std(replicates.values["rmse"], ddof=1))
    # the replicates are the metric on each resample: replicate 7 by hand
    rows = ev.resamples[7]
    errors = (ev.predicted() - ev.true_dense())[rows, 0]
    assert replicates.values["rmse"][7] == pytest.approx(np.sqrt(np.mean(errors**2)))
    payload = json.loads(json.dumps(replicates.to_json(), allow_nan=False))  # as the result stores it
    assert BootstrapReplicates.from_json(payload) == replicates


def test_every_method_is_resampled_on_the_same_cells():
    """The resamples depend on the metric seed and the number of cells only, never on the method's
    output, and a shorter bootstrap is the start of a longer one (a bounded metric's replicates pair
    with the first replicates of an unbounded one)."""
    errors = np.random.default_rng(0).integers(-5, 6, size=50)
    first = one_target_per_cell(errors)
    second = one_target_per_cell(-2 * errors)
    a, b = (score_with_replicates(ev, ["mae"], 30)[1] for ev in (first, second))
    assert a.pairs_with(b) and all(np.array_equal(x, y) for x, y in zip(first.resamples, second.resamples, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(bootstrap_rows(50, 10, 0), first.resamples[:10], strict=True))
    other_seed = one_target_per_cell(errors)
    other_seed.metric_seed = 1
    assert not a.pairs_with(score_with_replicates(other_seed, ["mae"], 30)[1])
    fewer_cells = score_with_replicates(one_target_per_cell(errors[:49]), ["mae"], 30)[1]
    assert not a.pairs_with(fewer_cells)


def test_generation_has_no_bootstrap():
    data = CountData(counts=np.random.default_rng(0).poisson(2.0, size=(40, 3)))
    ev = Evaluation("generation", data, data.dense(), data)
    values, replicates = score_with_replicates(ev, ["joint_mmd"])
    assert replicates is None and set(values) == {"joint_mmd"}
