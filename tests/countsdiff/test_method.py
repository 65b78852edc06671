"""The registered methods: profiles, imputation contract, determinism and save/load (SPEC sections 5-7)."""

from __future__ import annotations

import numpy as np
import pytest

from countsbench.config import ConfigError, resolve_config
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.countsdiff import Blackout, CountsDiff
from countsbench.registry import REGISTRY
from countsbench.runner import label_baseline, variant_label
from countsbench.task import TaskInfo

TINY = {
    "dim": 16,
    "n_heads": 2,
    "n_layers": 1,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "steps": 30,
    "batch_size": 16,
    "n_steps": 8,
    "sample_batch_size": 32,
}


def scrna_like(n: int = 40, d: int = 70, seed: int = 0) -> tuple[CountData, np.ndarray]:
    """Counts with a valid mask, one condition key and a 30% MCAR target mask on valid entries."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, 3, n)
    counts = rng.poisson(rng.gamma(1.0, 3.0, size=(3, d))[types])
    valid = (counts > 0) | (rng.random((n, d)) < 0.3)
    counts = np.where(valid, counts, 0)
    data = CountData(counts=counts, valid=valid, conditions={"cell_type": types}, vocabularies={"cell_type": "abc"})
    target = valid & (rng.random((n, d)) < 0.3)
    return data, target


@pytest.fixture(scope="module")
def fitted() -> tuple[CountsDiff, CountData, np.ndarray]:
    data, target = scrna_like()
    method = CountsDiff(network="transformer", guidance=0.5, **TINY)
    method.fit(data, None, RunContext(seed=0))
    return method, data.with_hidden(target), target


def test_imputation_keeps_observed_entries_and_invalid_zeros(fitted):
    method, hidden, target = fitted
    out = method.impute(hidden, target, RunContext(seed=3))
    assert out.shape == hidden.counts.shape and out.dtype == np.int64
    np.testing.assert_array_equal(out[~target], hidden.counts[~target])
    assert out[target].sum() > 0  # targets were imputed, not left at the hidden zeros
    multiple = method.impute(hidden, target, RunContext(seed=3), n_samples=3)
    assert multiple.shape == (3, *hidden.counts.shape)
    for imputation in multiple:
        np.testing.assert_array_equal(imputation[~target], hidden.counts[~target])
    assert not np.array_equal(multiple[0], multiple[1])


def test_repaint_resampling_keeps_observed_entries(fitted):
    method, hidden, target = fitted
    method.repaint_repeats, method.repaint_jump = 2, 3
    try:
        out = method.impute(hidden, target, RunContext(seed=0))
    finally:
        method.repaint_repeats, method.repaint_jump = 1, 0
    np.testing.assert_array_equal(out[~target], hidden.counts[~target])


def test_same_seed_same_output_and_save_load_round_trip(fitted, tmp_path):
    method, hidden, target = fitted
    first = method.impute(hidden, target, RunContext(seed=7))
    np.testing.assert_array_equal(first, method.impute(hidden, target, RunContext(seed=7)))
    assert not np.array_equal(first, method.impute(hidden, target, RunContext(seed=8)))
    method.save(tmp_path)
    loaded = CountsDiff.load(tmp_path)
    assert loaded.config == method.config and loaded.n_parameters() == method.n_parameters()
    np.testing.assert_array_equal(first, loaded.impute(hidden, target, RunContext(seed=7)))
    codes = {"cell_type": hidden.conditions["cell_type"][:5]}
    sampled = method.sample(5, codes, RunContext(seed=2))
    np.testing.assert_array_equal(sampled, loaded.sample(5, codes, RunContext(seed=2)))
    with pytest.raises(TypeError):
        Blackout.load(tmp_path)


def test_methods_are_registered_with_the_right_roles_and_defaults():
    assert REGISTRY.methods.get("countsdiff").role == "reference"
    assert REGISTRY.methods.get("blackout").role == "baseline"
    scrna = TaskInfo("pbmc_mcar", "imputation", 765, (765,), ("bulk_labels",), None)
    quick = CountsDiff.defaults("quick", scrna)
    assert quick["network"] == "transformer" and quick["attention_dropout"] == 0.0
    assert (quick["n_steps"], quick["guidance"], quick["attrition"], quick["eta"]) == (20, 0.5, "rescaled", 0.02)
    blackout = resolve_config(Blackout, "quick", Blackout.defaults("quick", scrna), {})
    assert (blackout["schedule"], blackout["guidance"], blackout["attrition"], blackout["n_steps"]) == (
        "fi_discrete",
        None,
        "none",
        20,
    )
    assert Blackout.defaults("paper", scrna)["n_steps"] == 1000
    toy = TaskInfo("toy", "generation", 10, (10,), (), None)
    assert CountsDiff.defaults("quick", toy)["network"] == "mlp"
    assert CountsDiff.defaults("quick", toy)["n_steps"] == 200
    genes = TaskInfo("pbmc_generate", "generation", 765, (765,), ("bulk_labels",), None)
    assert CountsDiff.defaults("quick", genes)["network"] == "mlp"  # no valid mask to pack the transformer by
    digits = TaskInfo("digits", "generation", 64, (1, 8, 8), ("label",), 16)
    assert CountsDiff.defaults("paper", digits) | {"network": "unet", "n_steps": 1000, "guidance": 1.0} == (
        CountsDiff.defaults("paper", digits)
    )
    assert CountsDiff.defaults("quick", TaskInfo("x", "generation", 10, (10,), (), None))["guidance"] is None
    # the MCV denoiser reads the rate head at t = 0, which only the ELBO weighting trains (docs/denoising.md)
    denoise = TaskInfo("pbmc_denoise", "denoising", 765, (765,), ("bulk_labels",), None)
    for family in (CountsDiff, Blackout):
        config = resolve_config(family, "quick", family.defaults("quick", denoise), {})
        assert (config["network"], config["loss_weighting"]) == ("mlp", "elbo")
    assert resolve_config(CountsDiff, "quick", quick, {})["loss_weighting"] == "paper"


def test_a_network_override_takes_that_networks_presets_and_labels_only_itself():
    genes = TaskInfo("pbmc_generate", "generation", 765, (765,), ("bulk_labels",), None)
    overrides = {"network": "transformer"}
    for family in (CountsDiff, Blackout):
        chosen = family.defaults_for("quick", genes, overrides)
        config = resolve_config(family, "quick", chosen, overrides)
        # the quick transformer preset (3,000 steps of 32 cells, E = 32, 2 layers), not the MLP's
        assert (config["network"], config["steps"], config["batch_size"], config["dim"]) == (
            "transformer",
            3000,
            32,
            32,
        )
        assert (config["n_layers"], config["micro_batches"]) == (2, 2)
        baseline = label_baseline(family, "quick", genes, chosen, overrides)
        assert variant_label(family.name, "quick", config, baseline) == f"{family.name}[network=transformer]"
    plain = CountsDiff.defaults_for("quick", genes, {"n_samples": 5})
    assert plain == CountsDiff.defaults("quick", genes) and plain["network"] == "mlp"
    assert CountsDiff.defaults_for("quick", genes, {"network": "auto"})["network"] == "mlp"
    with pytest.raises(ConfigError):  # an unknown network is the config's clear error, not a KeyError
        resolve_config(CountsDiff, "quick", CountsDiff.defaults_for("quick", genes, {"network": "x"}), {"network": "x"})


def test_every_hyperparameter_is_settable_and_checked():
    config = resolve_config(CountsDiff, "quick", {}, {"attrition": "capped", "eta": "0.1", "guidance": "none"})
    assert config["attrition"] == "capped" and config["eta"] == 0.1 and config["guidance"] is None
    with pytest.raises(ConfigError):
        resolve_config(CountsDiff, "quick", {}, {"attrition": "constant"})
    with pytest.raises(ValueError):
        CountsDiff(schedule="fi_discrete", discrete_grid=10, n_steps=20)


def test_blackout_generates_bounded_images():
    """The U-Net path with clamping for bounded data (skipped without diffusers)."""
    pytest.importorskip("diffusers")
    rng = np.random.default_rng(0)
    images = CountData(
        counts=rng.integers(0, 17, size=(32, 64)),
        sample_shape=(1, 8, 8),
        max_value=16,
        conditions={"label": rng.integers(0, 2, 32)},
        vocabularies={"label": ("0", "1")},
    )
    method = Blackout(
        network="unet",
        unet_channels="16,32",
        unet_layers_per_block=1,
        unet_attention_resolutions="4",
        steps=3,
        batch_size=8,
        n_steps=5,
    )
    method.fit(images, None, RunContext(seed=0))
    samples = method.sample(6, {"label": np.array([0, 1, 0, 1, 0, 1])}, RunContext(seed=0))
    assert samples.shape == (6, 64) and samples.min() >= 0 and samples.max() <= 16
