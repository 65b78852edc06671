"""The scaled summary score, against the ``control`` methods (as openproblems does with its control methods).

Per metric, a row's mean badness b over its seeds (`countsbench.directions.badness`: a "target" metric
by its distance to the target, the quantity that ranks and tests it) is scaled between the worst (W)
and best (B) mean badness of the task's control rows: ``scaled = (W - b) / (W - B)``, so the best
control scores 1 and the worst 0. The per-metric scaled values are shown unclipped (a method better
than every control scores above 1); the summary score of a row is the mean over the task's signals of
the scaled values clipped to [0, 1], as openproblems aggregates its scaled scores:
``aggregate_scores`` in openproblems-bio/openproblems, ``src/reporting/render_report/report-functions.R``
(commit 14861b4f), sets values below 0 to 0, above 1 to 1 and missing ones to 0, then takes the mean
("Values are restricted to between 0 and 1 and missing values are replaced by 0"). Clipping keeps a
metric on which a method lies far outside the controls' range from outweighing all the others.

Which metrics count (each signal once):
- only metrics that can be scaled: a direction with a badness (not "target at the truth's value"),
  at least two control rows with a value, and controls that do not tie (openproblems gives such a
  metric 0 for every row; we leave it out, as it ranks nothing);
- not the per-dimension components of a dict-valued metric outside its ``scored_keys``
  (``marginal_mmd/dim3`` stands behind ``marginal_mmd/mean``);
- not a metric registered ``same_signal_as`` another metric on the board: always for a transform
  (``log_mmd`` of ``mmd``), and for ``same_signal_when="equal"`` only in rows where the two agree
  on every seed (``crps`` is ``mae`` for a single imputation, a separate signal for K > 1).

A row without a value for a metric that counts is not averaged over fewer metrics: the missing
value counts as 0 (openproblems' rule), so the score is a lower bound, and the row is flagged
(``≥`` and how many are missing) with the missing metrics named below the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from countsbench.evaluation import metric_spec_for

CLIP = (0.0, 1.0)
#: Relative tolerance for "the two metrics agree" (``same_signal_when="equal"``).
EQUAL_RTOL = 1e-9

RULE = (
    "Scaled score: each metric's mean badness scaled so that the worst control method scores 0 and the best 1, "
    f"clipped to [{CLIP[0]:g}, {CLIP[1]:g}] and averaged over the task's metrics, each signal once (duplicates and "
    "transforms of another metric, such as log_mmd of mmd or crps of a single imputation, and per-dimension "
    "components are left out); a missing metric counts as 0 and flags the score as a lower bound (≥). "
    "It is shown next to the raw values, never instead of them."
)


@dataclass(frozen=True)
class Signal:
    """How a logged metric enters the summary score (from its registration)."""

    scored: bool = True  # False: a component of another key of its metric
    same_as: str | None = None  # the logged metric it duplicates or transforms
    when: str = "always"  # or "equal": only where the two values agree


def signal_of(logged_name: str) -> Signal:
    """The registered declaration behind a logged name (``m`` or ``m/key``); unregistered: a signal."""
    spec = metric_spec_for(logged_name)
    if spec is None:
        return Signal()
    key = logged_name.split("/", 1)[1] if "/" in logged_name else None
    scored = key is None or spec.scored_keys is None or key in spec.scored_keys
    same_as = spec.same_signal_as if key is None else None
    return Signal(scored, same_as, spec.same_signal_when)


def scale(badness: float, control_badness: Sequence[float]) -> float:
    """``(worst - badness) / (worst - best)`` over the controls' badness; NaN when undefined."""
    controls = [b for b in control_badness if math.isfinite(b)]
    if len(controls) < 2 or not math.isfinite(badness):
        return math.nan
    worst, best = max(controls), min(controls)
    if worst - best <= 1e-12 * max(1.0, abs(worst)):
        return math.nan
    return (worst - badness) / (worst - best)


def agree(first: Mapping[int, float], second: Mapping[int, float]) -> bool:
    """The same seeds with the same values (``same_signal_when="equal"``)."""
    if not first or set(first) != set(second):
        return False
    return all(math.isclose(first[s], second[s], rel_tol=EQUAL_RTOL, abs_tol=1e-300) for s in first)


@dataclass(frozen=True)
class Summary:
    """A row's summary score over ``counted`` metrics, with the ``missing`` ones counted as 0."""

    score: float
    counted: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing


def summary(scaled_values: Mapping[str, float]) -> Summary:
    """Mean of the clipped scaled values (NaN = missing, counted as 0); NaN when none is present."""
    counted = tuple(scaled_values)
    missing = tuple(m for m, v in scaled_values.items() if not math.isfinite(v))
    if len(missing) == len(counted):
        return Summary(math.nan, counted, missing)
    clipped = [float(np.clip(v, *CLIP)) if math.isfinite(v) else 0.0 for v in scaled_values.values()]
    return Summary(float(np.mean(clipped)), counted, missing)
