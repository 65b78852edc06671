"""Molecular cross-validation (MCV) denoising tasks (Batson et al. 2019; openproblems v2 task_denoising).

Every count of every cell is split binomially, ``train = Binomial(x, p)`` and ``test = x - train``
(p = 0.9 by default, as openproblems' ``train_frac``), with a seed fixed by the task. Given the
cell's expression, the two parts are independent Poisson draws for Poisson (or mixed-Poisson) counts,
so the test part is an unbiased, independent measurement of what the training part is noisy about.

A method is fitted on the training counts of ALL cells and denoises those same counts (transductive,
as in openproblems); the held-out test molecules are never shown to it (only to the
``perfect_denoising`` control). It returns expected counts on the scale of the training counts; the
metrics (metrics/mcv.py) compare them with the test counts. Genes with no training count are dropped,
as openproblems does. ``TaskData.valid`` is an empty split: MCV has no held-out cells to tune on.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from countsbench.data import CountData, encode_categories
from countsbench.registry import register_task
from countsbench.task import TaskData
from countsbench.tasks.pbmc import read_pbmc68k
from countsbench.tasks.scrna import LabelledCounts, LabelledCountsTask
from countsbench.tasks.synthetic import AtlasSimulator

#: Scored by default; both are minimised (metrics/mcv.py).
DENOISING_METRICS = ("mcv_mse", "mcv_poisson")


def mcv_split(counts: np.ndarray | sp.csr_matrix, p: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` with ``train ~ Binomial(x, p)`` per count and ``test = x - train`` (dense int64)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"the MCV training fraction must lie in (0, 1), got {p}")
    x = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
    x = x.astype(np.int64)
    train = np.random.default_rng([seed, 0x3C7]).binomial(x, p)
    return train, x - train


class McvDenoisingTask(LabelledCountsTask):
    """Denoise the MCV training counts of a labelled dataset (subclasses supply `read_dataset`)."""

    kind: ClassVar[str] = "denoising"
    default_metrics: ClassVar[tuple[str, ...]] = DENOISING_METRICS
    headline_metrics: ClassVar[tuple[str, ...]] = DENOISING_METRICS

    def __init__(self, train_fraction: float = 0.9, split_seed: int = 0) -> None:
        self.train_fraction = train_fraction
        self.split_seed = split_seed

    def build(self, dataset: LabelledCounts) -> TaskData:
        train, test = mcv_split(dataset.counts, self.train_fraction, self.split_seed)
        genes = np.flatnonzero(train.sum(axis=0) > 0)
        conditions, vocabularies = {}, {}
        for key, labels in dataset.labels.items():
            (codes,), vocabularies[key] = encode_categories([np.asarray(labels).astype(str)])
            conditions[key] = codes
        names = tuple(np.asarray(dataset.feature_names)[genes])

        def split(counts: np.ndarray) -> CountData:
            return CountData(counts[:, genes], None, conditions, vocabularies, names)

        train_data = split(train)
        return TaskData(
            train=train_data,
            valid=train_data.subset(np.arange(0)),
            test=split(test),
            data_files=dataset.files,
            description={
                "split": "molecular cross-validation of every cell",
                "mcv_train_fraction": self.train_fraction,
                "mcv_seed": self.split_seed,
                "genes_dropped": int(train.shape[1] - genes.size),
                "split_stratified_by": dataset.cell_type_key,
                "condition_keys": ",".join(dataset.labels),
            },
        )


class PbmcDenoisingTask(McvDenoisingTask):
    def dataset_id(self) -> str:
        return "pbmc68k_reduced_mcv"

    def read_dataset(self, data_dir: Path) -> LabelledCounts:
        return read_pbmc68k()


class SyntheticDenoisingTask(McvDenoisingTask):
    """A seeded `AtlasSimulator` draw, nearly Poisson given the cell (dispersion 0.02): cell-type
    programmes make genes co-vary, so the technical noise MCV measures is what smoothing can remove."""

    n_cells: ClassVar[int] = 600
    n_genes: ClassVar[int] = 200

    def dataset_id(self) -> str:
        return "synthetic_mcv"

    def read_dataset(self, data_dir: Path) -> LabelledCounts:
        simulator = AtlasSimulator(n_cell_types=6, n_batches=2, baseline_log_mean=1.0, dispersion_mean=0.02)
        return simulator.simulate(self.n_cells, self.n_genes, seed=0)


@register_task(
    "pbmc_denoise",
    kind="denoising",
    summary="pbmc68k_reduced, MCV denoising: 90% of each count's molecules to denoise, 10% held out",
    paper="Batson, Royer, Webber 2019, Molecular cross-validation for single-cell RNA-seq, bioRxiv 786269",
)
def pbmc_denoise() -> PbmcDenoisingTask:
    return PbmcDenoisingTask()


@register_task(
    "synthetic_denoise",
    kind="denoising",
    summary="600 simulated near-Poisson cells x 200 genes (6 types), MCV denoising with p = 0.9",
    paper="Batson, Royer, Webber 2019, Molecular cross-validation for single-cell RNA-seq, bioRxiv 786269",
)
def synthetic_denoise() -> SyntheticDenoisingTask:
    return SyntheticDenoisingTask()
