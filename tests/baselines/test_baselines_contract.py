"""Every imputation baseline on the task's tiny sample dataset: the `Method` contract."""

from __future__ import annotations

import numpy as np
import pytest
from baseline_settings import BASELINES, TINY_CONFIGS, build

from countsbench import RunContext
from countsbench.method_state import ModelStateError
from countsbench.tasks.pbmc import pbmc_mcar


@pytest.fixture(scope="module")
def sample():
    data = pbmc_mcar().sample_dataset()
    return data, data.test.with_hidden(data.test_target), data.test_target


def fit_and_impute(name, sample, seed=0):
    data, hidden, target = sample
    method = build(name, TINY_CONFIGS[name])
    method.fit(data.train, data.valid, RunContext(seed=seed))
    return method, method.impute(hidden, target, RunContext(seed=seed))


@pytest.mark.parametrize("name", BASELINES)
def test_contract_on_sample_dataset(name, sample, tmp_path):
    data, hidden, target = sample
    method, out = fit_and_impute(name, sample)
    assert out.shape == hidden.counts.shape
    assert out.dtype == np.int64
    assert out.min() >= 0
    np.testing.assert_array_equal(out[~target], hidden.dense()[~target])
    assert out[target].max() > 0, "every target imputed as 0"

    _, again = fit_and_impute(name, sample)
    np.testing.assert_array_equal(out, again)  # a seed fixes fit and imputation

    if not method.persistable:  # refitted for every run: saving is refused, naming the method
        with pytest.raises(ModelStateError, match=name):
            method.save(tmp_path / name)
        return
    method.save(tmp_path / name)
    assert not list((tmp_path / name).glob("*.pkl"))  # JSON and arrays only (countsbench.method_state)
    loaded = type(method).load(tmp_path / name)
    assert isinstance(loaded, type(method))
    np.testing.assert_array_equal(loaded.impute(hidden, target, RunContext(seed=0)), out)


@pytest.mark.parametrize("name", ["scidpm", "forest_diffusion", "hivae_poisson"])
def test_multiple_imputation_returns_k_integer_draws(name, sample):
    data, hidden, target = sample
    method = build(name, TINY_CONFIGS[name])
    method.fit(data.train, data.valid, RunContext(seed=0))
    out = method.impute(hidden, target, RunContext(seed=0), n_samples=3)
    assert out.shape == (3, *hidden.counts.shape) and out.dtype == np.int64 and out.min() >= 0
    np.testing.assert_array_equal(out[:, ~target], np.broadcast_to(hidden.dense()[~target], (3, (~target).sum())))
    assert not np.array_equal(out[0], out[1]), "the K imputations are identical"
