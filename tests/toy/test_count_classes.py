"""Per-feature count classes of the masked-diffusion head: against a per-feature reference, the draws'
frequencies, guidance beyond w = 1, and a learned network that must match the data's marginals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.diffusion_baselines import MDLM
from countsbench.methods.diffusion_baselines.count_classes import CountClasses
from countsbench.task import TaskInfo

MAX_COUNTS = [0, 1, 2, 5, 3, 17, 1]  # blocks of width 2, 4, 8 and 32, one of them holding 3 features


def flat_logits(classes: CountClasses, batch: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, classes.n_outputs, generator=torch.Generator().manual_seed(seed))


def reference_log_probs(classes: CountClasses, flat: torch.Tensor) -> list[torch.Tensor]:
    """Each feature's log-probabilities over its own classes, feature by feature (no blocks)."""
    out: list[torch.Tensor] = [torch.empty(0)] * classes.n_features
    start = 0
    for block in classes.blocks:
        for i, feature in enumerate(block.features):
            logits = flat[:, start + i * block.width : start + i * block.width + block.sizes[i]]
            out[feature] = F.log_softmax(logits, dim=-1)
        start += len(block.features) * block.width
    return out


def test_blocks_cover_every_feature_once_with_power_of_two_widths() -> None:
    classes = CountClasses.per_feature(MAX_COUNTS)
    features = sorted(f for block in classes.blocks for f in block.features)
    assert features == list(range(len(MAX_COUNTS)))
    assert [block.width for block in classes.blocks] == [2, 4, 8, 32]
    assert classes.n_outputs == 3 * 2 + 2 * 4 + 8 + 32
    shared = CountClasses.shared_by_all(7, 18)
    assert len(shared.blocks) == 1 and shared.n_outputs == 7 * 18


def test_log_softmax_and_cross_entropy_match_a_per_feature_reference() -> None:
    classes = CountClasses.per_feature(MAX_COUNTS)
    flat = flat_logits(classes, batch=5)
    reference = reference_log_probs(classes, flat)
    log_probs = classes.log_softmax(flat)
    tokens = torch.tensor([[0, 1, 2, 5, 3, 17, 0]] * 5)
    for row in range(5):  # log_softmax is flat like the logits: read it back through the reference layout
        got = reference_log_probs(classes, log_probs)
        for j in range(classes.n_features):
            assert torch.allclose(got[j][row].exp().sum(), torch.tensor(1.0), atol=1e-6)
            assert torch.allclose(got[j][row], reference[j][row], atol=1e-6)
    expected = torch.stack([-reference[j][torch.arange(5), tokens[:, j]] for j in range(7)], dim=1)
    assert torch.allclose(classes.cross_entropy(flat, tokens), expected, atol=1e-6)


def test_draws_follow_the_probabilities_and_never_exceed_a_features_maximum() -> None:
    classes = CountClasses.per_feature(MAX_COUNTS)
    n = 20_000
    flat = flat_logits(classes, batch=1).repeat(n, 1)
    draws = classes.draw(classes.log_softmax(flat), torch.Generator().manual_seed(1))
    assert draws.shape == (n, 7) and draws.dtype == torch.long
    assert torch.all(draws.max(dim=0).values <= torch.tensor(MAX_COUNTS))
    reference = reference_log_probs(classes, flat[:1])
    for j, top in enumerate(MAX_COUNTS):
        p = reference[j][0].exp().numpy()
        frequency = np.bincount(draws[:, j].numpy(), minlength=top + 1) / n
        se = np.sqrt(p * (1 - p) / n)
        assert np.all(np.abs(frequency - p) <= 5 * se + 1e-12), (j, frequency, p)


def test_guidance_beyond_one_keeps_masked_classes_at_zero_probability() -> None:
    """``w log p_c + (1 - w) log p_u`` with w = 3: masked classes must stay finite and lose (no inf - inf)."""
    classes = CountClasses.per_feature(MAX_COUNTS)
    c, u = classes.log_softmax(flat_logits(classes, 4, 0)), classes.log_softmax(flat_logits(classes, 4, 1))
    mixed = classes.log_softmax(3.0 * c + (1.0 - 3.0) * u)
    assert torch.isfinite(mixed).all()
    draws = classes.draw(mixed, torch.Generator().manual_seed(0))
    assert torch.all(draws.max(dim=0).values <= torch.tensor(MAX_COUNTS))


def test_clip_uses_each_features_own_maximum() -> None:
    classes = CountClasses.per_feature([2, 9])
    assert classes.clip(torch.tensor([[5.0, 5.0], [1.0, 30.0]])).tolist() == [[2, 5], [1, 9]]
    assert CountClasses.shared_by_all(2, 4).clip(torch.tensor([[5.0, 1.0]])).tolist() == [[3, 1]]


def test_a_learned_per_feature_mdlm_matches_the_data_marginals() -> None:
    """Three Poisson features (0.5, 3, 12) learned with per-feature classes: the samples' means and variances
    agree with the training data's within 4 sampling standard errors (measured: |z| <= 1.1)."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n, m = 2000, 4000
    counts = np.stack([rng.poisson(0.5, n), rng.poisson(3.0, n), rng.poisson(12.0, n)], axis=1)
    method = MDLM(
        steps=600, batch_size=128, n_steps=20, hidden=32, warmup_steps=20, lr=3e-3, ema_decay=0.99,
        count_classes="per_feature",
    )  # fmt: skip
    method.fit(CountData(counts), None, RunContext(seed=0))
    samples = method.sample(m, None, RunContext(seed=1))
    assert np.all(samples.max(axis=0) <= counts.max(axis=0))
    mean, var = counts.mean(axis=0), counts.var(axis=0)
    fourth = ((counts - mean) ** 4).mean(axis=0)
    mean_se = np.sqrt(var * (1 / n + 1 / m))
    var_se = np.sqrt((fourth - var**2) * (1 / n + 1 / m))
    assert np.all(np.abs(samples.mean(axis=0) - mean) < 4 * mean_se), (samples.mean(axis=0), mean)
    assert np.all(np.abs(samples.var(axis=0) - var) < 4 * var_se), (samples.var(axis=0), var)


@pytest.mark.parametrize(
    ("kind", "sample_shape", "expected"),
    [("generation", (765,), "per_feature"), ("generation", (10,), None), ("imputation", (765,), None)],
)
def test_per_feature_classes_are_the_default_on_gene_vector_generation(kind, sample_shape, expected) -> None:
    info = TaskInfo("t", kind, sample_shape[0], sample_shape, ("cell_type",), None)
    assert MDLM.defaults("quick", info).get("count_classes") == expected
