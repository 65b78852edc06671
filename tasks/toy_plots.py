"""KDE plots of generated toy counts against the truth (paper Figure 2 and appendix E.1.2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

#: Counts are integers: a small seeded jitter makes their KDE well defined without moving any mass far.
JITTER = 0.25


def _jittered(values: np.ndarray, seed: int) -> np.ndarray:
    return values + np.random.default_rng(seed).uniform(-JITTER, JITTER, size=values.shape)


def draw_kde(axes, truth: np.ndarray, generated: np.ndarray, dims: tuple[int, int] = (0, 1), label: str = "generated"):
    """On three axes: marginal KDEs of ``dims`` and their joint log-density contours (truth in black)."""
    top = float(np.quantile(np.concatenate([truth[:, list(dims)], generated[:, list(dims)]]), 0.995)) + 1
    grid = np.linspace(-0.5, top, 200)
    for ax, d in zip(axes[:2], dims, strict=True):
        for values, name, color in ((truth, "truth", "black"), (generated, label, "tab:blue")):
            column = _jittered(values[:, d].astype(np.float64), seed=d)
            if np.ptp(column) > 0:
                ax.plot(grid, stats.gaussian_kde(column)(grid), color=color, label=name)
        ax.set_title(f"dimension {d}", fontsize=9)
    axes[0].legend(fontsize=8)
    xx, yy = np.meshgrid(np.linspace(-0.5, top, 80), np.linspace(-0.5, top, 80))
    for values, color in ((truth, "black"), (generated, "tab:blue")):
        pair = _jittered(values[:, list(dims)].astype(np.float64), seed=7).T
        if np.linalg.matrix_rank(np.cov(pair)) == 2:
            density = stats.gaussian_kde(pair)(np.vstack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
            axes[2].contour(xx, yy, np.log(density + 1e-6), levels=8, colors=color, linewidths=0.8)
    axes[2].set_title(f"{label}: joint log-density, dims {dims[0]} and {dims[1]}", fontsize=9)


def kde_plot(truth: np.ndarray, generated: np.ndarray, path: Path, dims: tuple[int, int] = (0, 1)) -> Path:
    """`draw_kde` of one run's samples, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    draw_kde(axes, truth, generated, dims)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
