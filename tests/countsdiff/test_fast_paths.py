"""The speed paths of issue 17: default ones bit-identical to the plain code, optional ones equal to it
to floating-point tolerance, and the CUDA branches selected when a GPU is (mocked as) present."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from countsbench.config import ConfigError, coerce, hyperparameters
from countsbench.context import RunContext, resolve_device
from countsbench.data import CountData
from countsbench.methods.countsdiff import CountsDiff
from countsbench.methods.countsdiff.denoiser import Denoiser
from countsbench.methods.countsdiff.loss import BinomialDeathLoss, poisson_rate_loss
from countsbench.methods.countsdiff.networks import NetworkConfig
from countsbench.methods.countsdiff.networks.transformer import GeneTransformer
from countsbench.methods.countsdiff.rates import RateModel
from countsbench.methods.countsdiff.schedules import CosineSchedule
from countsbench.methods.diffusion import transfer
from countsbench.methods.diffusion.buckets import CPU_BUCKET_ROWS, bucket_count, length_buckets
from countsbench.methods.diffusion.compile import compile_backbone, compile_mode, compile_unavailable_reason
from countsbench.methods.diffusion.ema import EMA
from countsbench.methods.diffusion.rows import TrainingRows
from countsbench.methods.diffusion.training import Trainer, TrainingBatch, TrainingConfig

GENES = 12


def transformer_denoiser(dropout: float = 0.0, seed: int = 0, n_layers: int = 2) -> Denoiser:
    torch.manual_seed(seed)
    config = NetworkConfig(
        "transformer", (GENES,), (3,), dim=16, n_heads=2, n_layers=n_layers, dropout=dropout, attention_dropout=dropout
    )
    return Denoiser(config)


def ragged_batch(n: int = 10, seed: int = 0) -> TrainingBatch:
    """Rows with 2..GENES valid genes (different packed lengths), codes, and a mixed ``keep``."""
    rng = np.random.default_rng(seed)
    valid = rng.random((n, GENES)) < rng.uniform(0.15, 1.0, size=(n, 1))
    valid[:, 0] = True
    x0 = np.where(valid, rng.poisson(4.0, size=(n, GENES)), 0)
    return TrainingBatch(
        torch.as_tensor(x0, dtype=torch.float32),
        torch.as_tensor(valid),
        torch.as_tensor(rng.integers(0, 3, (n, 1))),
        torch.as_tensor(rng.random(n) < 0.7),
    )


def deterministic_loss(model, batch: TrainingBatch, randomness) -> torch.Tensor:
    """The Poisson rate loss at a fixed ``x_t`` and a per-row ``t`` that follow each row (no random draws),
    so that bucketed and unbucketed runs see the same inputs row for row."""
    x_t = torch.floor(batch.x0 / 2)
    t = 0.1 + 0.8 * (batch.x0.sum(dim=1) % 7) / 7
    alpha = torch.cos(0.5 * torch.pi * t.double()) ** 2
    rate = model(x_t, t, alpha, batch.codes, batch.keep, batch.valid)
    return poisson_rate_loss(rate, batch.x0 - x_t, torch.ones_like(t), batch.valid)


def trainer_for(model, loss, **config) -> Trainer:
    return Trainer(model, loss, TrainingConfig(**config), RunContext(show_progress=False), CountsDiff.streams)


def gradients(model) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


def test_length_buckets_sort_rows_by_valid_count_into_k_groups():
    valid = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool)
    groups = length_buckets(valid, 5, 2, "cpu")
    assert [g.tolist() for g in groups] == [[3, 1, 2], [0, 4]]
    assert [g.tolist() for g in length_buckets(None, 5, 2, "cpu")] == [[0, 1, 2], [3, 4]]
    assert len(length_buckets(valid, 5, 9, "cpu")) == 5  # never an empty group
    with pytest.raises(ValueError, match=">= 1"):
        length_buckets(valid, 5, 0, "cpu")


@pytest.mark.parametrize("buckets", [2, 3])
def test_bucketed_gradient_equals_the_full_batch_gradient(buckets):
    """Gradient accumulation over length buckets, each loss weighted by its share of the rows, is the
    gradient of the full batch's mean loss (float32 rounding only)."""
    batch = ragged_batch()
    full = transformer_denoiser()
    deterministic_loss(full, batch, None).backward()
    bucketed = transformer_denoiser()
    trainer = trainer_for(bucketed, deterministic_loss, micro_batches=buckets)
    total = trainer.accumulate(batch)
    torch.testing.assert_close(total, deterministic_loss(transformer_denoiser(), batch, None).detach())
    for a, b in zip(gradients(full), gradients(bucketed), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    lengths = [int(batch.valid[g].sum(dim=1).max()) for g in length_buckets(batch.valid, 10, buckets, "cpu")]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]  # the buckets do pad less


