"""MAGIC imputation (van Dijk et al. 2018) through the ``magic-impute`` package (SPEC section 7).

Pipeline: library-size normalise with sizes from OBSERVED entries only (the research code used the
held-out values too, SPEC section 9 bug 9), square-root transform, MAGIC diffusion (decay 1, t 3),
then invert the square root and the normalisation (the research code left its output in sqrt
scale) and round. ``knn`` is chosen on the validation split from a grid (the paper's 15..57).

Entries that are not observed (dropouts, hidden targets) enter the diffusion at the gene's mean
normalised value over observed training entries (``fill_unobserved="gene_mean"``), so neither the
neighbour graph nor the smoothing reads a missing value as a measured zero; ``"zero"`` reproduces
the research code's input (it multiplied the data by the retained mask), which pulls every
imputation towards 0.

MAGIC is transductive, so the cells to impute are diffused together with a seeded subsample of
training cells (``reference_cells``; 0 = the query cells alone, as the research code did): complete
training profiles make better neighbours than other masked cells. A query cell's observed library
misses its hidden entries, so its full size is estimated as observed size / (1 - the training
share of the hidden genes); dividing by the observed size alone would shrink every imputation by
the mask rate.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from countsbench.config import AT_LEAST_ONE, POSITIVE, ConfigError, Range
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.methods.imputation_output import finish_imputation, observed_mask
from countsbench.registry import register_method
from countsbench.task import TaskInfo
from countsbench.tasks.masks import mcar_mask

#: openproblems task_denoising runs MAGIC with the package's default knn (and decay 1, t 3, sqrt).
OPENPROBLEMS_DENOISING_KNN = 5
PAPER_KNN_GRID = ",".join(str(k) for k in range(15, 58, 6))  # 15, 21, ..., 57


def parse_grid(text: str) -> list[int]:
    try:
        grid = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"knn_grid must be comma-separated integers, got {text!r}") from None
    if not grid or grid[0] < 2:
        raise ConfigError(f"knn_grid needs integers >= 2, got {text!r}")
    return grid


@register_method(
    "magic",
    kinds=("imputation", "denoising"),
    role="baseline",
    summary="MAGIC diffusion on sqrt library-normalised counts, knn tuned on validation.",
    paper="van Dijk et al. 2018, Recovering gene interactions from single-cell data using data diffusion, Cell",
)
class MagicImputation(Method):
    profiles = {"quick": {"knn_grid": "15,29,43,57"}, "paper": {"knn_grid": PAPER_KNN_GRID}}
    hyperparameter_ranges = {
        "knn": Range(2),
        "decay": POSITIVE,
        **dict.fromkeys(["t", "n_pca", "reference_cells"], AT_LEAST_ONE),
        "tuning_mask_rate": Range(0, 1, low_open=True, high_open=True),
    }

    def __init__(
        self,
        knn: int | None = None,
        knn_grid: str = PAPER_KNN_GRID,
        decay: float = 1.0,
        t: int = 3,
        n_pca: int = 100,
        reference_cells: int = 5000,
        tuning_mask_rate: float = 0.5,
        fill_unobserved: Literal["gene_mean", "zero"] = "gene_mean",
    ) -> None:
        """``knn=None`` tunes it on the validation split over ``knn_grid``, hiding a seeded MCAR
        share ``tuning_mask_rate`` of the valid validation entries; a given ``knn`` is used as is."""
        self.knn = knn
        self.knn_grid = knn_grid
        self.decay = decay
        self.t = t
        self.n_pca = n_pca
        self.reference_cells = reference_cells
        self.tuning_mask_rate = tuning_mask_rate
        self.fill_unobserved = fill_unobserved
        self.reference_observed: np.ndarray | None = None
        self.gene_fill: np.ndarray | None = None
        self.reference: np.ndarray | None = None
        self.gene_share: np.ndarray | None = None
        self.rescale = 1.0
        self.knn_selected: int | None = None
        self.tuning_rmse: dict[int, float] = {}

    @classmethod
    def defaults(cls, profile: str, task: TaskInfo) -> dict[str, Any]:
        """Denoising uses openproblems' MAGIC settings: the package's knn = 5 (MCV has no validation cells)."""
        values = super().defaults(profile, task)
        if task.kind == "denoising":
            values["knn"] = OPENPROBLEMS_DENOISING_KNN
        return values

    def needs_validation(self) -> bool:
        return self.knn is None  # knn is tuned on the validation split

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        grid = parse_grid(self.knn_grid)
        counts = train.dense().astype(np.float64)
        libraries = counts.sum(axis=1)
        self.gene_share = counts.sum(axis=0) / max(libraries.sum(), 1.0)
        self.rescale = float(np.median(libraries[libraries > 0])) if np.any(libraries > 0) else 1.0
        rows = np.arange(train.n_samples)
        if self.reference_cells < train.n_samples:
            rows = np.sort(ctx.rng(1).choice(rows, size=self.reference_cells, replace=False))
        self.reference = counts[rows].astype(np.float32)
        observed = observed_mask(train)
        self.reference_observed = observed[rows]
        normalised = self.normalise(counts, np.maximum(libraries, 1.0))
        self.gene_fill = np.where(observed, normalised, 0).sum(axis=0) / np.maximum(observed.sum(axis=0), 1)
        if self.fill_unobserved == "zero":
            self.gene_fill = np.zeros_like(self.gene_fill)
        if self.knn is not None:
            self.knn_selected = self.knn
            return
        if valid is None or valid.n_samples == 0:
            self.knn_selected = grid[len(grid) // 2]
            return
        seed = int(ctx.rng(2).integers(2**31))
        mask = mcar_mask(valid.valid_mask(), self.tuning_mask_rate, seed)
        hidden, truth = valid.with_hidden(mask), valid.dense()[mask]
        for knn in ctx.progress(grid, desc="magic knn"):
            estimate = self._diffuse(hidden, mask, knn, ctx)[mask]
            self.tuning_rmse[knn] = float(np.sqrt(np.mean((np.floor(estimate + 0.5) - truth) ** 2)))
        self.knn_selected = min(self.tuning_rmse, key=self.tuning_rmse.get)

    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        estimate = self._diffuse(data, target_mask, self.knn_selected, ctx)
        out = finish_imputation(data, target_mask, estimate)
        return out if n_samples == 1 else np.repeat(out[None], n_samples, axis=0)  # deterministic

    def denoise(self, data: CountData, ctx: RunContext) -> np.ndarray:
        """openproblems' MAGIC denoiser: the cells are diffused alone (they are the training cells), every
        entry observed, the output left real-valued on the input's scale."""
        return self._diffuse(data, np.zeros(data.counts.shape, dtype=bool), self.knn_selected, ctx, reference=False)

    def query_libraries(self, counts: np.ndarray, target_mask: np.ndarray) -> np.ndarray:
        """Full library sizes estimated from observed entries only (SPEC section 9, bug 9)."""
        observed = counts.sum(axis=1)
        kept_share = 1.0 - (target_mask * self.gene_share).sum(axis=1)
        estimate = observed / np.maximum(kept_share, 0.05)
        return np.where(observed > 0, estimate, self.rescale)

    def normalise(self, counts: np.ndarray, libraries: np.ndarray) -> np.ndarray:
        """sqrt(x / library * median library): MAGIC's recommended input."""
        return np.sqrt(counts / libraries[:, None] * self.rescale)

    def _diffuse(
        self, data: CountData, target_mask: np.ndarray, knn: int, ctx: RunContext, reference: bool = True
    ) -> np.ndarray:
        """MAGIC estimates (real-valued counts) for every entry of ``data``'s cells, diffused together with
        the reference training cells (``reference``) or alone."""
        import magic

        query = data.dense().astype(np.float64)
        query_libraries = self.query_libraries(query, target_mask)
        query_part = np.where(observed_mask(data, target_mask), self.normalise(query, query_libraries), self.gene_fill)
        parts = [query_part]
        if reference:
            cells = self.reference.astype(np.float64)
            reference_part = self.normalise(cells, np.maximum(cells.sum(axis=1), 1.0))
            parts.insert(0, np.where(self.reference_observed, reference_part, self.gene_fill))
        n_reference = len(parts[0]) if reference else 0
        normalised = np.vstack(parts)
        n, d = normalised.shape
        n_pca = self.n_pca if self.n_pca < min(n, d) else None
        knn = min(knn, n - 2)
        operator = magic.MAGIC(
            knn=knn,
            knn_max=min(3 * knn, n - 2),  # the package's default 3 knn fails on small sets
            decay=self.decay,
            t=self.t,
            n_pca=n_pca,
            random_state=int(ctx.rng(3).integers(2**31)),
            n_jobs=1,
            verbose=0,
        )
        smoothed = np.asarray(operator.fit_transform(normalised, genes="all_genes"))[n_reference:]
        return np.maximum(smoothed, 0.0) ** 2 / self.rescale * query_libraries[:, None]
