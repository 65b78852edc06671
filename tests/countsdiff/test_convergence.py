"""Properties of trained diffusion models that formulas alone cannot show (issue: the diffusion core).

On a gamma-Poisson problem the learned rate is known exactly, including near t = 0; and sampling quality
must not degrade as the number of reverse steps grows (the paper's direct head drifted: every added
low-noise step added spurious births).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.countsdiff import Blackout, CountsDiff

#: x0 ~ Poisson(Lambda), Lambda ~ Gamma(shape theta, rate theta / mu), independent dimensions.
MU = np.array([0.5, 2.0, 6.0])
THETA = np.array([2.0, 1.0, 4.0])
TRAIN = dict(network="mlp", mlp_hidden=64, steps=2500, batch_size=256, lr=3e-3, warmup_steps=50, ema_decay=0.995)


def gamma_poisson(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(rng.gamma(THETA, MU / THETA, size=(n, len(MU))))


def true_remaining(x_t: np.ndarray, alpha: float) -> np.ndarray:
    """``E[x0 - x_t | x_t] = (1 - alpha) (theta + x_t) / (theta / mu + alpha)``: given x_t the rate has the
    Gamma posterior (theta + x_t, theta / mu + alpha), and the dead mass is Poisson(Lambda (1 - alpha))."""
    return (1.0 - alpha) * (THETA + x_t) / (THETA / MU + alpha)


@pytest.fixture(scope="module")
def fitted_models():
    torch.set_num_threads(1)
    train = CountData(counts=gamma_poisson(20_000, seed=0))
    models = {}
    for name, cls, extra in (
        ("countsdiff", CountsDiff, {"attrition": "none", "guidance": None}),
        ("countsdiff_elbo", CountsDiff, {"attrition": "none", "guidance": None, "loss_weighting": "elbo"}),
        ("blackout", Blackout, {}),
        ("countsdiff_direct", CountsDiff, {"attrition": "none", "guidance": None, "rate_head": "direct"}),
    ):
        model = cls(**TRAIN, **extra)
        model.fit(train, None, RunContext(seed=0))
        models[name] = model
    return models


def predicted_remaining(model: CountsDiff, x_t: np.ndarray, t: float) -> tuple[np.ndarray, float]:
    alpha = float(model.alpha_schedule.alpha(t))
    x = torch.as_tensor(x_t, dtype=torch.float32)
    n = x.shape[0]
    with torch.no_grad():
        r = model.model(
            x,
            torch.full((n,), t),
            torch.full((n,), alpha, dtype=torch.float64),
            torch.zeros(n, 0, dtype=torch.long),
            torch.zeros(n, dtype=torch.bool),
        )
    return r.numpy(), alpha


@pytest.mark.slow
@pytest.mark.parametrize(("name", "tolerance"), [("countsdiff", 0.4), ("countsdiff_elbo", 0.1)])
@pytest.mark.parametrize("t", [0.001, 0.01, 0.1])
def test_learned_rate_matches_the_truth_near_t0(fitted_models, name, tolerance, t):
    """Relative error of the mean learned r against the exact posterior mean, over x_t drawn from the
    forward process at t (2,000 rows per dimension). Measured (seed 0): the paper's weighting leaves the
    low-noise end nearly untrained and over-predicts by up to 31% at t <= 0.01 (within 5% at t = 0.1);
    the ELBO weighting w / (1 - alpha) is within 5% everywhere. The direct head misses by orders of
    magnitude at t <= 0.01 (the truth there is at most 1e-4 x0), which this test detects."""
    x0 = gamma_poisson(2000, seed=1)
    model = fitted_models[name]
    alpha = float(model.alpha_schedule.alpha(t))
    x_t = np.random.default_rng(2).binomial(x0, alpha)
    r, _ = predicted_remaining(model, x_t, t)
    truth = true_remaining(x_t, alpha)
    relative = np.abs(r.mean(axis=0) / truth.mean(axis=0) - 1.0)
    assert np.all(relative < (0.1 if t >= 0.1 else tolerance)), (t, relative)
    direct, _ = predicted_remaining(fitted_models["countsdiff_direct"], x_t, t)
    if t <= 0.01:
        assert np.all(direct.mean(axis=0) > 10 * truth.mean(axis=0))  # the flaw the scaled head removes


def distance_to_truth(samples: np.ndarray) -> float:
    """Mean over dimensions of |mean ratio - 1| + |ln variance ratio| against the exact moments."""
    mean = MU
    variance = MU + MU**2 / THETA
    return float(np.mean(np.abs(samples.mean(0) / mean - 1.0) + np.abs(np.log(samples.var(0) / variance))))


def bootstrap_se(samples: np.ndarray, rng: np.random.Generator, n_resamples: int = 100) -> float:
    n = samples.shape[0]
    return float(np.std([distance_to_truth(samples[rng.integers(0, n, n)]) for _ in range(n_resamples)]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["countsdiff", "blackout"])
@pytest.mark.parametrize("spacing", ["time", "alpha"])
def test_quality_does_not_degrade_as_sampling_steps_grow(fitted_models, name, spacing):
    """20 -> 200 -> 1000 steps: the distance to the truth at 200 and 1000 steps is at most the distance at
    20 steps plus 3 bootstrap standard errors of the difference (4,000 samples each)."""
    model = fitted_models[name]
    rng = np.random.default_rng(0)
    distances, errors = {}, {}
    for steps in (20, 200, 1000):
        model.n_steps, model.time_spacing = steps, spacing
        samples = model.sample(4000, None, RunContext(seed=5))
        distances[steps], errors[steps] = distance_to_truth(samples), bootstrap_se(samples, rng)
    for steps in (200, 1000):
        allowed = distances[20] + 3 * np.hypot(errors[20], errors[steps])
        assert distances[steps] <= allowed, (name, spacing, distances, errors)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "tolerance"), [("countsdiff", 0.4), ("countsdiff_elbo", 0.1)])
def test_denoiser_returns_the_posterior_mean_intensity(fitted_models, name, tolerance):
    """MCV denoising (`CountsDiff.denoise`) reads the unit rate at t = 0 with x_t = x0: the exact answer is
    E[Lambda | x0] = (theta + x0) / (theta / mu + 1). Same tolerances as the rate near t = 0 above (the
    paper's weighting barely trains that end)."""
    x0 = gamma_poisson(2000, seed=3)
    denoised = fitted_models[name].denoise(CountData(counts=x0), RunContext(seed=0))
    truth = (THETA + x0) / (THETA / MU + 1.0)
    relative = np.abs(denoised.mean(axis=0) / truth.mean(axis=0) - 1.0)
    assert np.all(relative < tolerance), relative
