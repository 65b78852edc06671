"""The `Task` base class: a dataset, its splits and what is evaluated.

A task fixes its splits and masks itself (from its own seed), so every method and every method
seed sees the same evaluation targets; ``--seed`` only controls the method's randomness.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from countsbench.data import CountData, CountDataError

DATA_DIR_ENV = "COUNTSBENCH_DATA"


class TaskDataMissing(FileNotFoundError):
    """A task's user-supplied data is absent; the message says which file to obtain and how."""

    def __str__(self) -> str:
        return str(self.args[0])


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "countsbench-data"))


@dataclass(frozen=True)
class TaskInfo:
    """What a method may know about a task before fitting (used for profile defaults)."""

    name: str
    kind: str
    n_features: int
    sample_shape: tuple[int, ...]
    condition_keys: tuple[str, ...]
    max_value: int | None
    #: Backbone settings the paper used on this dataset, ``{backbone: {profile: {key: value}}}`` (data, so
    #: that no method recognises a task by its name).
    network_presets: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskData:
    """The splits of a task and, for imputation, the held-out target entries.

    ``test_target`` / ``valid_target``: boolean masks, True = an entry hidden from the method and
    scored (imputation tasks only; always a subset of the valid entries).
    ``data_files``: the files the data was read from, checksummed into the run's provenance.
    ``description``: the task's fixed parameters (split, mask rate, seeds), recorded with the run.
    """

    train: CountData
    valid: CountData
    test: CountData
    test_target: np.ndarray | None = None
    valid_target: np.ndarray | None = None
    data_files: tuple[Path, ...] = ()
    description: Mapping[str, object] = field(default_factory=dict)
    #: Values the task hands its metrics as ``Evaluation.options`` (the toy task's true variances).
    metric_options: Mapping[str, object] = field(default_factory=dict)
    #: Split -> the names of its rows, where the data names its cells (pbmc's barcodes): a file made by
    #: another tool is matched to the test cells by these (`countsbench.external`). Empty: unnamed.
    cell_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split, target in (("test", self.test_target), ("valid", self.valid_target)):
            if target is None:
                continue
            data = getattr(self, split)
            if target.shape != data.counts.shape or target.dtype != bool:
                raise CountDataError(f"{split} target mask must be boolean with the shape of the {split} counts")
            if data.valid is not None and np.any(target & ~data.valid_mask()):
                raise CountDataError(f"{split} target mask selects invalid entries")
        for split, names in self.cell_names.items():
            if len(names) != getattr(self, split).n_samples:
                raise CountDataError(f"{len(names)} cell names for the {getattr(self, split).n_samples} {split} cells")


class Task:
    """Base class of every task; register a factory of it with `register_task`.

    Subclasses set ``kind``, ``default_metrics`` (scored by every run) and ``headline_metrics`` (the
    few a leaderboard shows by default, a subset of the former; empty: all of them) and implement
    ``load`` (real data) and ``sample_dataset`` (a tiny version for tests). ``dataset_id`` names the data so that tasks
    sharing it (pbmc_mcar, pbmc_mnar) can share one trained model.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "imputation"
    default_metrics: ClassVar[tuple[str, ...]] = ()
    headline_metrics: ClassVar[tuple[str, ...]] = ()
    #: See `TaskInfo.network_presets`.
    network_presets: Mapping[str, Mapping[str, Mapping[str, Any]]] = {}

    def dataset_id(self) -> str:
        return type(self).__name__

    def load(self, data_dir: Path) -> TaskData:
        raise NotImplementedError

    def sample_dataset(self) -> TaskData:
        raise NotImplementedError

    def write_artifacts(self, truth: CountData, prediction: np.ndarray, output_dir: Path) -> list[Path]:
        """Task-specific plots of a run's output, written into the run's artifact directory (none by default)."""
        return []

    def info(self, data: TaskData, name: str) -> TaskInfo:
        train = data.train
        return TaskInfo(
            name=name,
            kind=self.kind,
            n_features=train.n_features,
            sample_shape=train.sample_shape,
            condition_keys=train.condition_keys,
            max_value=train.max_value,
            network_presets=self.network_presets,
        )
