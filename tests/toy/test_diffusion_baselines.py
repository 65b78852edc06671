"""Each diffusion baseline trains and samples on a tiny case; the masked loss and the DDPM posterior."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.countsdiff.networks.mlp import MLPBackbone
from countsbench.methods.diffusion.training import Randomness, TrainingBatch
from countsbench.methods.diffusion_baselines import MDLM, GaussianDDPM, ReMDM
from countsbench.methods.diffusion_baselines.ddpm_schedule import CosineDDPMSchedule, posterior
from countsbench.tasks.toy import ToyNegativeBinomialTask

TINY = {"steps": 30, "batch_size": 32, "n_steps": 8, "hidden": 8, "warmup_steps": 5, "lr": 1e-3}


@pytest.fixture(scope="module")
def toy():
    return ToyNegativeBinomialTask().sample_dataset()


@pytest.mark.parametrize(
    ("cls", "options"),
    [(GaussianDDPM, {}), (MDLM, {}), (ReMDM, {}), (MDLM, {"count_classes": "per_feature"})],
)
def test_sampler_returns_counts_and_is_seeded(cls, options, toy, tmp_path) -> None:
    torch.set_num_threads(1)
    method = cls(**TINY, **options)
    method.fit(toy.train, toy.valid, RunContext(seed=1))
    samples = method.sample(50, None, RunContext(seed=2))
    assert samples.shape == (50, 10) and samples.dtype == np.int64 and samples.min() >= 0
    assert samples.max() <= toy.train.max_count()  # x0 clipped at ln(1 + max) / tokens 0..C-1
    if options:  # per-feature classes: no feature above its own training maximum
        assert np.all(samples.max(axis=0) <= toy.train.dense().max(axis=0))
    assert np.array_equal(samples, method.sample(50, None, RunContext(seed=2)))
    method.save(tmp_path)
    again = cls.load(tmp_path).sample(50, None, RunContext(seed=2))
    assert np.array_equal(samples, again)


@pytest.mark.parametrize("cls", [GaussianDDPM, ReMDM])
def test_repaint_imputation_keeps_observed_entries(cls) -> None:
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, size=(60, 6))
    valid = rng.random((60, 6)) < 0.8
    counts[~valid] = 0
    types = {"type": rng.integers(0, 2, 60)}
    data = CountData(counts, valid=valid, conditions=types, vocabularies={"type": ("a", "b")})
    method = cls(**TINY, guidance=0.5) if cls is ReMDM else cls(**TINY)
    method.fit(data, None, RunContext(seed=0))
    target = valid & (rng.random((60, 6)) < 0.5)
    out = method.impute(data.with_hidden(target), target, RunContext(seed=0), n_samples=2)
    assert out.shape == (2, 60, 6) and out.min() >= 0
    assert np.array_equal(out[:, ~target], np.broadcast_to(counts[~target], (2, int((~target).sum()))))


def test_masked_loss_divides_by_valid_positions() -> None:
    method = MDLM(**TINY)
    method.spec, method.schedule = {"n_features": 4, "n_classes": 3}, "linear"

    class Uniform(torch.nn.Module):
        mask_id = 3

        def forward(self, tokens, t, codes, keep):
            return torch.zeros(tokens.shape[0], tokens.shape[1] * 3)

    x0 = torch.tensor([[0.0, 1.0, 2.0, 1.0]])
    valid = torch.tensor([[True, True, False, True]])
    g = torch.Generator().manual_seed(0)
    batch = TrainingBatch(x0, valid, torch.zeros(1, 0, dtype=torch.long), torch.ones(1, dtype=torch.bool))
    value = method.loss(Uniform(), batch, Randomness(times=torch.Generator(), noise=g))
    # replay the draws: t, then the mask; CE of a uniform model is ln 3 at each masked valid position
    g = torch.Generator().manual_seed(0)
    t = torch.rand(1, generator=g)
    masked = (torch.rand((1, 4), generator=g) >= 1 - t) & valid
    assert value.item() == pytest.approx((1 / t.clamp(1e-3)).item() * masked.sum().item() * np.log(3) / 3)


def test_ddpm_posterior_is_exact_and_ends_at_x0() -> None:
    abar = CosineDDPMSchedule(1000).alpha_bar
    assert abar[0] == 1.0 and abar[-1] < 1e-6 and np.all(np.diff(abar) < 0)
    c0, ct, var = posterior(abar[500], abar[400])
    beta = 1 - abar[500] / abar[400]
    assert var == pytest.approx(beta * (1 - abar[400]) / (1 - abar[500]))
    # the posterior mean of x_s is consistent with the marginals: E[x_s | x0] = sqrt(abar_s) x0
    assert c0 + ct * np.sqrt(abar[500]) == pytest.approx(np.sqrt(abar[400]))
    assert posterior(abar[10], 1.0) == pytest.approx((1.0, 0.0, 0.0))


def test_run_cell_on_toy_nb_reuses_the_fitted_model(results_dir) -> None:
    from countsbench.runner import CellRequest, run_cell

    tiny = {"steps": "5", "batch_size": "16", "hidden": "4", "sample_batch_size": "20000"}
    first = run_cell(CellRequest("mdlm", "toy_nb", overrides={**tiny, "n_steps": "2"}), results_dir, track=False)
    second = run_cell(CellRequest("mdlm", "toy_nb", overrides={**tiny, "n_steps": "3"}), results_dir, track=False)
    assert first["status"] == "ok", first["error"]
    assert second["status"] == "ok" and second["model_cache"]["reused"], second["error"]
    assert 0 <= first["metrics"]["variance_ratio_in_band"] <= 10
    assert (results_dir / "cells" / first["cell_id"] / "artifacts" / "kde_dims_0_1.png").is_file()


def test_gaussian_ddpm_on_data_wider_than_its_hidden_layers_learns_the_identity_path() -> None:
    """eps ~ x_k at high noise: without the skip a 16-wide MLP over 120 features cannot predict it, and its
    x0 estimates run to the clip (samples far too large); with it the samples keep the data's scale."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, size=(400, 120))
    data = CountData(counts)
    config = {
        **TINY,
        "hidden": 16,
        "steps": 1000,
        "batch_size": 64,
        "n_steps": 20,
        "warmup_steps": 20,
        "ema_decay": 0.99,
    }
    means = {}
    for skip in (True, False):
        method = GaussianDDPM(**config)
        if not skip:  # the backbone without the skip, as it was before
            method.build_model = lambda spec, m=method: MLPBackbone(
                spec["n_features"], spec["vocabulary_sizes"], m.hidden, m.n_layers, m.time_dim
            )
        method.fit(data, None, RunContext(seed=0))
        assert (method.model.skip is not None) is skip
        means[skip] = method.sample(400, None, RunContext(seed=1)).mean()
    # the data's mean is 2.0 (s.e. 0.007 over 48,000 entries); measured 2.33 with the skip, 3.87 without
    assert abs(means[True] - 2.0) < 0.5 < abs(means[False] - 2.0), means
    assert GaussianDDPM(**TINY).build_model({"n_features": 8, "vocabulary_sizes": []}).skip is None
