"""``countsbench run``: one method on one task with one seed, recorded as JSON and in MLflow (whose
``leaderboard`` run of the task is then refreshed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from countsbench.commands.common import add_plugin, add_results_dir, print_table
from countsbench.config import PROFILES, parse_assignments, parse_seed
from countsbench.context import DEVICES
from countsbench.registry import REGISTRY
from countsbench.runner import CellRequest, publish_leaderboard, run_cell


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run one method on one task and record the result")
    parser.add_argument(
        "--method", required=True, help="a registered method (`countsbench list methods`; its settings: --params NAME)"
    )
    parser.add_argument("--task", required=True, help="a registered task (`countsbench list tasks`)")
    parser.add_argument(
        "--seed", type=parse_seed, default=0, help="the method's seed, 0..2**32-1 (splits and masks belong to the task)"
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="quick",
        help="hyperparameter defaults: quick (a CPU, the default) or paper (the paper's configuration, for a GPU)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one hyperparameter (repeatable; unknown keys and wrongly typed values are errors)",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto (a CUDA GPU when visible), cpu, cuda")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="user-supplied task data (default $COUNTSBENCH_DATA or ./countsbench-data)",
    )
    parser.add_argument("--resume", action="store_true", help="skip the cell if it already has a successful result")
    parser.add_argument(
        "--with-controls",
        action="store_true",
        help="also run the task's control methods for this seed (skipped where already recorded), "
        "so the leaderboard has the rows its scaled score is anchored on",
    )
    parser.add_argument("--no-model-cache", action="store_true", help="always fit; never reuse a cached fitted model")
    add_results_dir(parser)
    add_plugin(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    request = CellRequest(
        method=args.method,
        task=args.task,
        seed=args.seed,
        profile=args.profile,
        overrides=parse_assignments(args.set),
        device=args.device,
    )
    result = run_cell(
        request,
        args.results_dir,
        data_dir=args.data_dir,
        resume=args.resume,
        cache_models=not args.no_model_cache,
        log=_say,
    )
    failed_controls = _run_controls(args) if args.with_controls else []
    if result.get("mlflow_run_id"):
        from countsbench.tracking import Tracker, experiment_name

        publish_leaderboard(Tracker(args.results_dir), experiment_name(result))
    where = Path(args.results_dir) / "cells" / result["cell_id"]
    if result["status"] != "ok":
        print(f"countsbench: run failed: {result['error']['message']} (recorded in {where})", file=sys.stderr)
        return 1
    directions = result["metric_directions"]
    rows = [[k, "-" if v is None else f"{v:.6g}", directions.get(k, "")] for k, v in result["metrics"].items()]
    for name in ("fit_s", "infer_s", "eval_s", "duration_s", "peak_memory_mb"):
        value = result["costs"].get(name)
        if value is not None:
            rows.append([name, f"{value:.4g}", "cost"])
    title = f"{result['variant']} on {result['task']}, seed {result['seed']}"
    print_table(title, ["metric", "value", "direction"], rows)
    print(f"result: {where / 'result.json'}  mlflow run: {result.get('mlflow_run_id')}")
    return 1 if failed_controls else 0


def _say(message: str) -> None:
    print(f"countsbench: {message}", file=sys.stderr)


def _run_controls(args: argparse.Namespace) -> list[str]:
    """Run each control of the task at the run's seed and profile, skipping cells already recorded; the
    names of the controls that failed (each reported)."""
    failed = []
    for control in REGISTRY.controls_for(args.task):
        if control == args.method:
            continue
        request = CellRequest(method=control, task=args.task, seed=args.seed, profile=args.profile, device=args.device)
        result = run_cell(request, args.results_dir, data_dir=args.data_dir, resume=True, log=_say)
        if result["status"] != "ok":
            failed.append(control)
            _say(f"control {control} failed: {result['error']['message']}")
    return failed
