"""The CUDA path on a real GPU (issue 17): host syncs, bf16 autocast, flash attention, a fit and an imputation.

On a machine without CUDA every test here is skipped with a loud reason; under ``COUNTSBENCH_REQUIRE_CUDA=1``
(set by ``benchmarks/device_check.sh``, the one prepared command for a lent GPU machine) they FAIL
instead, so a GPU run can never pass without a GPU. The CPU side of the same branches (device selection,
pinned copies, chunk sizes) is tested with a faked GPU in ``test_fast_paths.py``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.countsdiff import CountsDiff
from countsbench.methods.countsdiff.attrition import Attrition
from countsbench.methods.countsdiff.denoiser import Denoiser
from countsbench.methods.countsdiff.networks import NetworkConfig
from countsbench.methods.countsdiff.rates import RateModel
from countsbench.methods.countsdiff.sampler import reverse_process
from countsbench.methods.countsdiff.schedules import SamplingGrid
from countsbench.methods.diffusion.rows import TrainingRows
from countsbench.methods.diffusion.training import Trainer

pytestmark = pytest.mark.cuda

GENES, CELLS = 40, 96


@pytest.fixture(autouse=True)
def cuda_device():
    if not torch.cuda.is_available():
        message = "CUDA TEST NOT RUN: no CUDA GPU visible (benchmarks/device_check.sh runs these on one)"
        if os.environ.get("COUNTSBENCH_REQUIRE_CUDA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    torch.cuda.set_sync_debug_mode(0)
    yield "cuda"
    torch.cuda.set_sync_debug_mode(0)


def ragged_data(seed: int = 0) -> CountData:
    """Cells with 20-100% valid genes (so the packed sequences differ in length) and a 3-class condition."""
    rng = np.random.default_rng(seed)
    valid = rng.random((CELLS, GENES)) < rng.uniform(0.2, 1.0, size=(CELLS, 1))
    valid[:, 0] = True
    counts = np.where(valid, rng.poisson(3.0, size=(CELLS, GENES)), 0)
    conditions = {"type": rng.integers(0, 3, CELLS)}
    return CountData(counts, valid, conditions, {"type": ("a", "b", "c")})


def small_method(**config) -> CountsDiff:
    settings = dict(network="transformer", dim=32, n_heads=2, n_layers=2, batch_size=32, steps=6, n_steps=8)
    return CountsDiff(**(settings | config))


def synchronising_calls(run) -> int:
    """How many synchronising CUDA calls ``run()`` makes (`torch.cuda.set_sync_debug_mode` warnings)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in seen)


@pytest.mark.parametrize("micro_batches", [1, 2])
def test_a_training_step_syncs_only_for_the_packed_sequence_length(micro_batches):
    """One host sync per length bucket (the packed transformer's longest row sets its sequence length,
    `GeneTransformer.layout`); the loss stays on the device until the log interval."""
    data, method = ragged_data(), small_method(micro_batches=micro_batches)
    ctx = RunContext(device="cuda", show_progress=False)
    method.spec = method.model_spec(data)
    trainer = Trainer(
        method.build_model(method.spec), method.make_loss(), method.training_config(), ctx, method.streams
    )
    rows = TrainingRows(data, "cuda")
    trainer.train_step(rows)  # warm-up: lazy initialisation (cuBLAS handles, the optimiser's state)
    steps = 3
    calls = synchronising_calls(lambda: [trainer.train_step(rows) for _ in range(steps)])
    assert 1 <= calls <= steps * micro_batches


