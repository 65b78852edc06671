"""scRNA-seq imputation tasks: split a labelled count matrix, mark dropouts, hide target entries.

A task is a dataset (`LabelledCounts`) plus a `MaskSpec`. Building it:
1. the dataset's own split (prepared atlases carry one) or a seeded split stratified by cell type;
2. the scIDPMs valid mask (dropouts are never scored, SPEC section 8): a dense array for in-memory
   datasets, an `ExpressedValidity` rule for sparse ones, so an atlas never stores its invalid set;
3. condition codes against vocabularies from the training split, shared by all splits;
4. seeded target masks on the valid entries of the validation and test splits (optionally on a
   seeded subsample of at most ``max_eval_cells`` cells of each).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from countsbench.data import CountData, ExpressedValidity, encode_categories, expressed_table
from countsbench.task import Task, TaskData
from countsbench.tasks.masks import mcar_mask, mnar_mask
from countsbench.tasks.splits import stratified_split

#: Scored by default (a few seconds on pbmc, plus a one-off cached XGBoost fit). scFID
#: (``scfid``, ``log_scfid``) trains a cached scVI per task (about 20 s on pbmc) and imports
#: scvi-tools on every run, so it is asked for explicitly: ``countsbench evaluate CELL --metrics``.
IMPUTATION_METRICS = (
    "rmse",
    "mae",
    "bias",
    "spearman_per_cell",
    "pearson_per_cell",
    "r2_per_cell",
    "energy_distance",
    "mmd",
    "log_mmd",
    "sliced_wasserstein",
    "crps",
    "coverage_90",
    "xgboost_accuracy",
    "xgboost_macro_f1",
)
#: The leaderboard's default columns: one pointwise error, the distributional distances, the
#: calibration of the draws and the downstream classifier (`countsbench leaderboard --all` shows all).
IMPUTATION_HEADLINE = ("rmse", "energy_distance", "mmd", "sliced_wasserstein", "crps", "xgboost_macro_f1")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class LabelledCounts:
    """A count matrix with per-cell labels; ``split`` (train/valid/test per cell) when prepared;
    ``cell_names`` (barcodes) when the data names its cells."""

    counts: np.ndarray | sp.csr_matrix
    labels: Mapping[str, np.ndarray]
    feature_names: tuple[str, ...]
    cell_type_key: str
    files: tuple[Path, ...] = ()
    split: np.ndarray | None = None
    cell_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class MaskSpec:
    """Which valid entries are hidden and scored: MCAR, or MNAR biased to low or high values."""

    kind: Literal["mcar", "mnar_low", "mnar_high"]
    rate: float
    slack: int | None = None

    def draw(self, counts: np.ndarray, valid: np.ndarray, seed: int) -> np.ndarray:
        if self.kind == "mcar":
            return mcar_mask(valid, self.rate, seed)
        return mnar_mask(counts, valid, self.rate, seed, low=self.kind == "mnar_low", slack=self.slack)


def split_rows(
    dataset: LabelledCounts, fractions: tuple[float, float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of (train, valid, test): the dataset's own split when prepared, else a seeded split
    stratified by cell type."""
    if dataset.split is not None:
        return tuple(np.flatnonzero(dataset.split == name) for name in SPLITS)
    cell_types = np.asarray(dataset.labels[dataset.cell_type_key]).astype(str)
    return stratified_split(cell_types, fractions, seed)


class LabelledCountsTask(Task):
    """A task built from one labelled count dataset: subclasses read it (`read_dataset`) and turn it into
    the task's splits (`build`); `sample_dataset` builds the same from a tiny simulated dataset."""

    def read_dataset(self, data_dir: Path) -> LabelledCounts:
        raise NotImplementedError

    def build(self, dataset: LabelledCounts) -> TaskData:
        raise NotImplementedError

    def load(self, data_dir: Path) -> TaskData:
        return self.build(self.read_dataset(data_dir))

    def sample_dataset(self) -> TaskData:
        return self.build(tiny_labelled_counts())


