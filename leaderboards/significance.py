"""When is the best value "best"? Only when it beats the runner-up beyond noise.

Per metric, the leader and the runner-up are the two rows with the smallest mean *badness* over
their seeds (`countsbench.directions.badness`: the value, its negative for "maximize", its distance
to the target for "target" metrics), and both tests below run on that same quantity. The leader is
marked when BOTH pass:

1. Seed noise: a two-sided Welch's unpaired t-test of the two rows' per-seed badness values at
   ``ALPHA`` = 0.05 (the same as one-sided at ``ALPHA / 2`` in the direction the ranking picked).
   Unpaired because different methods' seeds are independent runs: seed 0 of one method has nothing
   in common with seed 0 of another. A row with fewer than 2 successful seeds has no variance
   estimate, so neither it nor the row it is compared with is marked. A row whose seeds all agree
   (a deterministic method) contributes zero variance: against another such row the test reduces to
   "the means differ"; against a noisy row Welch's test uses that row's variance alone.
2. Test-cell noise, a paired bootstrap, where both rows carry per-replicate values computed on the
   same seeded resamples of the test cells (`countsbench.evaluation`): for each replicate b, D_b is
   the runner-up's minus the leader's badness of replicate b (each row's mean over its seeds); with R
   replicates the observed difference d of the rows' mean badness must exceed t_{R-1}(1 - ALPHA/2)
   times the standard deviation of the D_b. The pairing removes the test-cell noise both rows share
   (a hard cell is hard for every method), which the rows' own standard errors cannot. Where either
   row lacks replicates (results written before they were stored; generation tasks), test 2 is
   skipped and the table says which metrics were marked by the seed test alone.

`seed_p_values` is vectorised over leading axes, so a simulation can check the false-mark rate of
the rule over many repetitions at once (tests/test_significance.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
#: Spreads and gaps below this fraction of the values' scale are round-off and count as zero.
ROUND_OFF = 1e-12

RULE = (
    "Best values are marked only where the leader beats the runner-up beyond noise. Rows are ranked, and tested, "
    "on their per-seed badness: the value (↓), its negative (↑) or its distance to the target (→). Tests: a "
    f"two-sided Welch t-test over seeds, p < {ALPHA:g}, and, where both rows have bootstrap replicates, a paired "
    "bootstrap on the same resampled test cells: the difference of the means must exceed "
    f"t(R-1, {1 - ALPHA / 2:g}) x the sd of the R per-replicate differences (otherwise the seed test alone, as "
    "listed below the table). A row with fewer than 2 seeds is never marked, nor is the row compared with it."
)


def _round_off(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.abs(values) <= ROUND_OFF * np.maximum(1.0, np.abs(scale))


def seed_p_values(leader: np.ndarray, runner_up: np.ndarray) -> np.ndarray:
    """Two-sided Welch p-values, per-seed badness on the last axis (any leading axes broadcast).

    1 where either row has fewer than 2 seeds or the means tie; 0 where both rows have zero spread
    and the means differ. Which of the two rows is better is not this function's business.
    """
    a, b = np.asarray(leader, dtype=np.float64), np.asarray(runner_up, dtype=np.float64)
    n_a, n_b = a.shape[-1], b.shape[-1]
    if n_a < 2 or n_b < 2:
        return np.ones(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]))
    mean_a, mean_b = a.mean(axis=-1), b.mean(axis=-1)
    var_a, var_b = a.var(axis=-1, ddof=1), b.var(axis=-1, ddof=1)
    var_a = np.where(_round_off(np.sqrt(var_a), mean_a), 0.0, var_a) / n_a
    var_b = np.where(_round_off(np.sqrt(var_b), mean_b), 0.0, var_b) / n_b
    gap = mean_b - mean_a
    tie = _round_off(gap, np.maximum(np.abs(mean_a), np.abs(mean_b)))
    se2 = var_a + var_b
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(gap) / np.sqrt(se2)
        df = se2**2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))  # Welch-Satterthwaite
        p = 2.0 * stats.t.sf(t, np.where(se2 > 0, df, 1.0))
    return np.where(tie, 1.0, np.where(se2 > 0, p, 0.0))


def seed_test(leader: np.ndarray, runner_up: np.ndarray) -> np.ndarray:
    """Whether the leader's per-seed badness is below the runner-up's beyond seed noise (test 1)."""
    a, b = np.asarray(leader, dtype=np.float64), np.asarray(runner_up, dtype=np.float64)
    return (seed_p_values(a, b) < ALPHA) & (a.mean(axis=-1) < b.mean(axis=-1))


@dataclass(frozen=True)
class BootstrapTest:
    """Test 2: ``z`` = observed difference / sd of the paired replicate differences, against ``critical``."""

    replicates: int
    z: float
    critical: float

    @property
    def passed(self) -> bool:
        return self.replicates >= 2 and self.z > self.critical


def paired_bootstrap_test(leader: np.ndarray, runner_up: np.ndarray, difference: float) -> BootstrapTest:
    """``leader`` and ``runner_up``: badness per bootstrap replicate, the same resamples for both rows
    (replicates where either is undefined are dropped); ``difference``: runner-up minus leader on the
    full test set."""
    d = np.asarray(runner_up, dtype=np.float64) - np.asarray(leader, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2 or not math.isfinite(difference):
        return BootstrapTest(int(d.size), math.nan, math.nan)
    critical = float(stats.t.ppf(1.0 - ALPHA / 2.0, d.size - 1))
    spread = float(np.std(d, ddof=1))
    if spread <= ROUND_OFF * max(1.0, abs(difference)):  # every replicate agrees: no test-cell noise
        z = math.inf if difference > ROUND_OFF else 0.0
    else:
        z = difference / spread
    return BootstrapTest(int(d.size), z, critical)


@dataclass(frozen=True)
class Verdict:
    """The outcome of both tests for one metric's leader against its runner-up."""

    seed_p: float
    seed_passed: bool
    bootstrap: BootstrapTest | None  # None: a row without replicates, test 2 skipped

    @property
    def marked(self) -> bool:
        return self.seed_passed and (self.bootstrap is None or self.bootstrap.passed)


def compare(
    leader: np.ndarray,
    runner_up: np.ndarray,
    leader_replicates: np.ndarray | None = None,
    runner_up_replicates: np.ndarray | None = None,
) -> Verdict:
    """Both tests of this module's docstring. ``leader`` / ``runner_up``: per-seed badness;
    ``*_replicates``: per-replicate badness (each row's mean over its seeds), or None."""
    leader, runner_up = np.asarray(leader, dtype=np.float64), np.asarray(runner_up, dtype=np.float64)
    p = float(seed_p_values(leader, runner_up))
    seed_passed = bool(seed_test(leader, runner_up))
    bootstrap = None
    if leader_replicates is not None and runner_up_replicates is not None:
        difference = float(np.mean(runner_up) - np.mean(leader))
        bootstrap = paired_bootstrap_test(leader_replicates, runner_up_replicates, difference)
    return Verdict(p, seed_passed, bootstrap)