def test_bucketed_training_runs_and_rejects_bad_settings():
    rng = np.random.default_rng(0)
    valid = rng.random((40, GENES)) < 0.6
    data = CountData(
        np.where(valid, rng.poisson(3.0, (40, GENES)), 0), valid, {"c": rng.integers(0, 3, 40)}, {"c": ("a", "b", "c")}
    )
    trainer = trainer_for(
        transformer_denoiser(0.1), BinomialDeathLoss(CosineSchedule()), steps=3, batch_size=8, micro_batches=3
    )
    losses = trainer.fit(TrainingRows(data, "cpu"))
    assert len(losses) == 3 and np.isfinite(losses).all()
    with pytest.raises(ValueError, match="micro_batches"):
        trainer_for(transformer_denoiser(), deterministic_loss, micro_batches=0)
    with pytest.raises(ValueError, match="micro_batches"):
        CountsDiff(micro_batches=0)


def test_auto_buckets_are_eight_rows_on_a_cpu_and_one_on_a_gpu():
    assert CPU_BUCKET_ROWS == 8
    assert [bucket_count("auto", rows, "cpu") for rows in (1, 8, 9, 64, 512)] == [1, 1, 2, 8, 64]
    assert bucket_count("auto", 512, "cuda") == bucket_count("auto", 512, torch.device("cuda", 0)) == 1
    assert bucket_count(3, 512, "cuda") == 3  # a number is taken as given
    for bad in (0, -2, 2.5, "fast", True):
        with pytest.raises(ValueError, match="sample_buckets must be an integer >= 1 or 'auto'"):
            bucket_count(bad, 8, "cpu", "sample_buckets")
    known = hyperparameters(CountsDiff)  # what `--set micro_batches=...` accepts
    assert coerce(known["micro_batches"], "auto") == "auto" and coerce(known["sample_buckets"], "4") == 4
    with pytest.raises(ConfigError, match="micro_batches >= 1"):
        coerce(known["micro_batches"], "0")


