"""``countsbench leaderboard --task T``: rows = (method, variant), mean ± standard error over seeds."""

from __future__ import annotations

import argparse
import sys

from countsbench.commands.common import add_plugin, add_results_dir, print_table
from countsbench.registry import REGISTRY


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("leaderboard", help="show a task's leaderboard from the MLflow runs")
    parser.add_argument("--task", required=True)
    parser.add_argument("--format", choices=["table", "markdown", "csv"], default="table")
    add_results_dir(parser)
    add_plugin(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from leaderboards import build_leaderboard

    order = tuple(REGISTRY.tasks.get(args.task).factory().default_metrics)
    board = build_leaderboard(args.task, args.results_dir, order)
    if not board.rows:
        print(f"countsbench: no runs recorded for task {args.task!r} in {args.results_dir}", file=sys.stderr)
        return 1
    if args.format == "markdown":
        print(board.markdown(), end="")
    elif args.format == "csv":
        print(board.csv(), end="")
    else:
        print_table(f"leaderboard: {args.task} (mean ± s.e. over seeds)", board.header(), board.table())
    return 0
