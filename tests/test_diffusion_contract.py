"""The contract of every registered diffusion method (the shared core in `countsbench.methods.diffusion`): train a few
steps, sample, impute (one and K draws), save/load, and resume from a checkpoint bit-identically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from countsbench.config import hyperparameters
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.diffusion.method import DiffusionMethod
from countsbench.registry import REGISTRY

SMALL = {
    "network": "mlp",
    "mlp_hidden": 8,
    "hidden": 8,
    "steps": 6,
    "batch_size": 8,
    "warmup_steps": 2,
    "n_steps": 4,
    "sample_batch_size": 16,
    "guidance": 0.5,
}


def diffusion_methods() -> list[str]:
    REGISTRY.load_builtins()
    return [spec.name for spec in REGISTRY.methods if issubclass(spec.cls, DiffusionMethod)]


def build(name: str, **overrides) -> DiffusionMethod:
    cls = REGISTRY.methods.get(name).cls
    known = hyperparameters(cls)
    return cls(**{k: v for k, v in {**SMALL, **overrides}.items() if k in known})


def small_data(n: int = 24, d: int = 5) -> tuple[CountData, np.ndarray]:
    rng = np.random.default_rng(0)
    types = rng.integers(0, 2, n)
    counts = rng.poisson(rng.gamma(1.0, 3.0, size=(2, d))[types])
    valid = (counts > 0) | (rng.random((n, d)) < 0.5)
    data = CountData(np.where(valid, counts, 0), valid, {"kind": types}, {"kind": ("a", "b")})
    return data, valid & (rng.random((n, d)) < 0.4)


def test_every_diffusion_method_is_covered():
    assert {"countsdiff", "blackout", "gaussian_ddpm", "mdlm", "remdm"} <= set(diffusion_methods())


@pytest.mark.parametrize("name", diffusion_methods())
def test_fit_sample_impute_save_load_resume(name, tmp_path, one_thread):
    data, target = small_data()
    hidden = data.with_hidden(target)
    method = build(name)
    method.fit(data, None, RunContext(seed=0, output_dir=tmp_path / "straight", show_progress=False))
    assert len(method.losses) == 6 and np.isfinite(method.losses).all()

    samples = method.sample(7, {"kind": np.array([0, 1, 0, 1, 0, 1, 0])}, RunContext(seed=1))
    assert samples.shape == (7, 5) and samples.dtype == np.int64 and samples.min() >= 0

    one = method.impute(hidden, target, RunContext(seed=2), n_samples=1)
    many = method.impute(hidden, target, RunContext(seed=2), n_samples=3)
    assert one.shape == (24, 5) and many.shape == (3, 24, 5)
    for imputation in (one, *many):
        np.testing.assert_array_equal(imputation[~target], hidden.counts[~target])
    # the argument is authoritative; the hyperparameter is only its default
    method.n_samples = 2
    assert method.impute(hidden, target, RunContext(seed=2)).shape == (2, 24, 5)
    assert method.impute(hidden, target, RunContext(seed=2), n_samples=1).shape == (24, 5)
    method.n_samples = 1

    method.save(tmp_path / "saved")
    loaded = type(method).load(tmp_path / "saved")
    assert loaded.config == method.config
    np.testing.assert_array_equal(loaded.impute(hidden, target, RunContext(seed=2), n_samples=1), one)

    interrupted = build(name, steps=3)
    interrupted.fit(data, None, RunContext(seed=0, output_dir=tmp_path / "resumed", show_progress=False))
    resumed = build(name)
    resumed.fit(data, None, RunContext(seed=0, output_dir=tmp_path / "resumed", show_progress=False))
    assert resumed.losses == method.losses
    for a, b in zip(method.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_loaded_model_runs_no_code(tmp_path):
    """Weights load with ``weights_only=True``: a pickled object in the weights file is refused."""
    method = build("countsdiff")
    data, _ = small_data()
    method.fit(data, None, RunContext(seed=0, show_progress=False))
    method.save(tmp_path)

    class Payload:
        def __reduce__(self):
            return (exec, ("raise SystemExit('payload ran')",))

    torch.save({"x": Payload()}, tmp_path / "weights.pt")
    with pytest.raises(Exception, match="(?i)weights only|unsupported|global"):
        type(method).load(tmp_path)
