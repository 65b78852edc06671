"""Hyperparameter selection on the validation split (``--select-on valid --metric M``).

Every config of a method's grid is run on the validation targets for every seed; the config with the
best mean of ``M`` over seeds (by the metric's direction; a "target" metric by distance to its target)
is then run on the test targets. Only configs whose every seed succeeded are eligible; ties go to the
first config in grid order. The tuning budget (configs, cells, seconds) is recorded in
``<results>/tuning/<task>/<method>.json`` and as ``countsbench.tuning.*`` tags on the test runs, so
that unequal tuning effort between methods is visible.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from countsbench.config import ConfigError
from countsbench.directions import badness, direction_of
from countsbench.evaluation import metric_spec_for
from countsbench.executors.planning import PlannedCell
from countsbench.results import write_json_atomic
from countsbench.tracking import TAG_PREFIX


@dataclass(frozen=True)
class TuningChoice:
    method: str
    task: str
    metric: str
    direction: str
    overrides: dict
    variant: str
    score: float
    candidates: list[dict]
    n_configs: int
    n_cells: int
    seconds: float


def metric_direction(metric: str) -> str:
    spec = metric_spec_for(metric)
    if spec is None:
        raise ConfigError(f"--metric {metric!r} is not a registered metric")
    return direction_of(spec)


def select(cells: Sequence[PlannedCell], results: Mapping[str, dict], metric: str) -> list[TuningChoice]:
    """The best config per (method, task) from the validation results of ``cells``."""
    direction = metric_direction(metric)
    groups: dict[tuple[str, str], dict[str, list[PlannedCell]]] = {}
    for cell in cells:
        key = json.dumps(dict(cell.request.overrides), sort_keys=True)
        groups.setdefault((cell.request.method, cell.request.task), {}).setdefault(key, []).append(cell)
    choices = []
    for (method, task), configs in groups.items():
        candidates = []
        seconds = 0.0
        for key, members in configs.items():
            found = [results.get(c.cell_id) for c in members]
            seconds += sum((r or {}).get("costs", {}).get("duration_s", 0.0) for r in found)
            values = [
                (r or {}).get("metrics", {}).get(metric) if (r or {}).get("status") == "ok" else None for r in found
            ]
            usable = all(v is not None and math.isfinite(v) for v in values)
            mean = sum(values) / len(values) if usable else None
            candidates.append({"overrides": json.loads(key), "variant": members[0].variant, "mean": mean})
        eligible = [c for c in candidates if c["mean"] is not None]
        if not eligible:
            raise ConfigError(f"no configuration of {method} on {task} succeeded on the validation split")
        best = min(eligible, key=lambda c: badness(c["mean"], direction))
        n_cells = sum(len(m) for m in configs.values())
        choices.append(
            TuningChoice(
                method, task, metric, direction, best["overrides"], best["variant"], best["mean"],
                candidates, len(configs), n_cells, seconds,
            )
        )  # fmt: skip
    return choices


def record(choice: TuningChoice, results_dir: Path) -> Path:
    path = Path(results_dir) / "tuning" / choice.task / f"{choice.method}.json"
    write_json_atomic(path, asdict(choice))
    return path


def tuning_tags(choice: TuningChoice) -> dict[str, str]:
    prefix = TAG_PREFIX + "tuning."
    return {
        prefix + "split": "valid",
        prefix + "metric": choice.metric,
        prefix + "selected": choice.variant,
        prefix + "n_configs": str(choice.n_configs),
        prefix + "n_cells": str(choice.n_cells),
        prefix + "seconds": f"{choice.seconds:.1f}",
    }
