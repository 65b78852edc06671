"""Schedules: endpoints, forward marginals, w = -alpha', the fi_discrete grid (SPEC sections 1-2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from countsbench.methods.countsdiff.schedules import (
    CosineSchedule,
    DiscreteFisherInformationSchedule,
    FisherInformationSchedule,
    make_schedule,
)

F64 = torch.float64
CONTINUOUS = [CosineSchedule(), FisherInformationSchedule(15.0), FisherInformationSchedule(5.0)]


@pytest.mark.parametrize("schedule", [*CONTINUOUS, DiscreteFisherInformationSchedule(15.0, 50)], ids=repr)
def test_alpha_is_normalised_and_decreasing(schedule):
    t = torch.linspace(0, 1, 51, dtype=F64)
    alpha = schedule.alpha(t)
    assert alpha[0].item() == 1.0 and alpha[-1].item() == 0.0
    assert torch.all(alpha[1:] < alpha[:-1])


@pytest.mark.parametrize("schedule", CONTINUOUS, ids=repr)
def test_weight_is_minus_alpha_derivative_numerically(schedule):
    t = torch.linspace(0.01, 0.99, 99, dtype=F64)
    h = 1e-6
    numeric = -(schedule.alpha(t + h) - schedule.alpha(t - h)) / (2 * h)
    torch.testing.assert_close(schedule.weight(t), numeric, rtol=1e-6, atol=1e-9)


def test_weights_match_the_closed_forms_and_integrate_to_one():
    t = torch.linspace(0, 1, 20001, dtype=F64)
    torch.testing.assert_close(CosineSchedule().weight(t), math.pi / 2 * torch.sin(math.pi * t), rtol=1e-9, atol=1e-12)
    fi = FisherInformationSchedule(15.0)
    raw = fi.raw_alpha(t)
    scale = (fi.raw_alpha(torch.tensor(0.0, dtype=F64)) - fi.raw_alpha(torch.tensor(1.0, dtype=F64))).item()
    torch.testing.assert_close(fi.weight(t), -2 * raw * (1 - raw) * fi.log_odds / scale, rtol=1e-9, atol=1e-12)
    for schedule in CONTINUOUS:
        assert torch.trapezoid(schedule.weight(t), t).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("schedule", [CosineSchedule(), FisherInformationSchedule()], ids=repr)
def test_forward_marginals_compose(schedule):
    """x_u ~ Bin(x0, alpha_u) then x_t | x_u ~ Bin(x_u, alpha_t / alpha_u) is Bin(x0, alpha_t) (SPEC section 1)."""
    generator = torch.Generator().manual_seed(0)
    x0, n = 20, 40_000
    u, t = 0.35, 0.55
    alpha_u, alpha_t = schedule.alpha(u).item(), schedule.alpha(t).item()
    x_u = torch.binomial(torch.full((n,), float(x0)), torch.full((n,), alpha_u), generator=generator)
    x_t = torch.binomial(x_u, torch.full((n,), alpha_t / alpha_u), generator=generator)
    observed = np.bincount(x_t.long().numpy(), minlength=x0 + 1)
    expected = stats.binom.pmf(np.arange(x0 + 1), x0, alpha_t) * n
    keep = expected > 5
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3


def test_fi_discrete_grid_has_k_plus_one_points_and_the_blackout_weights():
    K = 1000
    schedule = DiscreteFisherInformationSchedule(15.0, K)
    assert schedule.alphas.dtype == F64 and schedule.alphas.shape == (K + 1,)
    # independent float64 computation of W_k = alpha_k (tau_k - tau_{k-1}) K on the same grid, k < K
    L = math.log(math.exp(-15) / (1 - math.exp(-15)))
    raw = 1 / (1 + np.exp(-(2 * np.arange(K + 1) / K - 1) * L))
    alpha = (raw - raw[-1]) / (raw[0] - raw[-1])
    tau = -np.log(alpha[:-1])
    expected = alpha[1:K] * (tau[1:] - tau[:-1]) * K
    np.testing.assert_allclose(schedule.weights[1:K].numpy(), expected, rtol=1e-9)
    assert schedule.weights[K].item() == 0.0  # the limit alpha ln alpha -> 0, no NaN, no index error
    assert schedule.weight(1.0).item() == 0.0 and schedule.alpha(1.0).item() == 0.0
    assert (schedule.weights[1:].sum() / K).item() == pytest.approx(1.0, abs=0.01)


def test_fi_discrete_training_draws_k_in_1_to_K():
    schedule = DiscreteFisherInformationSchedule(15.0, 5)
    times = schedule.training_times(5000, torch.Generator().manual_seed(0))
    k = torch.round(times.t * 5).long()
    assert set(k.tolist()) == {1, 2, 3, 4, 5}
    torch.testing.assert_close(times.alpha, schedule.alphas[k])
    torch.testing.assert_close(times.weight, schedule.weights[k])
    assert torch.isfinite(times.weight).all()


@pytest.mark.parametrize("spacing", ["time", "alpha"])
def test_fi_discrete_sub_grid_uses_grid_values(spacing):
    schedule = DiscreteFisherInformationSchedule(15.0, 1000)
    full = schedule.sampling_grid(1000, spacing)
    np.testing.assert_array_equal(full.alpha, schedule.alphas.numpy()[::-1])
    grid = schedule.sampling_grid(20, spacing)
    k = np.rint(grid.t * 1000).astype(int)
    assert k[0] == 1000 and k[-1] == 0 and np.all(np.diff(k) < 0) and len(k) == 21
    np.testing.assert_array_equal(grid.alpha, schedule.alphas.numpy()[k])
    with pytest.raises(ValueError):
        schedule.sampling_grid(1001)


def test_alpha_spacing_is_uniform_in_alpha():
    for schedule in CONTINUOUS:
        grid = schedule.sampling_grid(10, "alpha")
        np.testing.assert_allclose(grid.alpha, np.linspace(0, 1, 11), atol=1e-9)
        assert grid.t[0] == 1.0 and grid.t[-1] == 0.0 and np.all(np.diff(grid.t) < 0)
    fi = make_schedule("fi_discrete").sampling_grid(10, "alpha")
    np.testing.assert_allclose(fi.alpha, np.linspace(0, 1, 11), atol=0.01)


def test_unknown_schedule_is_an_error():
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("linear")
