"""The simulated-counts task `toy_nb` (SPEC section 8; paper section 4.1 and appendix D.1).

Ten dimensions of negative-binomial counts sharing a size factor:
``s_n ~ LogNormal(0, 0.6)``, ``x_nd ~ Poisson(Gamma(shape theta_d, rate theta_d / (s_n mu_d)))``,
``theta_d = 1 / a_d``, with SPEC's fixed ``mu`` and ``a`` (about 57% zeros, maximum about 60 per
24,000 draws).

Splits, all seeded draws of the known generator: 20,000 training, 4,000 validation and 20,000 test
rows. The test split is larger than the paper's 4,000 because SPEC measures the variance ratio on
20,000 generated samples and the runner generates as many samples as the scored split has rows. The
metrics keep the paper's comparison: distances (MMD, sliced Wasserstein, marginal MMD and W1, zero
share, maximum) use the first 4,000 test rows against the first 4,000 generated rows, while the
variance ratio uses all 20,000 generated rows against the TRUE variances, computed once from
2,000,000 fresh draws (a fixed seed). Against 4,000 test rows that ratio is too noisy to judge.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import ClassVar

import numpy as np

from countsbench.data import CountData
from countsbench.registry import register_task
from countsbench.task import Task, TaskData

TOY_MU = np.array([0.493, 1.704, 0.073, 0.088, 0.200, 0.927, 0.484, 3.090, 0.409, 0.919])
TOY_A = np.array([0.078, 0.145, 0.5, 0.5, 0.182, 0.185, 0.237, 0.329, 0.075, 0.084])
SIZE_FACTOR_SIGMA = 0.6
FEATURE_NAMES = tuple(f"dim{j}" for j in range(len(TOY_MU)))

#: Rows of each split, and the paper's test size used for the distance metrics.
SPLIT_ROWS = {"train": 20_000, "valid": 4_000, "test": 20_000}
COMPARISON_ROWS = 4_000
#: Independent seeds of each split's draws and of the population estimate of the true variance.
SPLIT_SEEDS = {"train": 0, "valid": 1, "test": 2}
TRUE_VARIANCE_DRAWS, TRUE_VARIANCE_SEED = 2_000_000, 12_345

TOY_METRICS = (
    "joint_mmd",
    "joint_sliced_wasserstein",
    "marginal_mmd",
    "marginal_wasserstein",
    "variance_ratio",
    "variance_ratio_in_band",
    "variance_log_error",
    "zero_share",
    "max_count",
)
#: The leaderboard's default columns: the joint distances and the variance checks (SPEC section 8).
TOY_HEADLINE = ("joint_mmd", "joint_sliced_wasserstein", "variance_log_error", "variance_ratio_in_band")


def draw_toy_nb(n: int, rng: np.random.Generator, mu: np.ndarray = TOY_MU, a: np.ndarray = TOY_A) -> np.ndarray:
    """(n, d) int64 draws of the size-factor negative-binomial generator (SPEC section 8)."""
    size_factor = rng.lognormal(0.0, SIZE_FACTOR_SIGMA, size=(n, 1))
    theta = 1.0 / a
    rate = rng.gamma(shape=theta, scale=size_factor * mu / theta, size=(n, len(mu)))  # scale = 1 / rate
    return rng.poisson(rate).astype(np.int64)


@functools.cache
def true_variances() -> np.ndarray:
    """Per-dimension variance of the generator from 2,000,000 fresh draws (fixed seed), computed once."""
    rng = np.random.default_rng(TRUE_VARIANCE_SEED)
    chunks = [draw_toy_nb(500_000, rng) for _ in range(TRUE_VARIANCE_DRAWS // 500_000)]
    values = np.concatenate(chunks).astype(np.float64).var(axis=0, ddof=1)
    values.setflags(write=False)
    return values


class ToyNegativeBinomialTask(Task):
    """Unconditional generation of 10-dimensional sparse counts (the paper's simulated counts)."""

    kind: ClassVar[str] = "generation"
    default_metrics: ClassVar[tuple[str, ...]] = TOY_METRICS
    headline_metrics: ClassVar[tuple[str, ...]] = TOY_HEADLINE

    def __init__(self, rows: dict[str, int] | None = None, comparison_rows: int = COMPARISON_ROWS) -> None:
        self.rows = dict(SPLIT_ROWS if rows is None else rows)
        self.comparison_rows = comparison_rows

    def dataset_id(self) -> str:
        return "toy_nb"

    def _split(self, name: str) -> CountData:
        counts = draw_toy_nb(self.rows[name], np.random.default_rng([SPLIT_SEEDS[name], 0x70]))
        return CountData(counts, feature_names=FEATURE_NAMES)

    def load(self, data_dir: Path | None = None) -> TaskData:
        return TaskData(
            train=self._split("train"),
            valid=self._split("valid"),
            test=self._split("test"),
            description={
                "generator": "size-factor negative binomial (SPEC section 8)",
                "rows": ",".join(f"{k}={v}" for k, v in self.rows.items()),
                "split_seeds": ",".join(f"{k}={v}" for k, v in SPLIT_SEEDS.items()),
                "comparison_rows": self.comparison_rows,
                "true_variance": f"{TRUE_VARIANCE_DRAWS} draws, seed {TRUE_VARIANCE_SEED}",
            },
            metric_options={"true_variance": true_variances(), "comparison_rows": self.comparison_rows},
        )

    def sample_dataset(self) -> TaskData:
        """A tiny version for tests: 400 / 100 / 300 rows, distances on the first 100."""
        return ToyNegativeBinomialTask({"train": 400, "valid": 100, "test": 300}, comparison_rows=100).load()

    def write_artifacts(self, truth: CountData, prediction: np.ndarray, output_dir: Path) -> list[Path]:
        """KDE plots of dimensions 0 and 1 (marginals and joint), generated against the truth."""
        from countsbench.tasks.toy_plots import kde_plot

        rows = min(self.comparison_rows, truth.n_samples, len(prediction))
        return [kde_plot(truth.dense()[:rows], np.asarray(prediction)[:rows], Path(output_dir) / "kde_dims_0_1.png")]


@register_task(
    "toy_nb",
    kind="generation",
    summary="10-D size-factor negative-binomial counts (57% zeros); 20k train, test distances on 4k rows.",
    paper="CountsDiff section 4.1 (simulated counts)",
)
def toy_nb() -> ToyNegativeBinomialTask:
    return ToyNegativeBinomialTask()
