"""Forest-Diffusion (Jolicoeur-Martineau, Fatras & Kachman 2024) through the ``ForestDiffusion`` package.

SPEC section 7: ``diffusion_type='vp'``, ``n_t=20``, every gene an integer column through the
package's real keyword ``int_indexes`` (the research code passed ``int_indices``, which the
package's ``**xgboost_kwargs`` swallowed silently, so counts were never rounded), imputation by
RePaint. Entries that are not valid measurements are missing (NaN) in training and imputation;
conditions enter as one-hot covariates (``X_covs``), never generated.

Rows stay aligned with their masks and covariates (SPEC section 9, bug 9): the package drops
all-missing rows of ``X`` but not of ``X_covs``, so such rows are removed here, together, before
fitting; imputation passes every query row explicitly (``impute(X=...)``).

Cost: with missing values the package fits one XGBoost model per feature per noise level
(n_t x d fits: 15,300 on pbmc). The quick profile refuses tasks wider than ``feature_budget``
with an estimate of the cost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import numpy as np

from countsbench.config import AT_LEAST_ONE, POSITIVE, UNIT_INTERVAL, ConfigError
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.methods.imputation_output import finish_imputation, observed_mask
from countsbench.registry import register_method

#: Rough single-core cost of XGBoost 'hist' training per (row x feature x tree), in seconds. Measured
#: on this project's shared 2-core machine: one pbmc fit (2,450 rows = 490 cells x duplicate_K 5,
#: 765 genes, 100 depth-7 trees, one thread) took 50-80 s. It only sizes the quick profile's refusal.
SECONDS_PER_ROW_FEATURE_TREE = 3e-7


@contextlib.contextmanager
def numpy_global_seed(seed: int) -> Iterator[None]:
    """The package draws from NumPy's global generator: seed it from the run, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def one_hot_conditions(conditions: Mapping[str, np.ndarray], vocabularies: Mapping[str, tuple[str, ...]]):
    """(n, sum of vocabulary sizes) one-hot covariates in sorted key order, or None without conditions."""
    if not conditions:
        return None
    blocks = [np.eye(len(vocabularies[key]))[conditions[key]] for key in sorted(conditions)]
    return np.concatenate(blocks, axis=1)


