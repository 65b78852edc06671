"""Conditional scRNA-seq generation by cell type (CFGen, Palma et al. 2025; scDiffusion; scVI as a generator).

A labelled count matrix is split into train/valid/test, stratified by cell type (pbmc: the split of
``pbmc_mcar``, 70/10/20, seed 0). A method is fitted on the training cells and asked for as many cells
of each type as the test split holds: the runner calls ``sample(n_test, {cell_type: test codes})``, so
the i-th generated cell is compared as a cell of the i-th test cell's type. The only condition is the
cell type (other labels, such as a simulated batch, are not given to the methods).

Scored on every test cell (no comparison subset) by the distances of the generation tasks and the
sample-quality metrics of CFGen and SimBench: PRDC and the classifier two-sample test in the training
PCA space, the memorisation rate (distance to the closest training cell, calibrated on held-out
cells), and KS statistics of library sizes and zeros. ``joint_mmd`` (gamma 1 on raw counts) is kept for
comparison with the toy task, but on hundreds of genes its kernel is ~0 between distinct cells, so it
barely separates methods; ``mmd`` (bandwidths around the median heuristic) is the headline MMD.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import numpy as np

from countsbench.data import CountData, encode_categories
from countsbench.registry import register_task
from countsbench.task import TaskData
from countsbench.tasks.pbmc import read_pbmc68k
from countsbench.tasks.scrna import SPLITS, LabelledCounts, LabelledCountsTask, split_rows
from countsbench.tasks.synthetic import AtlasSimulator

#: Scored by every run (under a second on pbmc). Per-gene metrics (``marginal_wasserstein``, ``marginal_mmd``)
#: are left out: 765 values a run swamp the run summary and the leaderboard (a 15 MB plot); the per-gene
#: marginals are summarised by ``ks_zeros_per_gene`` and ``mean_variance_error`` (`countsbench evaluate --metrics`).
SCRNA_GENERATION_METRICS = (
    "joint_mmd",
    "mmd",
    "joint_sliced_wasserstein",
    "zero_share",
    "prdc_precision",
    "prdc_recall",
    "prdc_density",
    "prdc_coverage",
    "c2st_auc",
    "memorisation_rate",
    "ks_library_size",
    "ks_zeros_per_cell",
    "ks_zeros_per_gene",
    "mean_variance_error",
)
#: The leaderboard's default columns: one MMD, one transport distance, fidelity and diversity, the
#: classifier test, memorisation and two count properties.
SCRNA_GENERATION_HEADLINE = (
    "mmd",
    "joint_sliced_wasserstein",
    "prdc_precision",
    "prdc_recall",
    "c2st_auc",
    "memorisation_rate",
    "ks_library_size",
    "mean_variance_error",
)


class ScrnaGenerationTask(LabelledCountsTask):
    """Generate the test split's number of cells of each cell type (subclasses supply `read_dataset`)."""

    kind: ClassVar[str] = "generation"
    default_metrics: ClassVar[tuple[str, ...]] = SCRNA_GENERATION_METRICS
    headline_metrics: ClassVar[tuple[str, ...]] = SCRNA_GENERATION_HEADLINE
    fractions: ClassVar[tuple[float, float, float]] = (0.7, 0.1, 0.2)

    def __init__(self, split_seed: int = 0) -> None:
        self.split_seed = split_seed

    def build(self, dataset: LabelledCounts) -> TaskData:
        rows = split_rows(dataset, self.fractions, self.split_seed)
        key = dataset.cell_type_key
        labels = np.asarray(dataset.labels[key]).astype(str)
        codes, vocabulary = encode_categories([labels[r] for r in rows])
        counts = dataset.counts

        def split(r: np.ndarray, split_codes: np.ndarray) -> CountData:
            return CountData(counts[r], None, {key: split_codes}, {key: vocabulary}, dataset.feature_names)

        train, valid, test = (split(r, c) for r, c in zip(rows, codes, strict=True))
        names = {}
        if dataset.cell_names is not None:
            names = {
                name: tuple(np.asarray(dataset.cell_names)[r].tolist()) for name, r in zip(SPLITS, rows, strict=True)
            }
        per_type = np.bincount(test.conditions[key], minlength=len(vocabulary))
        return TaskData(
            train=train,
            valid=valid,
            test=test,
            data_files=dataset.files,
            cell_names=names,
            description={
                "split": "/".join(str(f) for f in self.fractions) if dataset.split is None else "prepared",
                "split_stratified_by": key,
                "split_seed": self.split_seed,
                "condition_keys": key,
                "generated_per_type": ",".join(f"{t}={n}" for t, n in zip(vocabulary, per_type, strict=True)),
            },
        )


class PbmcGenerationTask(ScrnaGenerationTask):
    """The embedded pbmc68k_reduced cells (``bulk_labels``), split as ``pbmc_mcar``: 490 / 70 / 140 cells."""

    def dataset_id(self) -> str:
        return "pbmc68k_reduced_generation"

    def read_dataset(self, data_dir: Path) -> LabelledCounts:
        return read_pbmc68k()


class SyntheticGenerationTask(ScrnaGenerationTask):
    """A seeded `AtlasSimulator` draw: 2,000 cells x 200 genes of 6 types, one batch, NB counts (about
    60% zeros); split here like pbmc (70/10/20 by type), not by the simulator's own 80/10/10."""

    n_cells: ClassVar[int] = 2000
    n_genes: ClassVar[int] = 200
    simulator: ClassVar[AtlasSimulator] = AtlasSimulator(
        n_cell_types=6, n_batches=1, baseline_log_mean=-1.0, dispersion_mean=0.3
    )

    def dataset_id(self) -> str:
        return "synthetic_generation"

    def read_dataset(self, data_dir: Path) -> LabelledCounts:
        return dataclasses.replace(self.simulator.simulate(self.n_cells, self.n_genes, seed=0), split=None)


@register_task(
    "pbmc_generate",
    kind="generation",
    summary="pbmc68k_reduced, generate the 140 test cells' number of cells of each of 10 cell types",
    paper="CFGen (Palma et al. 2025, ICLR), conditional generation evaluated by PRDC, C2ST and MMD",
)
def pbmc_generate() -> PbmcGenerationTask:
    return PbmcGenerationTask()


@register_task(
    "synthetic_generate",
    kind="generation",
    summary="2,000 simulated NB cells x 200 genes (6 types), generate the test split's cells per type",
    paper="CFGen (Palma et al. 2025, ICLR), conditional generation evaluated by PRDC, C2ST and MMD",
)
def synthetic_generate() -> SyntheticGenerationTask:
    return SyntheticGenerationTask()
