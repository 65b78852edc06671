"""Helpers shared by the subcommands: options that recur and table printing."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
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


def print_table(
    title: str, header: list[str], rows: list[list[str]], split: bool = False, width: int | None = None
) -> None:
    """Print a table whose first column (a name) is never wrapped.

    Not a terminal (a pipe, a file): one line per row, however wide. A terminal (``width``, default its
    width): with ``split`` (tables of numbers), columns that do not fit go into further blocks that each
    repeat the first column; without, the other columns fold their text to fit.
    """
    from rich.console import Console

    natural = [_cell_width([name, *(row[i] for row in rows)]) for i, name in enumerate(header)]
    if not sys.stdout.isatty():
        blocks, width = [list(range(len(header)))], _table_width(natural)
    else:
        width = width or shutil.get_terminal_size().columns
        blocks = column_blocks(natural, width) if split else [list(range(len(header)))]
    console = Console(width=max(width, *(_table_width([natural[i] for i in b]) for b in blocks)))
    for number, block in enumerate(blocks):
        caption = title if number == 0 else "(continued)"
        cells = [[row[i] for i in block] for row in rows]
        console.print(_rich_table(caption, [header[i] for i in block], cells, natural[0]))


def column_blocks(widths: Sequence[int], width: int) -> list[list[int]]:
    """Column indices in blocks of at most ``width`` characters, each block starting with column 0."""
    blocks: list[list[int]] = [[0]]
    for index in range(1, len(widths)):
        if len(blocks[-1]) > 1 and _table_width([widths[i] for i in blocks[-1]] + [widths[index]]) > width:
            blocks.append([0])
        blocks[-1].append(index)
    return blocks


def _cell_width(texts: list[str]) -> int:
    from rich.cells import cell_len

    return max(cell_len(line) for text in texts for line in (text.splitlines() or [""]))


def _table_width(widths: Sequence[int]) -> int:
    """Printed width of a rich table with these column contents: padding 1+1 and a border per column."""
    return sum(w + 3 for w in widths) + 1


def _rich_table(title: str, header: list[str], rows: list[list[str]], key_width: int):
    """Cells as plain `Text`: rich markup would eat a variant label's ``[n_samples=5]``."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")
    for index, name in enumerate(header):
        if index == 0:
            table.add_column(Text(name), no_wrap=True, min_width=key_width)
        else:
            table.add_column(Text(name), overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table
