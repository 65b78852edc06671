"""The embedded real dataset: scanpy's bundled pbmc68k_reduced (700 cells x 765 genes, 10 types).

Integer UMI counts are recovered from the log-normalised ``raw.X`` as
``round(expm1(raw.X) * obs.n_counts / 1e4)`` (DESIGN.md). The split is 70/10/20 stratified by
``bulk_labels`` rather than the paper's 80/10/10: 140 test cells keep the distributional metrics
meaningful on so small a dataset (SPEC section 8).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import ClassVar

import numpy as np

from countsbench.data import CountDataError
from countsbench.registry import register_task
from countsbench.tasks.scrna import LabelledCounts, MaskSpec, ScrnaImputationTask

PBMC_CONDITION_KEY = "bulk_labels"


def pbmc68k_path() -> Path:
    """Location of the h5ad file inside the installed scanpy package (found without importing it)."""
    spec = importlib.util.find_spec("scanpy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scanpy is not installed; it ships the embedded pbmc68k_reduced dataset")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "10x_pbmc68k_reduced.h5ad"


def read_pbmc68k() -> LabelledCounts:
    import warnings

    import anndata

    path = pbmc68k_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bundled file is in an old AnnData format; reading it is fine
        adata = anndata.read_h5ad(path)
    log_normalised = adata.raw.X.toarray().astype(np.float64)
    scaled = np.expm1(log_normalised) * adata.obs["n_counts"].to_numpy(np.float64)[:, None] / 1e4
    counts = np.round(scaled)
    deviation = float(np.abs(scaled - counts).max())
    if deviation > 0.25:
        raise CountDataError(f"pbmc68k counts are not recoverable as integers (max deviation {deviation:.3f})")
    return LabelledCounts(
        counts=counts.astype(np.int64),
        labels={PBMC_CONDITION_KEY: adata.obs[PBMC_CONDITION_KEY].astype(str).to_numpy()},
        feature_names=tuple(adata.raw.var_names.astype(str)),
        cell_type_key=PBMC_CONDITION_KEY,
        files=(path,),
        cell_names=tuple(adata.obs_names.astype(str)),
    )


class Pbmc68kTask(ScrnaImputationTask):
    """Impute held-out test entries of the embedded pbmc68k_reduced counts (cell types in ``bulk_labels``)."""

    fractions: ClassVar[tuple[float, float, float]] = (0.7, 0.1, 0.2)

    def dataset_id(self) -> str:
        return "pbmc68k_reduced"

    def read_dataset(self, data_dir: Path) -> LabelledCounts:
        return read_pbmc68k()


@register_task("pbmc_mcar", kind="imputation", summary="pbmc68k_reduced, 50% of valid test entries MCAR")
def pbmc_mcar() -> Pbmc68kTask:
    return Pbmc68kTask(MaskSpec("mcar", 0.5))


@register_task(
    "pbmc_mnar", kind="imputation", summary="pbmc68k_reduced, 25% of valid test entries MNAR biased to low values"
)
def pbmc_mnar() -> Pbmc68kTask:
    return Pbmc68kTask(MaskSpec("mnar_low", 0.25))


@register_task(
    "pbmc_mnar_high", kind="imputation", summary="pbmc68k_reduced, 25% of valid test entries MNAR biased to high values"
)
def pbmc_mnar_high() -> Pbmc68kTask:
    return Pbmc68kTask(MaskSpec("mnar_high", 0.25))
