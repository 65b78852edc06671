"""Loss, EMA, trainer reproducibility and resumption, and learning a 1-D Poisson mixture (SPEC section 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.countsdiff import CountsDiff
from countsbench.methods.countsdiff.denoiser import Denoiser
from countsbench.methods.countsdiff.loss import BinomialDeathLoss, poisson_rate_loss
from countsbench.methods.countsdiff.networks import NetworkConfig
from countsbench.methods.countsdiff.schedules import CosineSchedule
from countsbench.methods.diffusion.ema import EMA
from countsbench.methods.diffusion.rows import TrainingRows
from countsbench.methods.diffusion.training import Trainer, TrainingConfig


def test_loss_is_minimised_by_the_conditional_mean():
    """For remaining births ~ Poisson(lam) given x_t, the best constant rate is E[x0 - x_t | x_t] = lam."""
    generator = torch.Generator().manual_seed(0)
    means = torch.tensor([0.3, 2.0, 11.0])
    remaining = torch.poisson(means.repeat(20_000, 1), generator=generator)
    log_rate = torch.zeros(3, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_rate], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = poisson_rate_loss(log_rate.exp().expand_as(remaining), remaining, torch.full((20_000,), 0.7))
        loss.backward()
        return loss

    optimiser.step(closure)
    torch.testing.assert_close(log_rate.exp().detach(), remaining.mean(0), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(remaining.mean(0), means * 1.2)  # the optimum is the sample mean, not a shifted value


def test_loss_ignores_invalid_entries():
    rate, remaining = torch.tensor([[1.0, 5.0]]), torch.tensor([[1.0, 0.0]])
    valid = torch.tensor([[True, False]])
    only_first = poisson_rate_loss(rate[:, :1], remaining[:, :1], torch.ones(1))
    torch.testing.assert_close(poisson_rate_loss(rate, remaining, torch.ones(1), valid), only_first)


def test_ema_is_updated_after_the_optimiser_step():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.9999)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)  # the optimiser step
    ema.update(model)
    # first update: decay = min(0.9999, 1/10) = 0.1, so the average moves 90% towards the new weights
    torch.testing.assert_close(ema.model.weight, 0.1 * before + 0.9 * model.weight.detach())


def tiny_vectors(n: int = 64, d: int = 3, seed: int = 0) -> CountData:
    rng = np.random.default_rng(seed)
    return CountData(counts=rng.poisson(3.0, size=(n, d)))


def make_trainer(steps: int, checkpoint=None, seed: int = 0) -> Trainer:
    torch.manual_seed(0)
    denoiser = Denoiser(NetworkConfig("mlp", (3,), (), mlp_hidden=16, mlp_layers=2, time_dim=16))
    config = TrainingConfig(steps=steps, batch_size=16, lr=1e-3, warmup_steps=5, checkpoint_every=7)
    return Trainer(
        denoiser, BinomialDeathLoss(CosineSchedule()), config, RunContext(seed=seed), CountsDiff.streams, checkpoint
    )


def test_training_is_reproducible_and_resumes_exactly(tmp_path):
    rows = TrainingRows(tiny_vectors(), "cpu")
    straight = make_trainer(20)
    straight.fit(rows)
    again = make_trainer(20)
    again.fit(rows)
    checkpoint = tmp_path / "ckpt.pt"
    make_trainer(14, checkpoint).fit(rows)  # "interrupted" after 14 steps (checkpointed at 7 and 14)
    resumed = make_trainer(20, checkpoint)
    resumed.fit(rows)
    assert resumed.step == 20 and len(resumed.losses) == 20
    for a, b, c in zip(
        straight.ema.model.parameters(), again.ema.model.parameters(), resumed.ema.model.parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(a, c, rtol=0, atol=0)
    different = make_trainer(20, seed=1)
    different.fit(rows)
    assert not torch.equal(next(different.model.parameters()), next(straight.model.parameters()))


MIXTURE = ((0.5, 2.0), (0.5, 15.0))


def mixture_pmf(k: np.ndarray) -> np.ndarray:
    return sum(w * stats.poisson.pmf(k, lam) for w, lam in MIXTURE)


def total_variation(samples: np.ndarray, pmf: np.ndarray) -> float:
    empirical = np.bincount(samples, minlength=len(pmf))
    tail = empirical[len(pmf) :].sum() / len(samples)
    return 0.5 * (np.abs(empirical[: len(pmf)] / len(samples) - pmf).sum() + tail + max(0.0, 1 - pmf.sum()))


@pytest.mark.slow
def test_learns_a_one_dimensional_poisson_mixture(one_thread):
    """Train on 0.5 Poisson(2) + 0.5 Poisson(15) and test the samples' distribution.

    Tolerance from the sample size: with n = 4000 draws over about 30 occupied values, the expected total
    variation of a PERFECT sampler is about sqrt(30 / (2 pi n)) = 0.035; we allow 0.08, while a single
    Poisson with the same mean (the failure mode of a collapsed model) is at 0.33.
    """
    rng = np.random.default_rng(0)
    n_train = 4000
    lam = np.where(rng.random(n_train) < 0.5, MIXTURE[0][1], MIXTURE[1][1])
    train = CountData(counts=rng.poisson(lam)[:, None])
    method = CountsDiff(
        network="mlp",
        mlp_hidden=64,
        steps=1500,
        batch_size=256,
        lr=3e-3,
        warmup_steps=20,
        ema_decay=0.99,
        n_steps=100,
        attrition="none",
        guidance=None,
    )
    ctx = RunContext(seed=0)
    method.fit(train, None, ctx)
    samples = method.sample(4000, None, ctx)[:, 0]
    pmf = mixture_pmf(np.arange(60))
    assert total_variation(samples, pmf) < 0.08
    low_share = sum(w * stats.poisson.cdf(7, lam) for w, lam in MIXTURE)
    assert np.mean(samples < 8) == pytest.approx(low_share, abs=0.04)
    true_var = sum(w * (lam + lam**2) for w, lam in MIXTURE) - sum(w * lam for w, lam in MIXTURE) ** 2
    assert 0.8 < samples.var() / true_var < 1.25
    # the same test rejects a collapsed model (one Poisson with the mixture's mean)
    collapsed = np.random.default_rng(1).poisson(8.5, 4000)
    assert total_variation(collapsed, pmf) > 0.2
