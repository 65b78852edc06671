"""Leaderboard exports: Markdown, delimited text (CSV, TSV), JSON and a static HTML page.

The text formats (Markdown, HTML) show the cells of `Leaderboard.table` (mean ± s.e.); the data
formats (CSV, TSV, JSON) the raw numbers of `Leaderboard.records`, one row per (method, variant),
so ``pandas.read_csv`` gives one row per leaderboard row. Every format takes the metric columns to
show; without them a Markdown or HTML document has the headline table first and the full table
below it, and a data format has every metric.

`export_task` writes ``<task>.md``, ``<task>.csv``, ``<task>.html`` and ``<task>.png`` (the bar plots)
into a directory; `countsbench leaderboard --export leaderboards/` regenerates the committed snapshots.
Hand-written notes (how the runs were made, a reading of the table) go below `NOTES_MARKER`, which every
export writes at the end of the Markdown file: a re-export replaces the tables and keeps the notes, and it
refuses (before writing anything) to overwrite a page that has lost the marker, whose notes it would drop.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

from countsbench.config import ConfigError
from countsbench.leaderboards import scaling, significance
from countsbench.leaderboards.table import Leaderboard

LEGEND = (
    "Mean ± standard error over seeds; (bs x): bootstrap standard error over test cells where the metric has one. "
    "↓ lower is better, ↑ higher is better, →v closest to v is best. "
    f"{significance.RULE} {scaling.RULE} "
    "Failed: seeds whose latest run failed; missing: seeds other rows ran but this row did not. "
    "Train time excludes runs that reused a model fitted by another cell."
)


#: Under a table that shows only some of the metrics.
SUBSET_NOTE = (
    "This table shows {shown} of the {total} metrics; the scaled score averages all of them "
    "(`countsbench leaderboard --all` shows every column)."
)


#: Everything below this line of an exported ``<task>.md`` is kept when the table is re-exported.
NOTES_MARKER = "<!-- countsbench: notes below this line are kept when the leaderboard is re-exported -->"


def _sections(board: Leaderboard, metrics: Sequence[str] | None) -> list[tuple[str | None, list[str]]]:
    """(heading, metric columns) of each table: the columns given, else headline then all."""
    if metrics is not None:
        return [(None, list(metrics))]
    headline = board.headline_metrics
    if headline == board.metrics:
        return [(None, headline)]
    return [("Headline metrics", headline), ("All metrics", list(board.metrics))]


def _subset_note(board: Leaderboard, columns: Sequence[str]) -> str | None:
    if len(columns) >= len(board.metrics):
        return None
    return SUBSET_NOTE.format(shown=len(columns), total=len(board.metrics))


def markdown_table(board: Leaderboard, metrics: Sequence[str] | None = None) -> list[str]:
    """The lines of one pipe table (best values in bold)."""
    header = board.header(metrics)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
        for cells in board.table(("**", "**"), metrics)
    ]


def markdown(board: Leaderboard, metrics: Sequence[str] | None = None) -> str:
    """A Markdown document: one table of ``metrics``, or the headline table and the full one below."""
    lines = [f"# Leaderboard: {board.task}", "", LEGEND, ""]
    for heading, columns in _sections(board, metrics):
        if heading is not None:
            lines += [f"## {heading}", ""]
        lines += markdown_table(board, columns) + [""]
        note = _subset_note(board, columns)
        if note:
            lines += [note, ""]
    notes = board.notes()
    if notes:
        lines += [*(f"- {note}" for note in notes), ""]
    return "\n".join(lines[:-1]) + "\n"


def delimited_text(board: Leaderboard, metrics: Sequence[str] | None = None, delimiter: str = ",") -> str:
    """CSV (or TSV with ``delimiter="\\t"``) of `Leaderboard.records`: raw numbers, empty where none."""
    records = board.records(metrics)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    columns = list(records[0]) if records else ["task", "method", "variant"]
    writer.writerow(columns)
    for record in records:
        writer.writerow([_number(record[c]) if isinstance(record[c], float) else record[c] for c in columns])
    return buffer.getvalue()


def csv_text(board: Leaderboard, metrics: Sequence[str] | None = None) -> str:
    return delimited_text(board, metrics, ",")


def json_text(board: Leaderboard, metrics: Sequence[str] | None = None) -> str:
    """``{"task", "directions": {metric: direction}, "rows": [record, ...]}``; NaN as null."""
    shown = list(board.metrics) if metrics is None else list(metrics)
    payload = {
        "task": board.task,
        "directions": {m: board.direction(m) for m in shown},
        "headline": board.headline_metrics,
        "rows": [
            {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in record.items()}
            for record in board.records(shown)
        ],
    }
    return json.dumps(payload, indent=1, allow_nan=False) + "\n"


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else ""


def _html_table(board: Leaderboard, metrics: Sequence[str], table_id: str) -> str:
    marker = ("\x00b\x00", "\x00/b\x00")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in board.header(metrics))
    body = []
    for cells in board.table(marker, metrics):
        tds = []
        for cell in cells:
            text = html.escape(cell).replace(marker[0], "<strong>").replace(marker[1], "</strong>")
            tds.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def html_page(board: Leaderboard, plot_name: str | None = None, metrics: Sequence[str] | None = None) -> str:
    """A self-contained static page (no scripts); the best values in bold."""
    tables = []
    for index, (heading, columns) in enumerate(_sections(board, metrics)):
        table_id = "leaderboard" if index == 0 else "leaderboard-all"
        if heading is not None:
            tables.append(f"<h2>{html.escape(heading)}</h2>")
        tables.append(_html_table(board, columns, table_id))
        note = _subset_note(board, columns)
        if note:
            tables.append(f"<p>{html.escape(note)}</p>")
    failures = [f"<li>{html.escape(r.variant)}: {html.escape(e)}</li>" for r in board.rows for e in r.errors]
    title = f"countsbench leaderboard: {html.escape(board.task)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>{html.escape(LEGEND)}</p>",
        *tables,
    ]
    notes = board.notes()
    if notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>")
    if failures:
        parts.append("<h2>Failures</h2><ul>" + "".join(failures) + "</ul>")
    if plot_name:
        parts.append(f'<h2>Metrics</h2><img src="{html.escape(plot_name)}" alt="bar plots of the metrics">')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def export_task(board: Leaderboard, directory: Path) -> list[Path]:
    """Write the task's Markdown (headline table, then all), CSV (every metric), HTML and PNG; returns
    the paths written."""
    from countsbench.leaderboards.plots import bar_plots

    directory = Path(directory)
    markdown_path = directory / f"{board.task}.md"
    notes = kept_notes(markdown_path)
    directory.mkdir(parents=True, exist_ok=True)
    plot = directory / f"{board.task}.png"
    bar_plots(board, plot)
    written = [plot]
    for suffix, text in (
        ("md", markdown(board) + notes),
        ("csv", csv_text(board)),
        ("html", html_page(board, plot.name)),
    ):
        path = directory / f"{board.task}.{suffix}"
        path.write_text(text)
        written.append(path)
    return written


def kept_notes(path: Path) -> str:
    """The marker and the notes after it in an earlier export of ``path`` (just the marker for a new page).

    A page without the marker cannot tell its notes from its tables, so it is not overwritten."""
    if not path.is_file():
        return f"\n{NOTES_MARKER}\n"
    text = path.read_text()
    at = text.find(NOTES_MARKER)
    if at < 0:
        raise ConfigError(
            f"{path} has no notes marker, so re-exporting would drop any notes in it: put the line "
            f"{NOTES_MARKER!r} above them (or delete the file) and export again"
        )
    return "\n" + text[at:]
