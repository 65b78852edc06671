"""scVI as a conditional generator (methods/scvi_generator.py): the sampling contract, that it learns the
per-type expression of a simulated atlas, that the posterior beats the prior there, and persistence."""

from __future__ import annotations

import numpy as np
import pytest

from countsbench import RunContext
from countsbench.methods.scvi_generator import ScviGenerator
from countsbench.runner import check_samples
from countsbench.tasks.scrna_generation import SyntheticGenerationTask, synthetic_generate

pytestmark = pytest.mark.scvi
PER_TYPE = 500


@pytest.fixture(scope="module")
def data():
    return synthetic_generate().load(None)


@pytest.fixture(scope="module")
def fitted(data):
    method = ScviGenerator(max_epochs=40, train_size=1.0)
    method.fit(data.train, data.valid, RunContext(seed=0))
    return method


def true_type_means() -> np.ndarray:
    """(types, genes) expected counts of the simulator: programme means x batch effect x E[library]."""
    simulator = SyntheticGenerationTask.simulator
    params = simulator.parameters(SyntheticGenerationTask.n_genes, np.random.default_rng(0))
    return params["type_means"] * params["batch_effects"][0] * np.exp(simulator.library_log_sd**2 / 2)


def log_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(np.log1p(estimate) - np.log1p(truth))))


def per_type_means(method: ScviGenerator, seed: int = 0) -> np.ndarray:
    codes = np.repeat(np.arange(6), PER_TYPE)
    out = method.sample(len(codes), {"cell_type": codes}, RunContext(seed=seed))
    return np.stack([out[codes == t].mean(axis=0) for t in range(6)])


def test_samples_are_counts_of_the_asked_shape_and_seeded(data, fitted):
    asked = data.test.conditions["cell_type"]
    out = check_samples(fitted.sample(len(asked), {"cell_type": asked}, RunContext(seed=1)), len(asked), 200)
    assert out.dtype == np.int64 and out.min() >= 0 and out.sum() > 0
    np.testing.assert_array_equal(out, fitted.sample(len(asked), {"cell_type": asked}, RunContext(seed=1)))
    assert not np.array_equal(out, fitted.sample(len(asked), {"cell_type": asked}, RunContext(seed=2)))
    assert fitted.n_parameters() > 0


def test_it_learns_the_per_type_means_better_than_the_global_mean(data, fitted):
    """Error of log1p means against the simulator's. A perfect sampler's error is the sampling noise of
    500 cells per type; the training split's own per-type means (about 230 cells per type) bound what a
    model fitted on them can reach; the global mean is what a sampler ignoring the type gets."""
    truth = true_type_means()
    types = data.train.conditions["cell_type"]
    train = data.train.dense()
    empirical = np.stack([train[types == t].mean(axis=0) for t in range(6)])
    generated = per_type_means(fitted)
    global_error = log_error(np.broadcast_to(train.mean(axis=0), truth.shape), truth)
    assert log_error(generated, truth) < 0.4 * global_error
    assert log_error(generated, truth) < 2.5 * log_error(empirical, truth)


def test_the_posterior_beats_the_prior_on_the_per_type_means(fitted):
    truth = true_type_means()
    fitted.latent = "prior"
    try:
        prior = per_type_means(fitted)
    finally:
        fitted.latent = "posterior"
    assert log_error(per_type_means(fitted), truth) < 0.6 * log_error(prior, truth)


def test_a_saved_model_samples_the_same_cells(tmp_path, data, fitted):
    fitted.save(tmp_path)
    loaded = ScviGenerator.load(tmp_path)
    asked = data.test.conditions["cell_type"][:50]
    np.testing.assert_array_equal(
        loaded.sample(50, {"cell_type": asked}, RunContext(seed=4)),
        fitted.sample(50, {"cell_type": asked}, RunContext(seed=4)),
    )


def test_a_run_through_the_runner_caches_the_fitted_model_and_samples_it_again(results_dir):
    from countsbench.runner import CellRequest, run_cell

    request = CellRequest("scvi_generator", "synthetic_generate", overrides={"max_epochs": 3})
    first = run_cell(request, results_dir, track=False)
    again = run_cell(request, results_dir, track=False)
    assert first["status"] == again["status"] == "ok", first["error"]
    assert (first["model_cache"]["reused"], again["model_cache"]["reused"]) == (False, True)
    assert first["metrics"] == again["metrics"]  # the same seed samples the same cells from the cached model
