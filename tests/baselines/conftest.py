"""Shared pieces of the imputation-baseline tests: tiny configurations and a correlated dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from countsbench import CountData
from countsbench.registry import REGISTRY
from tasks.masks import mcar_mask

#: Settings small enough for the contract tests on the task's tiny sample dataset (seconds each).
TINY_CONFIGS = {
    "magic": {"knn_grid": "5,10"},
    "gain": {"iterations": 50},
    "hivae_poisson": {"epochs": 5},
    "hivae_gaussian": {"epochs": 5},
    "scidpm": {
        "epochs": 2,
        "channels": 8,
        "layers": 1,
        "heads": 2,
        "gene_dim": 4,
        "step_dim": 16,
        "dropout": 0.0,
        "diffusion_steps": 50,
        "sample_steps": 5,
    },
    "forest_diffusion": {"n_t": 10, "duplicate_K": 2, "n_estimators": 5, "feature_budget": None},
}

#: Settings that learn the correlated dataset below (each method in well under a minute on 2 cores).
LEARNING_CONFIGS = {
    "magic": {"knn_grid": "5,15"},
    "gain": {"iterations": 1500},
    "hivae_poisson": {"epochs": 150, "batch_size": 64},
    "hivae_gaussian": {"epochs": 150, "batch_size": 64},
    "scidpm": {
        "epochs": 25,
        "channels": 16,
        "layers": 1,
        "heads": 2,
        "gene_dim": 8,
        "step_dim": 32,
        "dropout": 0.0,
        "diffusion_steps": 100,
        "sample_steps": 20,
    },
    "forest_diffusion": {"n_t": 10, "duplicate_K": 3, "n_estimators": 20, "feature_budget": None},
}

BASELINES = tuple(TINY_CONFIGS)


def build(name: str, config: dict):
    return REGISTRY.methods.get(name).cls(**config)


@dataclass(frozen=True)
class CorrelatedSplits:
    train: CountData
    valid: CountData
    test: CountData
    target: np.ndarray


@pytest.fixture(scope="session")
def correlated() -> CorrelatedSplits:
    """Poisson counts with a rank-2 log-mean (strong gene-gene correlation): 300/50/100 cells x 20 genes,
    30% of the test entries hidden at random. Knowing a cell's other genes predicts the hidden ones."""
    rng = np.random.default_rng(0)
    n, d = 450, 20
    log_mean = 1.0 + rng.normal(size=(n, 2)) @ rng.normal(0.0, 0.8, size=(2, d))
    counts = rng.poisson(np.exp(np.clip(log_mean, -5, 4)))
    train, valid, test = CountData(counts[:300]), CountData(counts[300:350]), CountData(counts[350:])
    return CorrelatedSplits(train, valid, test, mcar_mask(np.ones((100, d), dtype=bool), 0.3, seed=1))
