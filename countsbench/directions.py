"""Metric directions as stored with runs: ``minimize``, ``maximize`` or ``target:<value>``.

A "target" metric (for example a ratio whose ideal is 1) is ranked by its distance to the target.
`badness` maps every direction onto "smaller is better", which ranking, tuning, significance
tests and scaling all share.
"""

from __future__ import annotations

import math

from countsbench.registry import MetricSpec


def direction_of(spec: MetricSpec) -> str:
    return spec.direction if spec.target is None else f"target:{spec.target}"


def badness(value: float, direction: str) -> float:
    """Smaller is better: the value, its negative, or its distance to the target."""
    if direction == "maximize":
        return -value
    if direction.startswith("target:"):
        target = direction.split(":", 1)[1]
        if target == "truth":  # best at the truth's own value, logged beside it as ``<metric>/truth``: not ranked
            return math.nan
        return abs(value - float(target))
    return value


def arrow(direction: str) -> str:
    """↓, ↑ or →target, for column headers."""
    if direction.startswith("target:"):
        return "→" + direction.split(":", 1)[1]
    return {"minimize": "↓", "maximize": "↑"}.get(direction, "")
