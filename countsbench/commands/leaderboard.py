"""``countsbench leaderboard``: a task's leaderboard from the MLflow runs, shown or exported.

countsbench leaderboard --task pbmc_mcar [--format table|markdown|csv|html]
countsbench leaderboard --export leaderboards/          # every task with runs: .md .csv .html .png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from countsbench.commands.common import add_plugin, add_results_dir, print_table
from countsbench.config import ConfigError
from countsbench.registry import REGISTRY


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("leaderboard", help="show or export leaderboards from the MLflow runs")
    parser.add_argument(
        "--task", action="append", default=[], help="task name (repeatable; default with --export: all)"
    )
    parser.add_argument("--format", choices=["table", "markdown", "csv", "html"], default="table")
    parser.add_argument("--export", type=Path, metavar="DIR", help="write <task>.md/.csv/.html/.png into DIR")
    add_results_dir(parser)
    add_plugin(parser)
    parser.set_defaults(func=main)


def tasks_with_runs(results_dir: Path) -> list[str]:
    from countsbench.tracking import Tracker

    experiments = Tracker(results_dir).client.search_experiments()
    return sorted(e.name for e in experiments if e.name in REGISTRY.tasks)


def main(args: argparse.Namespace) -> int:
    from leaderboards import build_leaderboard, csv_text, export_task, html_page, markdown

    for task in args.task:
        REGISTRY.tasks.get(task)  # unknown names fail with the known ones
    if args.export is None and len(args.task) != 1:
        raise ConfigError("give one --task to show (or --export DIR for several)")
    tasks = args.task or tasks_with_runs(args.results_dir)
    if not tasks:
        print(f"countsbench: no runs recorded in {args.results_dir}", file=sys.stderr)
        return 1
    status = 0
    for task in tasks:
        order = tuple(REGISTRY.tasks.get(task).factory().default_metrics)
        board = build_leaderboard(task, args.results_dir, order)
        if not board.rows:
            print(f"countsbench: no runs recorded for task {task!r} in {args.results_dir}", file=sys.stderr)
            status = 1
            continue
        if args.export is not None:
            for path in export_task(board, args.export):
                print(path)
        elif args.format == "markdown":
            print(markdown(board), end="")
        elif args.format == "csv":
            print(csv_text(board), end="")
        elif args.format == "html":
            print(html_page(board), end="")
        else:
            print_table(
                f"leaderboard: {task} (mean ± s.e. over seeds; * best beyond noise)", board.header(), board.table()
            )
    return status
