"""Helpers shared by the subcommands: options that recur and table printing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from countsbench.results import DEFAULT_RESULTS_DIR


def add_results_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=DEFAULT_RESULTS_DIR,
        help=f"results directory (default ./{DEFAULT_RESULTS_DIR})",
    )


def add_plugin(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    """``--plugin MODULE`` (repeatable), accepted before or after the subcommand."""
    parser.add_argument(
        "--plugin",
        action="append",
        default=[] if top_level else argparse.SUPPRESS,
        metavar="MODULE",
        help="import MODULE to register its methods, tasks or metrics (repeatable)",
    )


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)
