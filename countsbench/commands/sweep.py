"""``countsbench sweep``: a grid of methods x tasks x seeds (x configs) on one machine or Slurm.

    countsbench sweep --methods zero,mean --tasks pbmc_mcar,pbmc_mnar --seeds 0-2 --executor pool --workers 2
    countsbench sweep --file grid.yaml --resume
    countsbench sweep --methods conditional_mean --tasks pbmc_mcar --seeds 0-2 \\
        --grid condition_keys=all,bulk_labels --select-on valid --metric rmse
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from countsbench.commands.common import add_plugin, add_results_dir
from countsbench.config import PROFILES, ConfigError, parse_assignments
from countsbench.context import DEVICES
from countsbench.executors import EXECUTORS, SlurmOptions, make_executor
from countsbench.executors.driver import SweepReport, SweepSettings, run_sweep
from countsbench.executors.grid import (
    SweepSpec,
    expand,
    load_sweep_file,
    parse_grid,
    parse_names,
    parse_seeds,
    spec_from_file,
)
from countsbench.executors.planning import plan_cells
from countsbench.executors.progress import Progress
from countsbench.registry import REGISTRY
from countsbench.runner import CellRequest


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sweep", help="run a grid of methods x tasks x seeds and record every cell")
    grid = parser.add_argument_group("the grid")
    grid.add_argument("--methods", help="comma-separated method names")
    grid.add_argument("--tasks", help="comma-separated task names")
    grid.add_argument("--seeds", default="0", help="seeds: 0-4, 0,2,5 or 0-2,7 (default 0)")
    grid.add_argument("--file", type=Path, help="a YAML grid (methods, tasks, seeds, profile, set, grid, device)")
    grid.add_argument(
        "--profile", choices=PROFILES, default=None, help="hyperparameter profile of every cell (default quick)"
    )
    grid.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed hyperparameter")
    grid.add_argument(
        "--grid", action="append", default=[], metavar="KEY=V1,V2", help="values to cross (METHOD.KEY scopes a key)"
    )
    grid.add_argument("--device", choices=DEVICES, default=None, help="where cells run (default auto: CUDA if visible)")
    grid.add_argument("--metrics", help="comma-separated metrics to compute (default: each task's own)")
    tuning = parser.add_argument_group("tuning on the validation split")
    tuning.add_argument("--select-on", choices=["valid"], help="pick each method's best --grid config on this split")
    tuning.add_argument("--metric", help="the metric the selection optimises (in its registered direction)")
    running = parser.add_argument_group("running")
    running.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="sequential",
        help="sequential: one cell after another in this process; pool: --workers processes; slurm: one job per cell",
    )
    running.add_argument("--workers", type=int, default=None, help="cells at once (pool: default one per GPU or core)")
    running.add_argument("--resume", action="store_true", help="skip cells already recorded (success or failure)")
    running.add_argument("--retry-failed", action="store_true", help="rerun cells whose last attempt failed")
    running.add_argument("--no-model-cache", action="store_true", help="always fit; never reuse a cached model")
    running.add_argument("--data-dir", type=Path, default=None, help="user-supplied task data")
    running.add_argument(
        "--cell-timeout",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop a cell after this long and record it as failed (reason timeout); the pool executor also "
        "kills a worker that does not stop within a grace period",
    )
    slurm = parser.add_argument_group("slurm (submitit)")
    slurm.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's)")
    slurm.add_argument("--time", type=int, default=60, metavar="MINUTES", help="time limit per cell (default 60)")
    slurm.add_argument("--gpus-per-task", type=int, default=0, help="GPUs per cell's job (default 0)")
    slurm.add_argument("--cpus-per-task", type=int, default=None, help="CPU cores per cell's job (default: Slurm's)")
    add_results_dir(parser)
    add_plugin(parser)
    parser.set_defaults(func=main)


def positive_seconds(text: str) -> float:
    import math

    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return seconds


def build_spec(args: argparse.Namespace) -> SweepSpec:
    if args.file is not None:
        if args.methods or args.tasks:
            raise ConfigError("give the grid either with --file or with --methods/--tasks, not both")
        loaded = load_sweep_file(args.file)
    else:
        if not args.methods or not args.tasks:
            raise ConfigError("sweep needs --methods and --tasks (or --file)")
        loaded = {"methods": args.methods, "tasks": args.tasks, "seeds": args.seeds}
    spec = spec_from_file(loaded)
    overrides = dict(spec.overrides, **parse_assignments(args.set))
    grid = dict(spec.grid, **parse_grid(args.grid))
    return SweepSpec(
        spec.methods,
        spec.tasks,
        spec.seeds if args.file is not None else parse_seeds(args.seeds),
        args.profile or spec.profile,
        overrides,
        grid,
        args.device or spec.device,
    )


def check_tuning(args: argparse.Namespace, spec: SweepSpec, metrics: list[str] | None) -> None:
    if args.select_on is None:
        if args.metric:
            raise ConfigError("--metric is the selection metric of --select-on valid; give both")
        return
    if not args.metric:
        raise ConfigError("--select-on valid needs --metric")
    for task in spec.tasks:
        computed = metrics or list(REGISTRY.tasks.get(task).factory().default_metrics)
        if args.metric.split("/", 1)[0] not in computed:
            raise ConfigError(f"--metric {args.metric} is not computed on {task} (metrics: {', '.join(computed)})")


def main(args: argparse.Namespace) -> int:
    spec = build_spec(args)
    metrics = list(parse_names(args.metrics, "metrics")) if args.metrics else None
    check_tuning(args, spec, metrics)
    settings = SweepSettings(
        results_dir=args.results_dir,
        data_dir=args.data_dir,
        metrics=metrics,
        cache_models=not args.no_model_cache,
        plugins=tuple(getattr(args, "plugin", ())),
        resume=args.resume or args.retry_failed,
        retry_failed=args.retry_failed,
        cell_timeout=args.cell_timeout,
    )
    slurm = SlurmOptions(args.partition, args.time, args.gpus_per_task, args.cpus_per_task)
    executor = make_executor(args.executor, Path(args.results_dir) / "sweep", args.workers, slurm)
    say(f"executor: {executor.describe()}")
    if args.select_on is None:
        cells = plan_cells(expand(spec), args.data_dir, metrics)
        say(f"{len(cells)} cells ({len(spec.methods)} methods x {len(spec.tasks)} tasks x {len(spec.seeds)} seeds)")
        report = run_sweep(cells, executor, settings, Progress(len(cells)))
        return finish(report, len(cells))
    return tune_then_test(spec, args, settings, executor, metrics)


def tune_then_test(spec, args, settings, executor, metrics) -> int:
    from countsbench.executors import tuning
    from countsbench.tracking import Tracker

    valid_cells = plan_cells(expand(spec, split="valid"), args.data_dir, metrics)
    say(f"tuning: {len(valid_cells)} validation cells")
    valid_report = run_sweep(valid_cells, executor, settings, Progress(len(valid_cells)))
    choices = tuning.select(valid_cells, valid_report.results, args.metric)
    requests, tags = [], {}
    for choice in choices:
        path = tuning.record(choice, args.results_dir)
        say(
            f"selected {choice.variant} on {choice.task}: mean {choice.metric} {choice.score:.6g} on valid "
            f"({choice.n_configs} configs, {choice.n_cells} cells, {choice.seconds:.1f} s; {path})"
        )
        for seed in spec.seeds:
            requests.append(CellRequest(choice.method, choice.task, seed, spec.profile, choice.overrides, spec.device))
            tags[(choice.method, choice.task)] = tuning.tuning_tags(choice)
    test_cells = plan_cells(requests, args.data_dir, metrics)
    tracker = Tracker(args.results_dir)

    def tag(result: dict) -> None:
        if result.get("mlflow_run_id"):
            for key, value in tags[(result["method"], result["task"])].items():
                tracker.client.set_tag(result["mlflow_run_id"], key, value)

    say(f"testing the selected configs: {len(test_cells)} cells")
    report = run_sweep(test_cells, executor, settings, Progress(len(test_cells)), on_result=tag)
    for result in report.results.values():  # cells recorded before (--resume) get the tags too
        tag(result)
    return finish(report, len(test_cells), valid_failures=len(valid_report.failures))


def say(message: str) -> None:
    print(f"countsbench: {message}", file=sys.stderr)


def finish(report: SweepReport, total: int, valid_failures: int = 0) -> int:
    ok = sum(r["status"] == "ok" for r in report.results.values())
    print(
        f"sweep finished: {ok}/{total} cells ok, {len(report.failures)} failed, "
        f"{report.ran} run now, {report.skipped} already recorded"
    )
    for failure in report.failures:
        print(f"FAILED {failure.cell.label}: {failure.message}")
    if report.failures:
        print("rerun them with: countsbench sweep ... --retry-failed")
    return 1 if report.failures or valid_failures else 0