def test_auto_micro_batches_train_in_buckets_of_eight_rows_on_a_cpu():
    batch = ragged_batch(20)
    calls: list[int] = []

    def counting_loss(model, part, randomness):
        calls.append(part.x0.shape[0])
        return deterministic_loss(model, part, randomness)

    full = transformer_denoiser()
    deterministic_loss(full, batch, None).backward()
    auto = transformer_denoiser()
    trainer = trainer_for(auto, counting_loss, batch_size=20, micro_batches="auto")
    assert trainer.micro_batches == 3
    trainer.accumulate(batch)
    assert sorted(calls) == [6, 7, 7]  # ceil(20 / 8) buckets
    for a, b in zip(gradients(full), gradients(auto), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert CountsDiff(micro_batches="auto", sample_buckets="auto").config["micro_batches"] == "auto"


def test_auto_sample_buckets_evaluate_eight_cells_a_bucket_with_the_plain_rates():
    model = transformer_denoiser().eval()
    batch = ragged_batch(17)
    x = torch.floor(batch.x0 / 3)
    plain = RateModel(model, batch.codes, batch.valid, 0.5)(x, 0.4, 0.6)
    rates = RateModel(model, batch.codes, batch.valid, 0.5, buckets="auto")
    torch.testing.assert_close(rates(x, 0.4, 0.6), plain, rtol=1e-5, atol=1e-6)
    assert [part.rows.numel() for part in rates._parts] == [6, 6, 5]


def test_losses_are_read_in_one_sync_per_log_interval_and_a_nan_names_its_step():
    data = CountData(np.random.default_rng(0).poisson(3.0, (32, 3)))
    calls = {"n": 0}

    def loss(model, batch, randomness):
        calls["n"] += 1
        value = model(
            batch.x0,
            torch.full((batch.x0.shape[0],), 0.5),
            torch.full((batch.x0.shape[0],), 0.5, dtype=torch.float64),
            batch.codes,
            batch.keep,
        ).mean()
        return value * float("nan") if calls["n"] == 6 else value

    torch.manual_seed(0)
    model = Denoiser(NetworkConfig("mlp", (3,), (), mlp_hidden=8, mlp_layers=1, time_dim=8))
    trainer = trainer_for(model, loss, steps=10, batch_size=4, log_every=4)
    step = trainer.train_step(TrainingRows(data, "cpu"))
    assert isinstance(step, torch.Tensor) and step.dim() == 0 and not step.requires_grad
    with pytest.raises(FloatingPointError, match="at step 6"):
        trainer.fit(TrainingRows(data, "cpu"))
    # step 1 ran outside fit (its loss is the caller's); steps 2-4 were read at the step-4 interval and
    # the NaN of step 6 at the step-8 one
    assert len(trainer.losses) == 3 and calls["n"] == 8


def test_foreach_ema_is_bit_identical_to_the_per_tensor_loop():
    model = transformer_denoiser()
    ema, reference = EMA(model, 0.999), copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    for n in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=generator))
            model.output_scale.mul_(1.5)  # a buffer
        decay = min(0.999, (1 + n) / (10 + n))
        with torch.no_grad():
            for average, current in zip(reference.parameters(), model.parameters(), strict=True):
                average.lerp_(current, 1.0 - decay)
            for average, current in zip(reference.buffers(), model.buffers(), strict=True):
                average.copy_(current)
        ema.update(model)
    for a, b in zip(ema.model.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="parameters"):
        ema.update(torch.nn.Linear(2, 2))


def test_a_precomputed_token_layout_gives_the_same_output_and_no_mask_without_padding():
    backbone = transformer_denoiser().backbone.eval()
    batch = ragged_batch(6)
    h, t = batch.x0.log1p(), torch.full((6,), 0.3)
    layout = backbone.layout(batch.valid, 6, GENES, "cpu")
    assert layout.attend is not None and layout.genes.shape[1] == int(batch.valid.sum(dim=1).max())
    direct = backbone(h, t, batch.codes, batch.keep, batch.valid)
    assert torch.equal(backbone(h, t, batch.codes, batch.keep, layout), direct)
    full = torch.ones(6, GENES, dtype=torch.bool)
    assert backbone.layout(full, 6, GENES, "cpu").attend is None  # flash-eligible on CUDA
    assert backbone.layout(None, 6, GENES, "cpu").attend is None


@pytest.mark.parametrize("buckets", [1, 3])
def test_bucketed_rates_equal_the_plain_rates(buckets):
    """``sample_buckets``: the same guided rates up to float32 rounding; 1 bucket is the plain path."""
    model = transformer_denoiser().eval()
    batch = ragged_batch(9)
    x = torch.floor(batch.x0 / 3)
    plain = RateModel(model, batch.codes, batch.valid, 0.5)(x, 0.4, 0.6)
    rates = RateModel(model, batch.codes, batch.valid, 0.5, buckets=buckets)
    out = rates(x, 0.4, 0.6)
    again = rates(x, 0.4, 0.6)  # the cached per-chunk inputs are reused
    if buckets == 1:
        assert torch.equal(out, plain)
    torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-6)
    assert torch.equal(again, out)


#: Dynamo's graph capture and AOT autograd without inductor's C++ code generation, which takes minutes
#: on a loaded 2-core machine (the benchmark's ``+compile`` variants run inductor itself).
COMPILE_TEST_BACKEND = "aot_eager"