class ScrnaImputationTask(LabelledCountsTask):
    """Impute held-out entries of scRNA-seq count profiles (subclasses supply `read_dataset`)."""

    kind: ClassVar[str] = "imputation"
    default_metrics: ClassVar[tuple[str, ...]] = IMPUTATION_METRICS
    headline_metrics: ClassVar[tuple[str, ...]] = IMPUTATION_HEADLINE
    fractions: ClassVar[tuple[float, float, float]] = (0.8, 0.1, 0.1)

    def __init__(
        self, mask: MaskSpec, split_seed: int = 0, mask_seed: int = 1, max_eval_cells: int | None = None
    ) -> None:
        self.mask = mask
        self.split_seed = split_seed
        self.mask_seed = mask_seed
        self.max_eval_cells = max_eval_cells

    def split_rows(self, dataset: LabelledCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return split_rows(dataset, self.fractions, self.split_seed)

    def evaluated_rows(self, rows: np.ndarray, stream: int) -> np.ndarray:
        """All rows of an evaluated split, or a seeded subsample of ``max_eval_cells`` of them."""
        if self.max_eval_cells is None or len(rows) <= self.max_eval_cells:
            return rows
        rng = np.random.default_rng([self.split_seed, stream])
        return np.sort(rng.choice(rows, self.max_eval_cells, replace=False))

    def build(self, dataset: LabelledCounts) -> TaskData:
        counts = dataset.counts if sp.issparse(dataset.counts) else np.asarray(dataset.counts)
        splits = self.split_rows(dataset)
        keys = list(dataset.labels)
        codes, vocabularies = {}, {}
        for key in keys:
            labels = np.asarray(dataset.labels[key]).astype(str)
            per_split, vocabularies[key] = encode_categories([labels[rows] for rows in splits])
            codes[key] = np.zeros(counts.shape[0], dtype=np.int64)
            for rows, split_codes in zip(splits, per_split, strict=True):
                codes[key][rows] = split_codes
        types = codes[dataset.cell_type_key]
        expressed = expressed_table(counts, types, len(vocabularies[dataset.cell_type_key]))

        def split(rows: np.ndarray) -> CountData:
            rule = ExpressedValidity(expressed, types[rows])
            block = counts[rows]
            return CountData(
                counts=block,
                valid=rule if sp.issparse(block) else rule.mask(block),
                conditions={key: codes[key][rows] for key in keys},
                vocabularies=vocabularies,
                feature_names=dataset.feature_names,
            )

        rows = {
            "train": splits[0],
            "valid": self.evaluated_rows(splits[1], 1),
            "test": self.evaluated_rows(splits[2], 2),
        }
        train, valid_split, test = (split(rows[name]) for name in SPLITS)
        names = {}
        if dataset.cell_names is not None:
            names = {name: tuple(np.asarray(dataset.cell_names)[rows[name]].tolist()) for name in SPLITS}
        valid_target = self.mask.draw(valid_split.dense(), valid_split.valid_mask(), seed=self.mask_seed)
        test_target = self.mask.draw(test.dense(), test.valid_mask(), seed=self.mask_seed + 1)
        return TaskData(
            train=train,
            valid=valid_split,
            test=test,
            test_target=test_target,
            valid_target=valid_target,
            data_files=dataset.files,
            cell_names=names,
            description={
                "split": "prepared" if dataset.split is not None else "/".join(str(f) for f in self.fractions),
                "split_stratified_by": dataset.cell_type_key,
                "split_seed": self.split_seed,
                "max_eval_cells": self.max_eval_cells,
                "mask": self.mask.kind,
                "mask_rate": self.mask.rate,
                "mask_slack": "2% of valid per gene" if self.mask.slack is None else self.mask.slack,
                "mask_seed": self.mask_seed,
                "condition_keys": ",".join(keys),
            },
        )


def tiny_labelled_counts(n_cells: int = 90, n_genes: int = 12, seed: int = 0) -> LabelledCounts:
    """A small seeded negative-binomial dataset with 3 cell types, for tests."""
    rng = np.random.default_rng(seed)
    types = np.repeat(np.array(["A", "B", "C"]), n_cells // 3)
    type_means = rng.gamma(1.0, 2.0, size=(3, n_genes))
    means = type_means[np.searchsorted(["A", "B", "C"], types)]
    counts = rng.poisson(rng.gamma(2.0, means / 2.0))
    return LabelledCounts(
        counts=counts,
        labels={"cell_type": types},
        feature_names=tuple(f"g{j}" for j in range(n_genes)),
        cell_type_key="cell_type",
    )
