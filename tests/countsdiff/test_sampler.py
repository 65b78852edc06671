"""Reverse step, attrition, random rounding and guidance (SPEC section 4; paper Prop. 3.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from countsbench.methods.countsdiff.attrition import Attrition
from countsbench.methods.countsdiff.rates import RateModel
from countsbench.methods.countsdiff.rounding import random_round
from countsbench.methods.countsdiff.sampler import repaint_windows, reverse_step
from countsbench.methods.countsdiff.schedules import CosineSchedule
from countsbench.methods.diffusion.guidance import guided_rates
from countsbench.methods.diffusion.transitions import max_attrition

X0, N_DRAWS = 15, 30_000


def chi_square_p(samples: np.ndarray, n: int, p: float) -> float:
    """Goodness of fit of integer samples to Binomial(n, p), pooling cells with expected count < 5."""
    observed = np.bincount(samples.astype(np.int64), minlength=n + 1)[: n + 1]
    expected = stats.binom.pmf(np.arange(n + 1), n, p) * len(samples)
    keep = expected >= 5
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] < 5:  # merge a small pooled cell into the largest one
        obs, exp = obs[:-1], exp[:-1]
        obs[np.argmax(exp)] += observed[~keep].sum()
        exp[np.argmax(exp)] += expected[~keep].sum()
    chi2 = ((obs - exp) ** 2 / exp).sum()
    return float(stats.chi2.sf(chi2, len(obs) - 1))


def reverse_with_true_births(t: float, s: float, sigma_of, seed: int, step=reverse_step) -> tuple[np.ndarray, float]:
    schedule = CosineSchedule()
    alpha_t, alpha_s = schedule.alpha(t).item(), schedule.alpha(s).item()
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.full((N_DRAWS,), float(X0))
    x_t = torch.binomial(x0, torch.full_like(x0, alpha_t), generator=generator)
    sigma = sigma_of(alpha_t, alpha_s)
    x_s = step(x_t, x0 - x_t, alpha_t, alpha_s, sigma, generator)
    return x_s.numpy(), alpha_s


CASES = [(0.9, 0.7), (0.5, 0.45), (0.3, 0.05), (0.05, 0.0), (1.0, 0.8)]
SIGMAS = {
    "none": Attrition("none"),
    "max": Attrition("max"),
    "capped0.1": Attrition("capped", 0.1),
    "rescaled0.5": Attrition("rescaled", 0.5),
}


@pytest.mark.parametrize(("t", "s"), CASES)
@pytest.mark.parametrize("attrition", list(SIGMAS))
def test_reverse_step_with_true_births_keeps_binomial_marginals(t, s, attrition):
    seed = 10 * CASES.index((t, s)) + list(SIGMAS).index(attrition)
    x_s, alpha_s = reverse_with_true_births(t, s, SIGMAS[attrition], seed=seed)
    if alpha_s == 1.0:
        assert np.all(x_s == X0)
    else:
        assert chi_square_p(x_s, X0, alpha_s) > 1e-4


def test_the_marginal_test_detects_a_wrong_birth_probability():
    """Negative control: forgetting the attrition in beta must fail the same goodness-of-fit test."""

    def wrong_step(x, r, alpha_t, alpha_s, sigma, generator):
        births = torch.binomial(r, torch.full_like(r, (alpha_s - alpha_t) / (1 - alpha_t)), generator=generator)
        return x + births - torch.binomial(x, torch.full_like(x, sigma), generator=generator)

    x_s, alpha_s = reverse_with_true_births(0.5, 0.45, SIGMAS["max"], seed=1, step=wrong_step)
    assert chi_square_p(x_s, X0, alpha_s) < 1e-6


def test_attrition_stays_in_its_valid_range_and_constants_are_rejected():
    schedule = CosineSchedule()
    grid = schedule.sampling_grid(50)
    for attrition in SIGMAS.values():
        for alpha_t, alpha_s in zip(grid.alpha[:-1], grid.alpha[1:], strict=True):
            sigma = attrition(alpha_t, alpha_s)
            assert 0.0 <= sigma <= max_attrition(alpha_t, alpha_s)
            beta = (alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t)
            assert -1e-12 <= beta <= 1 + 1e-12
    with pytest.raises(ValueError, match="constant"):
        Attrition("constant", 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Attrition("rescaled", 1.5)


def test_random_rounding_is_unbiased():
    r = torch.tensor([0.0, 0.03, 0.5, 0.97, 1.0, 2.25, 7.8])
    n = 200_000
    rounded = random_round(r.repeat(n, 1), torch.Generator().manual_seed(0))
    mean = rounded.mean(0)
    fraction = r - r.floor()
    standard_error = torch.sqrt(fraction * (1 - fraction) / n).clamp_min(1e-12)
    assert torch.all((mean - r).abs() <= 5 * standard_error + 1e-9)
    assert torch.all((rounded == r.floor()) | (rounded == r.floor() + 1))


def test_guidance_endpoints_and_no_nan_on_underflow():
    conditional = torch.tensor([0.5, 3.0, 10.0])
    unconditional = torch.tensor([2.0, 1.0, 4.0])
    torch.testing.assert_close(guided_rates(conditional, unconditional, 0.0), unconditional)
    torch.testing.assert_close(guided_rates(conditional, unconditional, 1.0), conditional)
    torch.testing.assert_close(guided_rates(conditional, unconditional, 0.5), (conditional * unconditional).sqrt())
    under = guided_rates(torch.tensor([0.0, 1e-30, 2.0]), torch.tensor([0.0, 3.0, 0.0]), 4.0)
    assert torch.isfinite(under).all() and (under >= 0).all()


class CountingDenoiser(torch.nn.Module):
    """Unit rates 1 + 2 * keep (tells the conditional half from the unconditional one), counts calls; the
    scaled head's factor 1 - alpha."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def unit_rates(self, x, t, alpha, codes, keep, valid=None):
        self.calls.append(x.shape[0])
        assert alpha.dtype == torch.float64  # 1 - alpha keeps its precision near alpha = 1
        return (1.0 + 2.0 * keep.float())[:, None].expand_as(x)

    def rate_scale(self, alpha):
        return (1.0 - alpha).float()[:, None]


