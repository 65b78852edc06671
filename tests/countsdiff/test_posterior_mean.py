"""CountsDiff's MCV denoiser (`methods.countsdiff.posterior_mean`): with the exact rate of a gamma-Poisson
problem the unit rate at alpha = 1 is E[lam | y], whose (1 - p) / p multiple is E[test | y] (tolerances are
4 standard errors of a mean at the number of cells with each training value); a fitted model denoises
through the same function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from countsbench import CountData, RunContext
from countsbench.methods.countsdiff import CountsDiff
from countsbench.methods.countsdiff.posterior_mean import posterior_mean_intensity
from countsbench.tasks.denoising import mcv_split

P = 0.9
MU = np.array([0.5, 3.0])  # full-depth means of x ~ Poisson(lam), lam ~ Gamma(theta, rate theta / mu)
THETA = np.array([2.0, 1.0])


class ExactRate(torch.nn.Module):
    """The scaled head's unit rate of a model trained on y = Binomial(x, p): lam_y = p lam has the
    Gamma(theta, theta / (p mu)) prior, and x_t ~ Poisson(alpha lam_y) gives the posterior mean
    (theta + x_t) / (theta / (p mu) + alpha)."""

    rate_head = "scaled"

    def unit_rates(self, x_t, t, alpha_t, codes, keep, valid=None):
        theta, rate = torch.as_tensor(THETA), torch.as_tensor(THETA / (P * MU))
        return ((theta + x_t.double()) / (rate + alpha_t[:, None])).float()


def test_unit_rate_at_alpha_one_predicts_the_held_out_molecules():
    rng = np.random.default_rng(0)
    x = rng.poisson(rng.gamma(THETA, MU / THETA, size=(200_000, 2)))
    train, test = mcv_split(x, P, seed=1)
    denoised = posterior_mean_intensity(ExactRate(), train, None, t=0.0, alpha=1.0, device="cpu", batch_size=50_000)
    predicted = (1 - P) / P * denoised  # E[test | y] = (1 - p) / p E[lam_y | y]
    checked = 0
    for j in range(2):
        for value in np.unique(train[:, j]):
            rows = train[:, j] == value
            if rows.sum() < 2000:
                continue
            residual = test[rows, j] - predicted[rows, j]
            assert abs(residual.mean()) < 4 * residual.std() / np.sqrt(rows.sum()), (j, value)
            checked += 1
    assert checked >= 6
    raw = (1 - P) / P * train  # no denoising: the training counts are too spread out
    assert np.mean((test - predicted) ** 2) < np.mean((test - raw) ** 2)


def test_direct_head_needs_alpha_below_one():
    class Direct(ExactRate):
        rate_head = "direct"

    with pytest.raises(ValueError, match="alpha < 1"):
        posterior_mean_intensity(Direct(), np.ones((2, 2)), None, t=0.0, alpha=1.0, device="cpu")


def test_fitted_countsdiff_denoises_with_its_rate_head(one_thread):
    rng = np.random.default_rng(2)
    types = np.repeat([0, 1], 20)
    counts = rng.poisson(np.where(types[:, None] == 0, 1.0, 4.0), size=(40, 6))
    data = CountData(counts, conditions={"type": types}, vocabularies={"type": ("a", "b")})
    method = CountsDiff(network="mlp", mlp_hidden=16, steps=20, batch_size=16, warmup_steps=2)
    method.fit(data, None, RunContext(seed=0))
    out = method.denoise(data, RunContext(seed=0))
    assert out.shape == counts.shape and np.all(np.isfinite(out)) and out.min() >= 0
    direct = posterior_mean_intensity(method.model, counts, data.condition_matrix(), 0.0, 1.0, "cpu")
    np.testing.assert_allclose(out, direct, rtol=1e-6)
