"""Atlas-scale benchmark: a synthetic atlas prepared, then one method run on it, with time and peak
memory per stage (each stage in its own process, so each peak is its own).

    python benchmarks/atlas_scale.py --n-cells 1000000 --method countsdiff --set steps=2000
    # on a GPU: the paper network, a short fit, then imputation of the synthetic atlas' 5,000-cell
    # evaluation subsample (the paper's 50,000 are the fetal / heart tasks', from the user's atlas files)
    python benchmarks/atlas_scale.py --n-cells 500000 --profile paper --set steps=200 \
        --output benchmarks/results/atlas_scale_gpu_paper.json

Writes a JSON file (default benchmarks/results/atlas_scale.json) with, per stage, the wall time and
the peak resident memory of the process that ran it, plus the run's own cost breakdown
(fit, inference, scoring) from its result JSON. Target (issue 6): every stage under 6 GB.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_stage(argv: list[str]) -> dict:
    """Run ``countsbench ARGV`` in a fresh interpreter; its wall time and peak RSS."""
    code = (
        "import json, resource, sys, time\n"
        "from countsbench.cli import main\n"
        "t = time.perf_counter(); rc = main(sys.argv[1:])\n"
        "print(json.dumps({'rc': rc, 'wall_s': time.perf_counter() - t,"
        " 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"stage {argv[0]} failed:\n{out.stderr[-3000:]}")
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    if stats["rc"] != 0:
        raise SystemExit(f"stage {argv[0]} exited {stats['rc']}:\n{out.stderr[-3000:]}")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-cells", type=int, default=1_000_000)
    parser.add_argument("--n-genes", type=int, default=1000)
    parser.add_argument("--method", default="countsdiff")
    parser.add_argument("--task", default="synthetic_mcar")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--profile", default="quick", choices=("quick", "paper"))
    parser.add_argument("--workdir", type=Path, default=None, help="keep data and results here (default: temporary)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "atlas_scale.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        data, results = work / "data", work / "results"
        figures: dict = {
            "n_cells": args.n_cells,
            "n_genes": args.n_genes,
            "method": args.method,
            "task": args.task,
            "profile": args.profile,
            "overrides": args.set,
            "machine": {"platform": platform.platform(), "python": platform.python_version()},
            "stages": {},
        }
        prepare = ["prepare", "synthetic", "--n-cells", str(args.n_cells), "--n-genes", str(args.n_genes)]
        figures["stages"]["prepare"] = run_stage([*prepare, "--data-dir", str(data)])
        figures["data_file_mb"] = (data / "synthetic.h5ad").stat().st_size / 2**20
        run = ["run", "--method", args.method, "--task", args.task, "--device", args.device, "--profile", args.profile]
        run += ["--no-model-cache"]
        run += [item for pair in args.set for item in ("--set", pair)]
        started = time.perf_counter()
        figures["stages"]["run"] = run_stage([*run, "--data-dir", str(data), "--results-dir", str(results)])
        figures["stages"]["run"]["wall_with_startup_s"] = time.perf_counter() - started
        (result_file,) = list((results / "cells").glob("*/result.json"))
        result = json.loads(result_file.read_text())
        figures["run_costs"] = result["costs"]
        figures["run_profile"], figures["run_config"] = result["profile"], result["config"]
        figures["run_metrics"] = result["metrics"]
        figures["device"] = result["provenance"]["device"]
        figures["evaluated_test_cells"] = result["task_description"].get("max_eval_cells")
    figures["peak_rss_mb_max"] = max(stage["peak_rss_mb"] for stage in figures["stages"].values())
    figures["under_6_gb"] = figures["peak_rss_mb_max"] < 6 * 1024
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
