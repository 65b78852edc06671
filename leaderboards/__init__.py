"""Leaderboards: MLflow runs of a task turned into tables, exports and plots (and committed snapshots)."""

from countsbench.leaderboards.export import csv_text, delimited_text, export_task, html_page, json_text, markdown
from countsbench.leaderboards.table import Leaderboard, Row, build_leaderboard, task_leaderboard

__all__ = [
    "Leaderboard",
    "Row",
    "build_leaderboard",
    "csv_text",
    "delimited_text",
    "export_task",
    "html_page",
    "json_text",
    "markdown",
    "task_leaderboard",
]