@register_method(
    "forest_diffusion",
    kinds=("imputation", "generation"),
    role="baseline",
    summary="Forest-Diffusion: VP diffusion, one XGBoost regressor per feature and noise level; RePaint.",
    paper="Jolicoeur-Martineau, Fatras & Kachman 2024, Generating and imputing tabular data via diffusion and "
    "flow-based gradient-boosted trees, AISTATS",
)
class ForestDiffusionMethod(Method):
    profiles = {
        "quick": {"duplicate_K": 10, "feature_budget": 50},
        "paper": {"duplicate_K": 100, "feature_budget": None},
    }
    inference_only = frozenset({"repaint", "repaint_r", "repaint_j", "n_samples"})
    hyperparameter_ranges = {
        **dict.fromkeys(["n_t", "duplicate_K", "n_estimators", "max_depth", "repaint_r"], AT_LEAST_ONE),
        **dict.fromkeys(["feature_budget", "n_jobs", "xgboost_threads", "n_samples"], AT_LEAST_ONE),
        "learning_rate": POSITIVE,
        "repaint_j": UNIT_INTERVAL,
    }
    #: One XGBoost model per feature and noise level: not arrays, so refitted for every run (never cached).
    persistable = False

    def __init__(
        self,
        n_t: int = 20,
        duplicate_K: int = 100,
        n_estimators: int = 100,
        max_depth: int = 7,
        learning_rate: float = 0.3,
        use_conditions: bool = True,
        repaint: bool = True,
        repaint_r: int = 5,
        repaint_j: float = 0.1,
        feature_budget: int | None = None,
        n_jobs: int = 1,
        xgboost_threads: int = 1,
        n_samples: int = 1,
    ) -> None:
        """``feature_budget``: refuse tasks with more features (None = no limit); ``repaint_r`` /
        ``repaint_j``: RePaint repeats and jump (a fraction of n_t), the package's ``r`` and ``j``;
        ``n_jobs`` parallel fits (joblib) of ``xgboost_threads`` threads each."""
        self.n_t = n_t
        self.duplicate_K = duplicate_K
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.use_conditions = use_conditions
        self.repaint = repaint
        self.repaint_r = repaint_r
        self.repaint_j = repaint_j
        self.feature_budget = feature_budget
        self.n_jobs = n_jobs
        self.xgboost_threads = xgboost_threads
        self.n_samples = n_samples
        self.model = None
        self.n_features = 0
        self.vocabularies: Mapping[str, tuple[str, ...]] = {}

    def estimated_fit_hours(self, n_rows: int, n_features: int, n_covariates: int, missing: bool) -> float:
        fits = self.n_t * (n_features if missing else 1)
        work = n_rows * self.duplicate_K * (n_features + n_covariates) * self.n_estimators
        return fits * work * SECONDS_PER_ROW_FEATURE_TREE / max(self.n_jobs, 1) / 3600

    def _check_budget(self, train: CountData, covariates: np.ndarray | None, missing: bool) -> None:
        d = train.n_features
        if self.feature_budget is None or d <= self.feature_budget:
            return
        n_cov = 0 if covariates is None else covariates.shape[1]
        hours = self.estimated_fit_hours(train.n_samples, d, n_cov, missing)
        fits = self.n_t * (d if missing else 1)
        raise ConfigError(
            f"forest_diffusion: this task has {d} features, above the quick profile's feature_budget of "
            f"{self.feature_budget}: {fits:,} XGBoost fits on {train.n_samples * self.duplicate_K:,} rows each, "
            f"roughly {hours:,.1f} hours at duplicate_K={self.duplicate_K} with n_jobs={self.n_jobs} (cost grows "
            "with duplicate_K; the paper profile uses 100, a GPU helps); run it anyway with --profile paper "
            "(or --set feature_budget=none)"
        )

    def _threads(self) -> contextlib.AbstractContextManager:
        """XGBoost's OpenMP threads per fit: on 2 shared cores, oversubscription made fits 10x slower."""
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=self.xgboost_threads, user_api="openmp")

    def _covariates(self, data: CountData) -> np.ndarray | None:
        return one_hot_conditions(data.conditions, data.vocabularies) if self.use_conditions else None

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        from ForestDiffusion import ForestDiffusionModel

        observed = observed_mask(train)
        covariates = self._covariates(train)
        self._check_budget(train, covariates, missing=not observed.all())
        x = np.where(observed, train.dense().astype(np.float64), np.nan)
        never_observed = ~observed.any(axis=0)
        x[:, never_observed] = 0.0  # a gene never observed is 0 (the package's min-max would give NaN)
        rows = ~np.isnan(x).all(axis=1)  # dropped here, with their covariates (the package drops only X's)
        self.n_features, self.vocabularies = train.n_features, dict(train.vocabularies)
        with numpy_global_seed(int(ctx.rng(40).integers(2**31))), self._threads():
            self.model = ForestDiffusionModel(
                x[rows],
                X_covs=None if covariates is None else covariates[rows],
                n_t=self.n_t,
                duplicate_K=self.duplicate_K,
                diffusion_type="vp",
                int_indexes=list(range(train.n_features)),
                n_estimators=self.n_estimators,
                max_depth=self.max_depth,
                eta=self.learning_rate,
                n_jobs=self.n_jobs,
                seed=int(ctx.rng(41).integers(2**31)),
            )

    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        observed = observed_mask(data, target_mask)
        x = np.where(observed, data.dense().astype(np.float64), np.nan)
        scaled = self.model.scaler.transform(x)  # the package expects X already scaled (it unscales the result)
        with numpy_global_seed(int(ctx.rng(42).integers(2**31))), self._threads():
            imputed = self.model.impute(
                k=n_samples,
                X=scaled,
                repaint=self.repaint,
                r=self.repaint_r,
                j=self.repaint_j,
                X_covs=self._covariates(data),
            )
        return finish_imputation(data, target_mask, imputed)

    def sample(self, n: int, conditions: Mapping[str, np.ndarray] | None, ctx: RunContext) -> np.ndarray:
        covariates = None
        if self.use_conditions and self.model.X_covs is not None:
            if not conditions:
                raise ValueError("this Forest-Diffusion model was trained with conditions; pass them to sample")
            covariates = one_hot_conditions(conditions, self.vocabularies)
        with numpy_global_seed(int(ctx.rng(43).integers(2**31))), self._threads():
            generated = self.model.generate(batch_size=n, X_covs=covariates)
        return np.maximum(np.floor(generated[:, : self.n_features] + 0.5), 0).astype(np.int64)
