"""The ``countsbench`` command line: list, run, leaderboard, ui."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from countsbench.config import PROFILES, ConfigError, parse_assignments
from countsbench.context import DEVICES, DeviceError
from countsbench.data import CountDataError
from countsbench.registry import REGISTRY, RegistryError
from countsbench.results import DEFAULT_RESULTS_DIR, ResultsDirError
from countsbench.runner import CellRequest, TrackingError, run_cell
from countsbench.task import TaskDataMissing

USER_ERRORS = (RegistryError, ConfigError, CountDataError, TaskDataMissing, DeviceError, ResultsDirError, TrackingError)


def _console():
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def _print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    _console().print(table)


def cmd_list(args: argparse.Namespace) -> int:
    what = args.what
    if what in ("methods", "all"):
        rows = [[s.name, s.role, ",".join(s.kinds), s.summary, s.paper] for s in REGISTRY.methods]
        _print_table("methods", ["name", "role", "task kinds", "summary", "paper"], rows)
    if what in ("tasks", "all"):
        rows = [[s.name, s.kind, s.summary, s.paper] for s in REGISTRY.tasks]
        _print_table("tasks", ["name", "kind", "summary", "paper"], rows)
    if what in ("metrics", "all"):
        rows = [
            [s.name, s.direction if s.target is None else f"target {s.target}", ",".join(s.kinds), s.summary]
            for s in REGISTRY.metrics
        ]
        _print_table("metrics", ["name", "direction", "task kinds", "summary"], rows)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
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
        log=lambda message: print(f"countsbench: {message}", file=sys.stderr),
    )
    where = Path(args.results_dir) / "cells" / result["cell_id"]
    if result["status"] != "ok":
        print(f"countsbench: run failed: {result['error']['message']} (recorded in {where})", file=sys.stderr)
        return 1
    rows = [
        [name, "-" if v is None else f"{v:.6g}", result["metric_directions"].get(name, "")]
        for name, v in result["metrics"].items()
    ]
    costs = result["costs"]
    for name in ("fit_s", "infer_s", "eval_s", "duration_s", "peak_memory_mb"):
        if costs.get(name) is not None:
            rows.append([name, f"{costs[name]:.4g}", "cost"])
    _print_table(
        f"{result['variant']} on {result['task']}, seed {result['seed']}", ["metric", "value", "direction"], rows
    )
    print(f"result: {where / 'result.json'}  mlflow run: {result.get('mlflow_run_id')}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from leaderboards import build_leaderboard

    task = REGISTRY.tasks.get(args.task)
    order = tuple(task.factory().default_metrics)
    board = build_leaderboard(args.task, args.results_dir, order)
    if not board.rows:
        print(f"no runs recorded for task {args.task!r} in {args.results_dir}", file=sys.stderr)
        return 1
    if args.format == "markdown":
        print(board.markdown(), end="")
    elif args.format == "csv":
        print(board.csv(), end="")
    else:
        _print_table(f"leaderboard: {args.task} (mean ± s.e. over seeds)", board.header(), board.table())
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from countsbench.tracking import tracking_uri

    results_dir = Path(args.results_dir).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri(results_dir),
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        "1",
    ]
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    print(
        f"countsbench: MLflow UI for {results_dir} at http://{args.host}:{args.port} (Ctrl-C to stop)", file=sys.stderr
    )
    os.execve(sys.executable, command, env)
    return 0  # pragma: no cover - execve does not return


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="countsbench", description=__doc__)
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE to register its methods, tasks or metrics (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def results_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--results-dir",
            type=Path,
            default=DEFAULT_RESULTS_DIR,
            help=f"results directory (default ./{DEFAULT_RESULTS_DIR})",
        )
        p.add_argument(
            "--plugin",
            action="append",
            default=argparse.SUPPRESS,
            metavar="MODULE",
            help="import MODULE to register its methods, tasks or metrics (repeatable)",
        )

    p = sub.add_parser("list", help="list registered methods, tasks or metrics")
    p.add_argument("what", nargs="?", default="all", choices=["methods", "tasks", "metrics", "all"])
    p.add_argument("--plugin", action="append", default=argparse.SUPPRESS, metavar="MODULE")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run one method on one task and record the result")
    p.add_argument("--method", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", choices=PROFILES, default="quick")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where user-supplied task data lives (default $COUNTSBENCH_DATA or ./countsbench-data)",
    )
    p.add_argument("--resume", action="store_true", help="skip the cell if it already has a successful result")
    p.add_argument("--no-model-cache", action="store_true", help="always fit, never reuse a cached fitted model")
    results_option(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("leaderboard", help="show a task's leaderboard from the MLflow runs")
    p.add_argument("--task", required=True)
    p.add_argument("--format", choices=["table", "markdown", "csv"], default="table")
    results_option(p)
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("ui", help="serve the MLflow UI for the results on 127.0.0.1")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    results_option(p)
    p.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        REGISTRY.load_all(tuple(args.plugin))
        return args.func(args)
    except USER_ERRORS as error:
        print(f"countsbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("countsbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
