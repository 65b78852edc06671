"""Bar plots of a leaderboard: one panel per metric, a bar per row, error bars of ± 1 s.e.

The error bar is the standard error over seeds, combined with the bootstrap standard error where the
metric has one (sqrt(se_seeds² + se_bootstrap²)); a row without a value has no bar.
"""

from __future__ import annotations

import math
from pathlib import Path

from countsbench.leaderboards.table import Leaderboard
from countsbench.registry import EXTERNAL_ROLE

#: Bar colours by row role (others: blue).
ROLE_COLORS = {"control": "#999999", EXTERNAL_ROLE: "#e08a2c"}


def bar_plots(board: Leaderboard, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = board.sorted_rows()
    metrics = board.metrics or ["(no metrics)"]
    columns = min(3, len(metrics))
    lines = math.ceil(len(metrics) / columns)
    figure, axes = plt.subplots(
        lines, columns, figsize=(4.2 * columns, 0.5 + (1.0 + 0.35 * len(rows)) * lines), squeeze=False
    )
    for ax, metric in zip(axes.flat, metrics, strict=False):
        means, errors = [], []
        for row in rows:
            mean, se = row.mean_se(metric)
            bs = row.bootstrap_se(metric)
            means.append(mean if math.isfinite(mean) else 0.0)
            parts = [v for v in (se, bs) if math.isfinite(v)]
            errors.append(math.sqrt(sum(v * v for v in parts)) if parts else 0.0)
        positions = range(len(rows))
        colors = [ROLE_COLORS.get(r.role, "#3b75af") for r in rows]
        ax.barh(list(positions), means, xerr=errors, color=colors, capsize=3)
        ax.set_yticks(list(positions), [r.variant for r in rows], fontsize=8)
        ax.invert_yaxis()
        direction = board.direction(metric)
        ax.set_title(f"{metric} ({direction})", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    legend = (
        "grey: controls, orange: external tools" if any(r.role == EXTERNAL_ROLE for r in rows) else "grey: controls"
    )
    figure.suptitle(f"{board.task}: mean ± s.e. over seeds ({legend})", fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
