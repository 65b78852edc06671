"""Per-task leaderboard: rows are (method, variant), columns are metrics as mean and standard error
over seeds.

Runs are read from MLflow. A cell (same method, task, seed and config) may have been run more than
once; only its latest finished run counts. Failed cells are counted, not averaged. Rows are never
averaged across configs: each variant is its own row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from countsbench.tracking import COST_METRICS, DIRECTION_TAG, Tracker

COST_COLUMNS = ("duration_s", "peak_memory_mb")


@dataclass
class Row:
    method: str
    variant: str
    role: str
    seeds: list[int] = field(default_factory=list)
    failed: int = 0
    values: dict[str, list[float]] = field(default_factory=dict)

    def mean_se(self, metric: str) -> tuple[float, float]:
        values = [v for v in self.values.get(metric, []) if v is not None and math.isfinite(v)]
        if not values:
            return math.nan, math.nan
        mean = float(np.mean(values))
        se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
        return mean, se


@dataclass
class Leaderboard:
    task: str
    metrics: list[str]
    directions: dict[str, str]
    rows: list[Row]

    def sort_key(self, row: Row) -> float:
        if not self.metrics:
            return 0.0
        metric = self.metrics[0]
        mean, _ = row.mean_se(metric)
        if math.isnan(mean):
            return math.inf
        direction = self.directions.get(metric, "minimize")
        if direction == "maximize":
            return -mean
        if direction.startswith("target:"):
            return abs(mean - float(direction.split(":", 1)[1]))
        return mean

    def header(self) -> list[str]:
        arrows = {"minimize": "↓", "maximize": "↑"}
        columns = ["method", "n"]
        for metric in self.metrics + list(COST_COLUMNS):
            direction = self.directions.get(metric, "")
            mark = arrows.get(direction, f"→{direction.split(':', 1)[1]}" if direction.startswith("target:") else "")
            columns.append(f"{metric} {mark}".strip())
        return columns + ["failed"]

    def table(self) -> list[list[str]]:
        lines = []
        for row in sorted(self.rows, key=self.sort_key):
            cells = [row.variant, str(len(row.seeds))]
            for metric in self.metrics + list(COST_COLUMNS):
                cells.append(format_mean_se(*row.mean_se(metric)))
            cells.append(str(row.failed))
            lines.append(cells)
        return lines

    def markdown(self) -> str:
        header = self.header()
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in self.table()]
        return "\n".join(out) + "\n"

    def csv(self) -> str:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["method", "variant", "role", "n_seeds", "failed", "metric", "mean", "se"])
        for row in self.rows:
            for metric in self.metrics + list(COST_COLUMNS):
                mean, se = row.mean_se(metric)
                writer.writerow([row.method, row.variant, row.role, len(row.seeds), row.failed, metric, mean, se])
        return buffer.getvalue()


def format_mean_se(mean: float, se: float) -> str:
    if math.isnan(mean):
        return "-"
    digits = 3 if abs(mean) >= 0.01 or mean == 0 else 6
    text = f"{mean:.{digits}g}" if abs(mean) < 1e4 else f"{mean:.4g}"
    if math.isnan(se):
        return text
    return f"{text} ± 0" if se <= 1e-12 * max(abs(mean), 1e-300) else f"{text} ± {se:.2g}"


def build_leaderboard(task: str, results_dir: Path, metric_order: tuple[str, ...] = ()) -> Leaderboard:
    """Read the task's MLflow runs and aggregate them (latest run per cell)."""
    tracker = Tracker(results_dir)
    experiment_id = tracker.experiment_id(task, create=False)
    if experiment_id is None:
        return Leaderboard(task, [], {}, [])
    runs = tracker.client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], max_results=50000)
    latest: dict[str, object] = {}
    for run in runs:
        latest.setdefault(run.data.tags.get("cell_id", run.info.run_id), run)
    rows: dict[str, Row] = {}
    directions: dict[str, str] = {}
    seen_metrics: list[str] = []
    for run in latest.values():
        tags = run.data.tags
        row = rows.setdefault(tags["variant"], Row(tags.get("method", "?"), tags["variant"], tags.get("role", "?")))
        if run.info.status != "FINISHED":
            row.failed += 1
            continue
        row.seeds.append(int(tags.get("seed", 0)))
        for name, value in run.data.metrics.items():
            row.values.setdefault(name, []).append(value)
            if name not in COST_METRICS and name not in seen_metrics:
                seen_metrics.append(name)
        for key, value in tags.items():
            if key.startswith(DIRECTION_TAG):
                directions[key[len(DIRECTION_TAG) :]] = value
    directions.update({c: "minimize" for c in COST_COLUMNS})
    ordered = [m for m in metric_order if m in seen_metrics] + [m for m in seen_metrics if m not in metric_order]
    return Leaderboard(task, ordered, directions, list(rows.values()))
