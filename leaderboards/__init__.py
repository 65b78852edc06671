"""Leaderboards: MLflow runs of a task turned into tables (and committed snapshots)."""

from leaderboards.table import Leaderboard, build_leaderboard

__all__ = ["Leaderboard", "build_leaderboard"]
