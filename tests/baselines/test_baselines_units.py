"""Unit tests of the pieces the imputation baselines are built from."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from countsbench import CountData, RunContext
from countsbench.config import ConfigError
from countsbench.methods.forest_diffusion import ForestDiffusionMethod
from countsbench.methods.gain import GainImputation
from countsbench.methods.hivae import PoissonLikelihood
from countsbench.methods.imputation_output import finish_imputation
from countsbench.methods.magic import MagicImputation, parse_grid
from countsbench.methods.scidpm.schedule import QuadraticSchedule, strided_step_coefficients

VOCAB = {"type": ("a", "b")}


def test_finish_imputation_clamps_rounds_and_keeps_observed():
    data = CountData(np.array([[3, 0], [0, 7]]))
    target = np.array([[False, True], [True, False]])
    estimates = np.array([[99.0, 2.5], [-4.0, 99.0]])
    np.testing.assert_array_equal(finish_imputation(data, target, estimates), [[3, 3], [0, 7]])
    stacked = finish_imputation(data, target, np.stack([estimates, estimates + 1]))
    np.testing.assert_array_equal(stacked, [[[3, 3], [0, 7]], [[3, 4], [0, 7]]])
    with pytest.raises(FloatingPointError):
        finish_imputation(data, target, np.full((2, 2), np.nan))


def test_full_grid_with_eta_one_is_the_ddpm_ancestral_step():
    schedule = QuadraticSchedule(50, 1e-4, 0.5)
    alpha_bar = schedule.alpha_bar
    assert schedule.sampling_grid(50) == list(range(49, -1, -1))
    grid = schedule.sampling_grid(7)
    assert grid[0] == 49 and grid[-1] == 0 and len(grid) == 7
    for t in (1, 10, 49):
        beta = 1 - alpha_bar[t] / alpha_bar[t - 1]
        c_x, c_eps, sigma = strided_step_coefficients(alpha_bar[t], alpha_bar[t - 1], eta=1.0)
        assert c_x == pytest.approx(1 / np.sqrt(1 - beta), rel=1e-9)
        assert c_eps == pytest.approx(-beta / (np.sqrt(1 - beta) * np.sqrt(1 - alpha_bar[t])), rel=1e-6)
        assert sigma == pytest.approx(np.sqrt((1 - alpha_bar[t - 1]) / (1 - alpha_bar[t]) * beta), rel=1e-9)
    assert strided_step_coefficients(alpha_bar[10], alpha_bar[5], eta=0.0)[2] == 0.0


def test_magic_library_size_uses_observed_entries_and_corrects_for_hidden_share():
    method = MagicImputation()
    method.gene_share, method.rescale = np.array([0.5, 0.25, 0.25]), 8.0
    counts = np.array([[4.0, 2.0, 0.0], [0.0, 0.0, 0.0]])  # third entry of row 0 hidden; row 1 all hidden
    target = np.array([[False, False, True], [True, True, True]])
    np.testing.assert_allclose(method.query_libraries(counts, target), [6.0 / 0.75, 8.0])
    with pytest.raises(ConfigError):
        parse_grid("15,abc")


def test_poisson_likelihood_is_the_poisson_log_pmf_of_x_plus_one():
    likelihood = PoissonLikelihood(np.array([[0.0, 3.0]]), np.ones((1, 2), dtype=bool))
    params = torch.tensor([[[0.3, 2.0]]])
    target = torch.as_tensor(likelihood.target(np.array([[0.0, 3.0]])), dtype=torch.float32)
    rate = np.log1p(np.exp([0.3, 2.0]))
    expected = stats.poisson.logpmf([1, 4], rate)
    np.testing.assert_allclose(likelihood.log_prob(params, target)[0].numpy(), expected, rtol=1e-5)


def test_gain_handles_fully_missing_rows():
    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, size=(40, 5))
    valid = np.ones_like(counts, dtype=bool)
    valid[0] = False  # a training cell with no valid entry
    counts[0] = 0
    method = GainImputation(iterations=20, batch_size=16)
    method.fit(CountData(counts, valid=valid), None, RunContext(seed=0))
    test = CountData(rng.poisson(3.0, size=(4, 5)))
    target = np.zeros((4, 5), dtype=bool)
    target[1] = True  # a query cell with every entry hidden
    out = method.impute(test.with_hidden(target), target, RunContext(seed=0))
    assert out.dtype == np.int64 and out.min() >= 0
    np.testing.assert_array_equal(out[~target], test.dense()[~target])


def forest(**overrides) -> ForestDiffusionMethod:
    settings = {"n_t": 10, "duplicate_K": 1, "n_estimators": 3} | overrides
    return ForestDiffusionMethod(**settings)


def test_forest_diffusion_quick_budget_refuses_wide_tasks_with_the_cost():
    valid = np.ones((10, 60), dtype=bool)
    valid[0, 0] = False  # with missing entries: one model per feature and noise level
    data = CountData(np.ones((10, 60), dtype=np.int64), valid=valid)
    with pytest.raises(ConfigError, match=r"600 XGBoost fits.*hours.*--profile paper"):
        forest(feature_budget=50).fit(data, None, RunContext())


def test_forest_diffusion_integer_columns_and_aligned_covariates():
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, size=(30, 3))
    valid = rng.random((30, 3)) > 0.2
    valid[4] = False  # an all-missing row: dropped together with its covariates
    conditions = {"type": np.arange(30) % 2}
    train = CountData(np.where(valid, counts, 0), valid=valid, conditions=conditions, vocabularies=VOCAB)
    method = forest()
    method.fit(train, None, RunContext(seed=0))
    assert method.model.int_indexes == [0, 1, 2]  # the real keyword, not the research code's int_indices
    assert method.model.X1.shape[0] == method.model.X_covs.shape[0] == 29


def test_forest_diffusion_generates_integer_counts():
    counts = np.random.default_rng(0).poisson(2.0, size=(50, 3))
    method = forest()
    method.fit(CountData(counts), None, RunContext(seed=0))
    samples = method.sample(20, None, RunContext(seed=0))
    assert samples.shape == (20, 3) and samples.dtype == np.int64 and samples.min() >= 0
    np.testing.assert_array_equal(samples, method.sample(20, None, RunContext(seed=0)))
