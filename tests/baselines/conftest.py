"""Fixtures of the imputation-baseline tests: a small correlated dataset with a strong signal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from countsbench import CountData
from countsbench.tasks.masks import mcar_mask


@pytest.fixture(autouse=True)
def baselines_on_one_thread(one_thread):
    """Every baseline test: the networks are tiny (the scIDPMs learning test took over 4x longer with
    2 threads on a busy 2-core machine)."""


@dataclass(frozen=True)
class CorrelatedSplits:
    train: CountData
    valid: CountData
    test: CountData
    target: np.ndarray


@pytest.fixture(scope="session")
def correlated() -> CorrelatedSplits:
    """Poisson counts with a rank-2 log-mean (strong gene-gene correlation): 240/40/120 cells x 20
    genes. As in scRNA data, 30% of the training entries are not valid measurements (zeros, valid
    mask False); 30% of the test entries are hidden at random. A cell's observed genes predict its
    hidden ones."""
    rng = np.random.default_rng(0)
    n, d = 400, 20
    loadings = rng.normal(0.0, 0.8, size=(2, d))
    log_mean = 1.5 + rng.normal(size=(n, 2)) @ loadings
    counts = rng.poisson(np.exp(np.clip(log_mean, -3.0, 3.5)))
    train_valid = (rng.random(counts.shape) > 0.3)[:240]
    train = CountData(np.where(train_valid, counts[:240], 0), valid=train_valid)
    valid, test = CountData(counts[240:280]), CountData(counts[280:])
    return CorrelatedSplits(train, valid, test, mcar_mask(np.ones((120, d), dtype=bool), 0.3, seed=1))
