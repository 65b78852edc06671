"""When is the best value "best"? Only when it beats the runner-up beyond noise.

The test, per metric, between the best row and the runner-up (ranked by mean, in the metric's
direction; a "target" metric by distance to its target):

1. Seed noise, a paired test over the seeds both rows ran: the per-seed differences d_s (positive
   where the best row is better) must have a one-sided paired t-test p-value below ``ALPHA`` (0.05).
   With identical differences on every seed (deterministic methods) the test reduces to "d > 0".
   Fewer than 2 common seeds: never marked.
2. Test-set noise, where both rows carry a bootstrap standard error (``<metric>/bootstrap_se``, SPEC
   section 8): the difference of the means must also exceed 1.96 * sqrt(se_best² + se_runner²), the
   normal 95% interval of the difference excluding zero (less conservative than asking the two
   rows' own 95% intervals not to overlap, which would need a gap of 1.96 * (se_best + se_runner)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats

from countsbench.directions import badness

ALPHA = 0.05
BOOTSTRAP_Z = 1.96


def paired_p_value(best: Mapping[int, float], runner_up: Mapping[int, float], direction: str) -> float:
    """One-sided p-value that ``best`` is better than ``runner_up`` over their common seeds."""
    common = sorted(set(best) & set(runner_up))
    if len(common) < 2:
        return math.nan
    d = np.array([badness(runner_up[s], direction) - badness(best[s], direction) for s in common])
    spread = float(np.std(d, ddof=1))
    if spread <= 1e-12 * max(1.0, float(np.max(np.abs(d)))):
        return 0.0 if float(np.mean(d)) > 0 else 1.0
    t = float(np.mean(d)) / (spread / math.sqrt(len(d)))
    return float(stats.t.sf(t, df=len(d) - 1))


def beyond_noise(
    best: Mapping[int, float],
    runner_up: Mapping[int, float],
    direction: str,
    best_bootstrap_se: float = math.nan,
    runner_up_bootstrap_se: float = math.nan,
) -> bool:
    """Whether ``best`` beats ``runner_up`` by both tests of this module's docstring."""
    p = paired_p_value(best, runner_up, direction)
    if math.isnan(p) or p >= ALPHA:
        return False
    if math.isfinite(best_bootstrap_se) and math.isfinite(runner_up_bootstrap_se):
        gap = badness(float(np.mean(list(runner_up.values()))), direction) - badness(
            float(np.mean(list(best.values()))), direction
        )
        return gap > BOOTSTRAP_Z * math.hypot(best_bootstrap_se, runner_up_bootstrap_se)
    return True