@pytest.mark.slow
def test_compiled_backbone_matches_eager(one_thread):
    reason = compile_unavailable_reason("cpu")
    if reason is not None:
        pytest.skip(f"torch.compile unavailable: {reason}")
    model = transformer_denoiser(n_layers=1).eval()
    batch = ragged_batch(6)
    args = (batch.x0.log1p(), torch.full((6,), 0.3), batch.codes, batch.keep, batch.valid)
    eager = model.backbone(*args)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    compiled = compile_backbone(model, "cpu", training=False, backend=COMPILE_TEST_BACKEND)
    assert compiled is model.backbone and model.backbone._compiled_call_impl is not None
    torch.testing.assert_close(model.backbone(*args), eager, rtol=1e-4, atol=1e-5)
    assert list(model.state_dict()) == list(state)  # checkpoints do not see the compilation


# --- the CUDA branches, with CUDA mocked -------------------------------------------------------
def test_cuda_branches_are_selected_when_a_gpu_is_visible(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    ctx = RunContext(device="cuda")
    assert ctx.mixed_precision
    monkeypatch.setattr(torch, "autocast", lambda **kwargs: kwargs)  # a CPU build cannot enter a CUDA one
    assert ctx.autocast() == {"device_type": "cuda", "dtype": torch.bfloat16}
    assert transfer.sampling_chunk_rows(256, "cuda") == 256 * transfer.GPU_CHUNK_SCALE
    assert transfer.sampling_chunk_rows(256, "cpu") == 256
    assert compile_mode("cuda", training=False) == "reduce-overhead"
    assert compile_mode("cuda", training=True) == compile_mode("cpu", training=False) == "default"


def test_host_to_device_copies_are_pinned_and_non_blocking_on_cuda(monkeypatch):
    seen: dict[str, object] = {}

    def pin_memory(self):
        seen["pinned"] = True
        return self

    def to(self, device, non_blocking=False):
        seen.update(device=device, non_blocking=non_blocking)
        return self

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
    monkeypatch.setattr(torch.Tensor, "to", to)
    out = transfer.to_device(np.arange(6).reshape(2, 3), torch.float32, "cuda")
    assert seen == {"pinned": True, "device": "cuda", "non_blocking": True}
    assert out.dtype == torch.float32 and out.tolist() == [[0, 1, 2], [3, 4, 5]]
    seen.clear()
    transfer.to_device(np.arange(3), None, "cpu")
    assert seen == {"device": "cpu", "non_blocking": False}  # plain copy off CUDA


def test_sampling_on_cuda_uses_the_larger_chunks(monkeypatch):
    """`DiffusionMethod.impute` hands the sampler ``GPU_CHUNK_SCALE`` times the rows on CUDA."""
    from countsbench.methods.diffusion import method as diffusion_method
    from countsbench.tasks.pbmc import pbmc_mcar

    seen = {}

    def impute(reverse, data, target, k, codes, ctx, generator, batch_size, steps, desc):
        seen["batch_size"] = batch_size
        return np.zeros((k, *data.counts.shape), dtype=np.int64)

    monkeypatch.setattr(diffusion_method.sampling, "impute", impute)
    monkeypatch.setattr(CountsDiff, "_ready", lambda self, ctx: None)
    monkeypatch.setattr(RunContext, "torch_generator", lambda self, stream=0: None)
    data = pbmc_mcar().sample_dataset()
    method = CountsDiff(sample_batch_size=64)
    method.condition_keys = data.test.condition_keys
    method.impute(data.test, data.test_target, RunContext(device="cuda", show_progress=False), 1)
    assert seen["batch_size"] == 64 * transfer.GPU_CHUNK_SCALE


def test_compile_model_is_refused_with_a_reason_when_unavailable(monkeypatch):
    from countsbench.methods.diffusion import compile as compile_module

    monkeypatch.setattr(compile_module.shutil, "which", lambda name: None)
    assert "C++ compiler" in compile_unavailable_reason("cpu")
    with pytest.raises(compile_module.CompileUnavailable, match="C\\+\\+ compiler"):
        compile_backbone(transformer_denoiser(), "cpu", training=True)
    assert isinstance(transformer_denoiser().backbone, GeneTransformer)
