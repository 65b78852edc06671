"""CountsDiff imputation throughput at a given number of cells: the profile's network and sampler (paper:
E = 64, 4 heads, 3 layers, 20 RePaint steps, guidance 0.5, K = 5 draws; SPEC sections 5-6) after a short
fit, on ``--cells`` cells tiled from the pbmc_mcar test split (765 genes, its validity and MCAR target).

Issue 17 asks for "the time of a 50,000-cell imputation" on a GPU; the time does not depend on the
network's weights (a short fit only makes the rates plausible), so ``--fit-steps`` stays small. Reports
the fit and imputation wall times (synchronised on CUDA), cells per second, network forwards and the
peak memory (``torch.cuda.max_memory_allocated`` on CUDA, the process' peak RSS elsewhere).

    python benchmarks/imputation_throughput.py --cells 50000 --out benchmarks/results/imputation_throughput_cuda.json
    python benchmarks/imputation_throughput.py --cells 24 --fit-steps 2 --set n_steps=2 --out /tmp/t.json  # seconds
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from countsbench.config import parse_assignments, resolve_config
from countsbench.context import RunContext, resolve_device
from countsbench.data import CountData
from countsbench.memory import rss_mb
from countsbench.methods.countsdiff import CountsDiff
from countsbench.methods.diffusion.transfer import sampling_chunk_rows
from countsbench.tasks.pbmc import pbmc_mcar


def tiled(split: CountData, cells: np.ndarray) -> CountData:
    """The rows ``cells`` of ``split`` (repeats allowed) as a new split."""
    conditions = {key: codes[cells] for key, codes in split.conditions.items()}
    return CountData(split.dense(cells), split.valid_mask(cells), conditions, split.vocabularies)


def seconds(fn, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return rss_mb("VmHWM")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--fit-steps", type=int, default=50)
    parser.add_argument("--profile", default="paper", choices=("quick", "paper"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a CountsDiff hyperparameter")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/imputation_throughput.json"))
    args = parser.parse_args(argv)
    if args.cells < 1 or args.fit_steps < 1:
        parser.error("--cells and --fit-steps must be >= 1")
    device = resolve_device(args.device)
    task = pbmc_mcar()
    data = task.load(Path("."))
    overrides = {"steps": str(args.fit_steps), **parse_assignments(args.set)}
    info = task.info(data, "pbmc_mcar")
    config = resolve_config(CountsDiff, args.profile, CountsDiff.defaults_for(args.profile, info, overrides), overrides)
    method = CountsDiff(**config)
    ctx = RunContext(seed=0, device=device, profile=args.profile, show_progress=False)

    fit_s = seconds(lambda: method.fit(data.train, data.valid, ctx), device)
    cells = np.resize(np.arange(data.test.n_samples), args.cells)
    test, target = tiled(data.test, cells), data.test_target[cells]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    out = {}
    impute_s = seconds(lambda: out.setdefault("x", method.impute(test, target, ctx, method.n_samples)), device)
    imputed = out["x"].reshape(method.n_samples, args.cells, -1)
    if not (imputed >= 0).all():
        raise SystemExit("imputation produced negative counts")

    chunk_rows = sampling_chunk_rows(method.sample_batch_size, device)
    n_chunks = -(-args.cells // max(1, chunk_rows // method.n_samples))
    report = {
        "benchmark": "imputation_throughput",
        "device": device,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "bf16_autocast": ctx.mixed_precision,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "profile": args.profile,
        "config": {key: config[key] for key in sorted(config)},
        "cells": args.cells,
        "genes": int(test.n_features),
        "draws_per_cell": int(method.n_samples),
        "reverse_steps": method.steps_per_chunk(),
        "chunks": n_chunks,
        "fit_steps": args.fit_steps,
        "fit_s": fit_s,
        "impute_s": impute_s,
        "cells_per_s": args.cells / impute_s,
        "imputed_entries_per_s": float(target.sum()) * method.n_samples / impute_s,
        "peak_memory_mb": peak_memory_mb(device),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps({key: report[key] for key in ("device", "cells", "impute_s", "cells_per_s")}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
