"""Unit tests of the pieces of the foundation-model baselines (scGPT, xTrimoGene trained from scratch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from countsbench import CountData, RunContext
from countsbench.config import ConfigError, resolve_config
from countsbench.methods.masked_values import log_normalise, training_mask
from countsbench.methods.scgpt import ScgptImputation, per_cell_bins
from countsbench.methods.xtrimogene import AutoDiscretisation, XtrimoGeneImputation, XtrimoGeneNetwork


def test_per_cell_bins_are_equal_frequency_ranks_within_each_cell():
    values = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0, 9.0], [5.0, 5.0, 0.0, 1.0, 0.0, 0.0]])
    known = torch.tensor([[True, True, True, True, True, False], [True, True, True, True, False, True]])
    bins = per_cell_bins(values, known, n_bins=5)  # non-zero bins 1..4, mask token 5
    # row 0: known non-zeros 1,2,3,4 -> quarter ranks 0, 1/4, 2/4, 3/4 -> bins 1..4; the unknown 9 is masked
    np.testing.assert_array_equal(bins[0].numpy(), [0, 1, 2, 3, 4, 5])
    # row 1: ties share a bin (both 5s have one value below them of three); unknown -> 5
    np.testing.assert_array_equal(bins[1].numpy(), [2, 2, 0, 1, 5, 0])


def test_log_normalise_uses_the_known_library_only():
    counts = torch.tensor([[2.0, 6.0, 100.0]])
    values, library = log_normalise(counts, torch.tensor([[True, True, False]]), target_sum=8.0)
    assert float(library) == 8.0
    np.testing.assert_allclose(values[0].numpy(), np.log1p([2.0, 6.0, 0.0]), rtol=1e-6)


def test_training_mask_hides_non_zeros_and_zeros_at_their_own_rates():
    n = 200_000
    counts = torch.tensor([0.0, 3.0]).repeat(n // 2)[None]
    observed = torch.ones_like(counts, dtype=torch.bool)
    observed[0, :1000] = False
    hidden = training_mask(counts, observed, 0.3, 0.03, torch.Generator().manual_seed(0))
    assert not hidden[~observed].any()
    for value, rate in ((3.0, 0.3), (0.0, 0.03)):
        cells = (counts == value) & observed
        share = float(hidden[cells].float().mean())
        assert abs(share - rate) < 4 * np.sqrt(rate * (1 - rate) / int(cells.sum()))


def test_auto_discretisation_is_a_soft_binning_with_a_mask_embedding():
    torch.manual_seed(0)
    layer = AutoDiscretisation(n_bins=7, dim=4, alpha=1.0)
    values = torch.tensor([[0.0, 1.5, 6.0]])
    weights = layer.weights(values)
    np.testing.assert_allclose(weights.sum(dim=-1).detach().numpy(), 1.0, rtol=1e-6)
    out = layer(values, torch.tensor([[True, True, False]]))
    np.testing.assert_allclose(out[0, 2].detach().numpy(), layer.mask.weight[0].detach().numpy())
    np.testing.assert_allclose(out[0, 1].detach().numpy(), (weights[0, 1] @ layer.bins.weight).detach().numpy())


def test_xtrimogene_encoder_reads_only_known_non_zero_genes():
    torch.manual_seed(0)
    net = XtrimoGeneNetwork(6, 8, 1, 2, 8, 1, 2, 1, 5, 1.0).eval()
    genes = torch.arange(6)[None]
    known = torch.tensor([[True, True, True, False, True, True]])
    values = torch.tensor([[0.0, 1.0, 2.0, 0.0, 0.0, 3.0]])
    codes = torch.zeros(1, 0, dtype=torch.long)
    base = net(values, known, codes, genes)
    # a second cell of the batch with more encoded genes pads the first: its prediction is unchanged
    batch = net(
        torch.cat([values, torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])]),
        torch.cat([known, torch.ones_like(known)]),
        torch.zeros(2, 0, dtype=torch.long),
        genes.expand(2, -1),
    )
    np.testing.assert_allclose(batch[0].detach().numpy(), base[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(batch[1], base[0])


def correlated_toy(seed: int = 0) -> tuple[CountData, CountData, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(np.exp(1.0 + rng.normal(size=(60, 1)) @ rng.normal(0, 0.7, size=(1, 6))))
    target = rng.random((20, 6)) < 0.3
    return CountData(counts[:40]), CountData(counts[40:]).with_hidden(target), target


def test_random_rounding_is_unbiased_and_nearest_is_deterministic():
    train, hidden, target = correlated_toy()
    method = ScgptImputation(steps=30, learning_rate=1e-2, embed_dim=8, layers=1, heads=2, ff_dim=16, n_bins=5)
    method.fit(train, None, RunContext(seed=0, show_progress=False))
    estimate = method.predict(hidden, target, RunContext(seed=0))
    draws = method.impute(hidden, target, RunContext(seed=0), n_samples=400).astype(np.float64)
    fraction = estimate[target] - np.floor(estimate[target])
    spread = np.sqrt(fraction * (1 - fraction) / 400) + 1e-9
    assert np.all(np.abs(draws.mean(axis=0)[target] - estimate[target]) < 5 * spread + 1e-9)
    assert np.all(np.floor(estimate[target]) <= draws[:, target].min(axis=0))
    method.rounding = "nearest"
    nearest = method.impute(hidden, target, RunContext(seed=0), n_samples=2)
    np.testing.assert_array_equal(nearest[0], nearest[1])
    np.testing.assert_array_equal(nearest[0][target], np.floor(estimate[target] + 0.5))


def test_dropouts_as_zeros_or_unknown_and_condition_tokens():
    rng = np.random.default_rng(1)
    counts = rng.poisson(2.0, size=(30, 5))
    valid = rng.random((30, 5)) > 0.2
    codes = {"type": rng.integers(0, 3, size=30)}
    train = CountData(np.where(valid, counts, 0), valid=valid, conditions=codes, vocabularies={"type": ("a", "b", "c")})
    for dropouts in ("unknown", "zero"):
        method = ScgptImputation(steps=5, embed_dim=8, layers=1, heads=2, ff_dim=8, n_bins=4, dropouts=dropouts)
        method.fit(train, None, RunContext(seed=0, show_progress=False))
        assert method.condition_keys == ("type",) and method.spec["vocabulary_sizes"] == (3,)
    off = XtrimoGeneImputation(steps=5, embed_dim=8, encoder_layers=1, decoder_dim=8, decoder_layers=1, n_bins=4)
    off.fit(train, None, RunContext(seed=0, show_progress=False))
    assert off.condition_keys == ()  # xTrimoGene has no condition input


def test_hyperparameters_are_typed_and_ranged():
    config = resolve_config(ScgptImputation, "quick", ScgptImputation.profiles["quick"], {"rounding": "nearest"})
    assert config["rounding"] == "nearest" and config["max_genes"] == 128
    for bad in ({"rounding": "up"}, {"mask_ratio": "1.0"}, {"n_bins": "1"}, {"dropouts": "maybe"}):
        with pytest.raises(ConfigError):
            resolve_config(ScgptImputation, "quick", {}, bad)
    paper = resolve_config(XtrimoGeneImputation, "paper", XtrimoGeneImputation.profiles["paper"], {})
    assert paper["zero_mask_ratio"] == 0.03 and paper["epochs"] == 5 and paper["n_bins"] == 100
