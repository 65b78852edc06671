"""Leaderboards: MLflow runs of a task turned into tables, exports and plots (and committed snapshots)."""

from leaderboards.export import csv_text, export_task, html_page, markdown
from leaderboards.table import Leaderboard, Row, build_leaderboard

__all__ = ["Leaderboard", "Row", "build_leaderboard", "csv_text", "export_task", "html_page", "markdown"]
