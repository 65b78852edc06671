"""MMD and sliced Wasserstein at the paper's bootstrap size: 50,000 x 1,000 count matrices.

Each metric runs in a fresh subprocess so its peak resident memory (ru_maxrss, imports and the two
input matrices included) is its own. Writes JSON (default benchmarks/results/metrics_scale.json).

    python benchmarks/metrics_scale.py [--cells 50000] [--genes 1000] [--device cpu] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

METRICS = ("mmd", "sliced_wasserstein")


def matrices(cells: int, genes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sparse-ish negative-binomial counts (about 60% zeros) and an imputation that perturbs half."""
    rng = np.random.default_rng(seed)
    means = rng.gamma(0.5, 2.0, size=genes)
    truth = rng.poisson(rng.gamma(1.0, means, size=(cells, genes)))
    target = rng.random(truth.shape) < 0.5
    imputed = np.where(target, rng.poisson(means, size=truth.shape), truth)
    return truth.astype(np.int64), imputed.astype(np.int64)


def run_one(metric: str, cells: int, genes: int, device: str) -> dict:
    from countsbench.metrics.distributional import sliced_wasserstein_distance
    from countsbench.metrics.kernels import mmd2_unbiased

    truth, imputed = matrices(cells, genes)
    x, y = truth.astype(np.float64), imputed.astype(np.float64)
    del truth, imputed
    start = time.perf_counter()
    if metric == "mmd":
        value = mmd2_unbiased(x, y, device=device)
    else:
        value = sliced_wasserstein_distance(x, y, n_projections=1000)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"metric": metric, "value": value, "seconds": seconds, "peak_memory_mb": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--genes", type=int, default=1_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--metric", choices=METRICS, help=argparse.SUPPRESS)  # the child's job
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "metrics_scale.json")
    args = parser.parse_args()
    if args.metric:
        print(json.dumps(run_one(args.metric, args.cells, args.genes, args.device)))
        return 0
    runs = []
    for metric in METRICS:
        command = [sys.executable, __file__, "--metric", metric, "--cells", str(args.cells)]
        command += ["--genes", str(args.genes), "--device", args.device]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(output.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    import torch

    report = {
        "cells": args.cells,
        "genes": args.genes,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
