"""Every imputation baseline on the task's tiny sample dataset: the `Method` contract."""

from __future__ import annotations

import numpy as np
import pytest

from countsbench import RunContext
from countsbench.method import Method
from tasks.pbmc import pbmc_mcar
from tests.baselines.conftest import BASELINES, TINY_CONFIGS, build


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

    method.save(tmp_path / name)
    loaded = Method.load(tmp_path / name)
    assert isinstance(loaded, type(method))
    np.testing.assert_array_equal(loaded.impute(hidden, target, RunContext(seed=0)), out)
