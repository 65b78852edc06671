"""The scaled summary score, against the ``control`` methods (as openproblems does with baselines).

For each metric, a row's mean m is scaled between the worst (W) and best (B) mean of the control
rows of the task, in the metric's direction (a "target" metric by distance to its target):
``scaled = (badness(W) - badness(m)) / (badness(W) - badness(B))``, so the best control scores 1, the
worst 0, and a method better than every control scores above 1 (values are not clipped). A metric on
which fewer than two controls have a value, or the controls tie, has no scaled value. The summary
score of a row is the mean of its scaled values over the task's metrics (cost columns excluded),
shown next to the raw values, never instead of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from countsbench.directions import badness


def scale(value: float, control_means: Sequence[float], direction: str) -> float:
    controls = [badness(v, direction) for v in control_means if math.isfinite(v)]
    if len(controls) < 2 or not math.isfinite(value):
        return math.nan
    worst, best = max(controls), min(controls)
    if worst - best <= 1e-12 * max(1.0, abs(worst)):
        return math.nan
    return (worst - badness(value, direction)) / (worst - best)


def summary(scaled_values: Sequence[float]) -> float:
    finite = [v for v in scaled_values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