def test_the_reverse_process_runs_without_a_host_sync():
    """A RePaint imputation chunk, guidance 0.5, prebuilt token layout: no synchronising call in the loop."""
    data, method = ragged_data(), small_method()
    ctx = RunContext(device="cuda", show_progress=False)
    method.spec = method.model_spec(data)
    model = method.build_model(method.spec).to("cuda").eval()
    target = torch.as_tensor(np.random.default_rng(1).random((CELLS, GENES)) < 0.2, device="cuda")
    observed = torch.as_tensor(data.dense(), dtype=torch.float32, device="cuda")
    keep = torch.as_tensor(data.valid_mask(), device="cuda") | target
    codes = torch.as_tensor(data.condition_matrix(), device="cuda")
    rates = RateModel(model, codes, keep, 0.5, ctx.autocast)
    grid, attrition = method.sampler_grid(), Attrition(method.attrition, method.eta)
    assert isinstance(grid, SamplingGrid)
    generator = ctx.torch_generator(4)

    def impute():
        with torch.inference_mode():
            out = reverse_process(
                rates,
                (CELLS, GENES),
                grid,
                attrition,
                generator,
                device="cuda",
                keep=keep,
                observed=observed,
                target=target,
            )
        return out

    reverse_process(rates, (CELLS, GENES), grid, attrition, generator, device="cuda", keep=keep)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        x = impute()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert bool((x >= 0).all()) and bool((x[~keep] == 0).all())


def test_bf16_autocast_rates_match_float32():
    """The rates the sampler reads under bf16 autocast agree with float32 to bf16's precision."""
    torch.manual_seed(0)
    data = ragged_data()
    config = NetworkConfig(
        "transformer", (GENES,), (3,), dim=32, n_heads=2, n_layers=2, dropout=0.0, attention_dropout=0.0
    )
    model = Denoiser(config).to("cuda").eval()
    x = torch.as_tensor(data.dense() // 2, dtype=torch.float32, device="cuda")
    codes = torch.as_tensor(data.condition_matrix(), device="cuda")
    valid = torch.as_tensor(data.valid_mask(), device="cuda")
    exact = RateModel(model, codes, valid, 0.5)(x, 0.4, 0.6)
    mixed = RateModel(model, codes, valid, 0.5, RunContext(device="cuda").autocast)(x, 0.4, 0.6)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, rtol=5e-2, atol=5e-2)


def test_a_batch_without_padding_runs_on_flash_attention_alone():
    """Rows with equal valid counts get no attention mask, so flash attention is eligible (bf16)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    config = NetworkConfig(
        "transformer", (GENES,), (3,), dim=64, n_heads=4, n_layers=2, dropout=0.0, attention_dropout=0.0
    )
    backbone = Denoiser(config).backbone.to("cuda").eval()
    valid = torch.zeros(8, GENES, dtype=torch.bool, device="cuda")
    valid[:, :25] = True
    layout = backbone.layout(valid, 8, GENES, "cuda")
    assert layout.padding is None and layout.attend is None
    h = torch.rand(8, GENES, device="cuda")
    t, codes, keep = (
        torch.rand(8, device="cuda"),
        torch.zeros(8, 1, dtype=torch.long, device="cuda"),
        torch.ones(8, dtype=torch.bool, device="cuda"),
    )
    with torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        out = backbone(torch.log1p(h), t, codes, keep, layout)
    assert out.shape == (8, GENES) and bool(torch.isfinite(out).all())


def test_countsdiff_fits_and_imputes_on_cuda():
    """The public path: a short fit and a two-draw imputation on the GPU give counts where they may be."""
    data = ragged_data()
    target = np.random.default_rng(2).random((CELLS, GENES)) < 0.2
    method = small_method()
    ctx = RunContext(device="cuda", show_progress=False)
    method.fit(data, None, ctx)
    assert next(method.model.parameters()).device.type == "cuda"
    imputed = method.impute(data, target, ctx, 2)
    keep = data.valid_mask() | target
    assert imputed.shape == (2, CELLS, GENES) and imputed.dtype == np.int64
    assert (imputed >= 0).all() and (imputed[:, ~keep] == 0).all()
    assert (imputed[:, ~target] == data.dense()[~target]).all()  # observed entries are kept
