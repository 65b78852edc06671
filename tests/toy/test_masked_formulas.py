"""MDLM's loss weight and the shared unmasking/re-masking probabilities against their formulas (SPEC section 7)."""

from __future__ import annotations

import pytest
import torch

from countsbench.methods.diffusion.transitions import birth_probability, max_attrition
from countsbench.methods.diffusion_baselines.masking_schedules import keep_probability, loss_weight


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_loss_weight_is_minus_alpha_prime_over_one_minus_alpha(schedule: str) -> None:
    t = torch.tensor([0.002, 0.1, 0.37, 0.8, 1.0], dtype=torch.float64)
    h = 1e-6
    derivative = (keep_probability(schedule, t + h) - keep_probability(schedule, t - h)) / (2 * h)
    expected = -derivative / (1 - keep_probability(schedule, t))
    assert torch.allclose(loss_weight(schedule, t), expected, rtol=1e-5)
    # t is clamped to [1e-3, 1] for the weight: linear gives 1 / 1e-3 at t = 0
    assert loss_weight("linear", torch.tensor([0.0])).item() == pytest.approx(1000.0)


def test_schedules_go_from_clean_to_masked() -> None:
    for schedule in ("linear", "cosine"):
        assert keep_probability(schedule, 0.0) == pytest.approx(1.0)
        assert keep_probability(schedule, 1.0) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("eta", [0.0, 0.02, 1.0])
def test_unmasking_keeps_the_forward_marginal(eta: float) -> None:
    for t, s in [(1.0, 0.95), (0.6, 0.5), (0.05, 0.0)]:
        alpha_t, alpha_s = 1 - t, 1 - s
        sigma = eta * max_attrition(alpha_t, alpha_s)  # ReMDM-rescale
        assert sigma == pytest.approx(eta * min(1.0, (1 - alpha_s) / alpha_t) if alpha_t > 0 else eta)
        p = birth_probability(alpha_t, alpha_s, sigma)
        assert p == pytest.approx((alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t))
        assert 0.0 <= p <= 1.0
        # P(unmasked at s) = alpha_t (1 - sigma) + (1 - alpha_t) p = alpha_s
        assert alpha_t * (1 - sigma) + (1 - alpha_t) * p == pytest.approx(alpha_s)
    assert birth_probability(0.4, 1.0, 0.5 * max_attrition(0.4, 1.0)) == pytest.approx(1.0)
    # at alpha_t = 0 nothing is unmasked yet, so sigma has no effect: every token decodes with prob. alpha_s
    assert birth_probability(0.0, 0.1, 0.5 * max_attrition(0.0, 0.1)) == pytest.approx(0.1)
