"""``countsbench leaderboard``: a task's leaderboard from the MLflow runs, shown or exported.

countsbench leaderboard --task pbmc_mcar                  # the task's headline metrics, scaled score, costs
countsbench leaderboard --task pbmc_mcar --all            # every metric (--metrics rmse,mmd: those)
countsbench leaderboard --task pbmc_mcar --format csv     # raw numbers, one row per (method, variant)
countsbench leaderboard --export leaderboards/            # every task with runs: .md .csv .html .png

Formats: ``table`` (the terminal; method names are never wrapped: a table wider than the terminal
is split into column blocks that each repeat the method column, and a pipe gets one line per row),
``markdown`` and ``html`` (mean ± s.e. text), ``csv``, ``tsv`` and ``json`` (raw numbers,
`Leaderboard.records`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from countsbench.commands.common import add_plugin, add_results_dir, print_table
from countsbench.config import ConfigError
from countsbench.registry import REGISTRY
from countsbench.results import ResultStore

FORMATS = ("table", "markdown", "csv", "tsv", "json", "html")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("leaderboard", help="show or export leaderboards from the MLflow runs")
    parser.add_argument(
        "--task", action="append", default=[], help="task name (repeatable; default with --export: all)"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="table: aligned on a terminal, one line per row in a pipe"
    )
    columns = parser.add_mutually_exclusive_group()
    columns.add_argument("--metrics", metavar="A,B,...", help="the metric columns to show (default: the headline)")
    columns.add_argument("--all", action="store_true", help="show every metric, not only the task's headline")
    parser.add_argument(
        "--export", type=Path, metavar="DIR", help="write <task>.md/.csv/.html/.png into DIR (headline and all)"
    )
    add_results_dir(parser)
    add_plugin(parser)
    parser.set_defaults(func=main)


def tasks_with_runs(results_dir: Path) -> list[str]:
    from countsbench.tracking import Tracker

    experiments = Tracker(results_dir).client.search_experiments()
    return sorted(e.name for e in experiments if e.name in REGISTRY.tasks)


def column_choice(args: argparse.Namespace) -> str | list[str]:
    if args.all:
        return "all"
    if args.metrics is not None:
        names = [name.strip() for name in args.metrics.split(",") if name.strip()]
        if not names:
            raise ConfigError("--metrics needs at least one metric name")
        return names
    return "headline"


def main(args: argparse.Namespace) -> int:
    from countsbench.leaderboards import delimited_text, export_task, html_page, json_text, markdown, task_leaderboard
    from countsbench.leaderboards.export import kept_notes

    for task in args.task:
        REGISTRY.tasks.get(task)  # unknown names fail with the known ones
    if args.export is None and len(args.task) != 1:
        raise ConfigError("give one --task to show (or --export DIR for several)")
    if args.export is not None and (args.all or args.metrics is not None):
        raise ConfigError("--metrics and --all choose the columns shown; --export always writes headline and all")
    choice = column_choice(args)
    ResultStore(args.results_dir).require_existing()
    tasks = args.task or tasks_with_runs(args.results_dir)
    if not tasks:
        print(f"countsbench: no runs recorded in {args.results_dir}", file=sys.stderr)
        return 1
    if args.export is not None:
        for task in tasks:  # refuse before any page is written, not after some
            kept_notes(Path(args.export) / f"{task}.md")
    status = 0
    for task in tasks:
        board = task_leaderboard(task, args.results_dir)
        if not board.rows:
            print(f"countsbench: no runs recorded for task {task!r} in {args.results_dir}", file=sys.stderr)
            status = 1
            continue
        if args.export is not None:
            for path in export_task(board, args.export):
                print(path)
            continue
        metrics = board.columns(choice)
        if args.format == "markdown":
            print(markdown(board, metrics), end="")
        elif args.format in ("csv", "tsv"):
            print(delimited_text(board, metrics, "," if args.format == "csv" else "\t"), end="")
        elif args.format == "json":
            print(json_text(board, metrics), end="")
        elif args.format == "html":
            print(html_page(board, metrics=metrics), end="")
        else:
            shown = "headline metrics" if choice == "headline" else f"{len(metrics)} of {len(board.metrics)} metrics"
            title = f"leaderboard: {task}, {shown} (mean ± s.e. over seeds; * best beyond noise)"
            print_table(title, board.header(metrics), board.table(metrics=metrics), split=True)
            if len(metrics) < len(board.metrics):
                print(
                    f"countsbench: {len(metrics)} of {len(board.metrics)} metrics shown; --all or --metrics a,b "
                    "for others (the scaled score averages all of them)",
                    file=sys.stderr,
                )
    return status
