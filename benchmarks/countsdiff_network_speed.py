"""CountsDiff speed per backbone: training steps/s, sampling cells/s, and where sampler time goes.

The quick and paper configurations of every backbone on synthetic data of the tasks' shapes (a smoke
view across networks). The honest comparison with the research code, on the real pbmc validity mask
and at equal settings, is benchmarks/countsdiff_speed.py.

For each configuration (network x profile) it times training steps, then one sampling pass, with the
network's forward calls timed separately: ``share_outside_forward`` is the fraction of sampler time
spent outside the network (rounding, binomial draws, RePaint bookkeeping). Target: under 10% for the
scRNA transformer and the image U-Net; the toy MLP is too small for the share to mean anything.

    python benchmarks/countsdiff_network_speed.py --out benchmarks/results/countsdiff_network_speed.json
    python benchmarks/countsdiff_network_speed.py --only transformer-quick --seconds 20

Data: the pbmc68k_reduced shape for scRNA (765 genes, 38% valid, one condition key with 10 labels),
digits (1 x 8 x 8, max 16) for the quick U-Net and CIFAR-10's shape (3 x 32 x 32, max 255) for the paper
U-Net, random counts of the right shape (speed does not depend on the values). Each measurement runs for
about ``--seconds`` (at least one timed step after one warm-up step); sampling times at most
``--max-sampling-steps`` reverse steps and scales cells/s to the configuration's step count.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from countsbench.context import RunContext, cpu_threads, resolve_device
from countsbench.data import CountData
from countsbench.methods.countsdiff import CountsDiff
from countsbench.methods.diffusion.rows import TrainingRows
from countsbench.methods.diffusion.training import Trainer
from countsbench.task import TaskInfo


@dataclass(frozen=True)
class Case:
    name: str
    profile: str
    info: TaskInfo
    n_rows: int


CASES = [
    Case("transformer-quick", "quick", TaskInfo("pbmc_mcar", "imputation", 765, (765,), ("bulk_labels",), None), 140),
    Case("transformer-paper", "paper", TaskInfo("pbmc_mcar", "imputation", 765, (765,), ("bulk_labels",), None), 140),
    Case("unet-quick", "quick", TaskInfo("digits", "generation", 64, (1, 8, 8), ("label",), 16), 256),
    Case("unet-paper", "paper", TaskInfo("cifar10", "generation", 3072, (3, 32, 32), ("label",), 255), 16),
    Case("mlp-quick", "quick", TaskInfo("toy", "generation", 10, (10,), (), None), 4000),
]


def synthetic_data(case: Case, n: int, seed: int = 0) -> tuple[CountData, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    info = case.info
    d = info.n_features
    conditions = {key: rng.integers(0, 10, n) for key in info.condition_keys}
    vocabularies = {key: tuple(str(i) for i in range(10)) for key in info.condition_keys}
    if info.max_value is not None:
        counts = rng.integers(0, info.max_value + 1, size=(n, d))
        return CountData(counts, None, conditions, vocabularies, (), info.sample_shape, info.max_value), None
    counts = rng.poisson(2.0, size=(n, d))
    valid = None
    if info.kind == "imputation":
        valid = rng.random((n, d)) < 0.38
        counts = np.where(valid, counts, 0)
    data = CountData(counts, valid, conditions, vocabularies, (), info.sample_shape)
    target = None if valid is None else valid & (rng.random((n, d)) < 0.5)
    return data, target


class TimedForward(torch.nn.Module):
    """Wraps a denoiser and accumulates the wall time of its network calls (synchronising on CUDA)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.seconds, self.calls = inner, 0.0, 0
        self.config = inner.config
        self.rate_scale = inner.rate_scale

    def unit_rates(self, *args, **kwargs):
        _sync()
        start = time.perf_counter()
        out = self.inner.unit_rates(*args, **kwargs)
        _sync()
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench(case: Case, device: str, seconds: float, max_sampling_steps: int) -> dict:
    method = CountsDiff(**CountsDiff.defaults(case.profile, case.info))
    configured_steps = method.n_steps
    method.n_steps = min(configured_steps, max_sampling_steps)  # timed steps; cells/s is scaled back
    ctx = RunContext(seed=0, device=device, profile=case.profile, show_progress=False)
    train, _ = synthetic_data(case, max(method.batch_size, 64))
    torch.manual_seed(0)
    method.spec = method.model_spec(train)
    denoiser = method.build_model(method.spec)
    trainer = Trainer(denoiser, method.make_loss(), method.training_config(), ctx, method.streams)
    rows = TrainingRows(train, device)
    trainer.train_step(rows)  # warm-up
    _sync()
    start, steps = time.perf_counter(), 0
    while steps < 1 or time.perf_counter() - start < seconds:
        trainer.train_step(rows)
        steps += 1
    _sync()
    train_s = time.perf_counter() - start
    model = TimedForward(trainer.ema.model.eval())
    method.model, method.condition_keys = model, train.condition_keys
    data, target = synthetic_data(case, case.n_rows, seed=1)
    _sync()
    start = time.perf_counter()
    if target is not None:
        method.impute(data.with_hidden(target), target, ctx, 1)
    else:
        method.sample(case.n_rows, dict(data.conditions) or None, ctx)
    _sync()
    sample_s = time.perf_counter() - start
    return {
        "case": case.name,
        "profile": case.profile,
        "network": method.network,
        "n_parameters": sum(p.numel() for p in denoiser.parameters()),
        "batch_size": method.batch_size,
        "train_steps_per_s": steps / train_s,
        "train_cells_per_s": steps * method.batch_size / train_s,
        "sampling": "imputation" if target is not None else "generation",
        "n_steps": configured_steps,
        "timed_steps": method.n_steps,
        "guidance": method.guidance,
        "sample_rows": case.n_rows,
        "sample_s": sample_s,
        "cells_per_s": case.n_rows / (sample_s * configured_steps / method.n_steps),
        "forward_calls": model.calls,
        "forward_s": model.seconds,
        "share_outside_forward": 1.0 - model.seconds / sample_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/countsdiff_network_speed.json"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=15.0, help="time per training measurement")
    parser.add_argument("--only", nargs="*", help="case names to run")
    parser.add_argument(
        "--max-sampling-steps", type=int, default=20, help="reverse steps timed (cells/s is scaled to the config's)"
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    results = []
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        result = bench(case, device, args.seconds, args.max_sampling_steps)
        print(json.dumps(result), flush=True)
        results.append(result)
    report = {
        "benchmark": "countsdiff_network_speed",
        "device": device,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "bf16_autocast": device == "cuda",
        "threads": cpu_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