@pytest.mark.parametrize(("w", "expected", "batch"), [(None, 3.0, 4), (0.0, 1.0, 4), (1.0, 3.0, 4), (2.0, 9.0, 8)])
def test_guidance_runs_both_halves_in_one_forward_and_w1_in_one_half(w, expected, batch):
    """w = 0 and w = 1 cost one forward of the batch; any other w one forward of both halves together."""
    denoiser = CountingDenoiser()
    rates = RateModel(denoiser, torch.zeros(4, 1, dtype=torch.long), None, w)
    out = rates(torch.zeros(4, 3), 0.5, 0.75)
    assert denoiser.calls == [batch]
    torch.testing.assert_close(out, torch.full((4, 3), 0.25 * expected))


def test_repaint_windows():
    assert [w[:2] for w in repaint_windows(4, 1, 0)] == [(0, 4)]
    assert list(repaint_windows(4, 2, 2)) == [(0, 2, 0), (0, 2, 1), (2, 4, 0), (2, 4, 1)]
    with pytest.raises(ValueError, match="jump"):
        list(repaint_windows(4, 2, 4))  # would restart from zeros at every repeat


def test_bounded_data_never_exceeds_the_maximum():
    generator = torch.Generator().manual_seed(0)
    x = torch.tensor([[14.0, 16.0, 0.0]]).repeat(1000, 1)
    for tau_leaping in (False, True):
        out = reverse_step(x, torch.full_like(x, 9.0), 0.5, 0.9, 0.0, generator, max_value=16, tau_leaping=tau_leaping)
        assert out.max() <= 16 and out.min() >= 0
