"""Leaderboard exports: Markdown, CSV (one line per row and metric) and a static HTML page.

`export_task` writes ``<task>.md``, ``<task>.csv``, ``<task>.html`` and ``<task>.png`` (the bar plots)
into a directory; `countsbench leaderboard --export leaderboards/` regenerates the committed snapshots.
Hand-written notes (how the runs were made, a reading of the table) go below `NOTES_MARKER` in the
Markdown file: a re-export replaces the table and keeps them.
"""

from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path

from leaderboards import scaling, significance
from leaderboards.table import COSTS, Leaderboard

LEGEND = (
    "Mean ± standard error over seeds; (bs x): bootstrap standard error over test cells where the metric has one. "
    "↓ lower is better, ↑ higher is better, →v closest to v is best. "
    f"{significance.RULE} {scaling.RULE} "
    "Failed: seeds whose latest run failed; missing: seeds other rows ran but this row did not. "
    "Train time excludes runs that reused a model fitted by another cell."
)


#: Everything below this line of an exported ``<task>.md`` is kept when the table is re-exported.
NOTES_MARKER = "<!-- countsbench: notes below this line are kept when the leaderboard is re-exported -->"


def markdown(board: Leaderboard) -> str:
    header = board.header()
    lines = [f"# Leaderboard: {board.task}", "", LEGEND, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |" for cells in board.table(("**", "**"))
    ]
    notes = board.notes()
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def csv_text(board: Leaderboard) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["task", "method", "variant", "role", "seeds_ok", "failed", "missing", "summary_score", "metric", "direction",
         "mean", "se_seeds", "se_bootstrap", "scaled", "best"]
    )  # fmt: skip
    best = {m: board.best(m) for m in board.metrics}
    for row in board.sorted_rows():
        common = [board.task, row.method, row.variant, row.role, len(row.seeds_ok), len(row.seeds_failed)]
        common += [board.missing(row), _number(board.summary_score(row))]
        for metric in board.metrics:
            mean, se = row.mean_se(metric)
            scaled = board.scaled(row, metric)
            writer.writerow(
                common
                + [metric, board.direction(metric), _number(mean), _number(se), _number(row.bootstrap_se(metric))]
                + [_number(scaled), best[metric] is row]
            )
        for name, _ in COSTS:
            mean, se = row.mean_se(name)
            writer.writerow(common + [name, "cost", _number(mean), _number(se), "", "", False])
    return buffer.getvalue()


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else ""


def html_page(board: Leaderboard, plot_name: str | None = None) -> str:
    """A self-contained static page (no scripts); the best values in bold."""
    marker = ("\x00b\x00", "\x00/b\x00")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in board.header())
    body = []
    for cells in board.table(marker):
        tds = []
        for cell in cells:
            text = html.escape(cell).replace(marker[0], "<strong>").replace(marker[1], "</strong>")
            tds.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
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
        f'<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>',
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
    """Write the task's Markdown, CSV, HTML and PNG; returns the paths written."""
    from leaderboards.plots import bar_plots

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plot = directory / f"{board.task}.png"
    bar_plots(board, plot)
    written = [plot]
    markdown_path = directory / f"{board.task}.md"
    notes = _kept_notes(markdown_path)
    for suffix, text in (
        ("md", markdown(board) + notes),
        ("csv", csv_text(board)),
        ("html", html_page(board, plot.name)),
    ):
        path = directory / f"{board.task}.{suffix}"
        path.write_text(text)
        written.append(path)
    return written


def _kept_notes(path: Path) -> str:
    """The marker and the notes after it in an earlier export of ``path`` ("" when there are none)."""
    if not path.is_file():
        return ""
    text = path.read_text()
    at = text.find(NOTES_MARKER)
    return "" if at < 0 else "\n" + text[at:]
