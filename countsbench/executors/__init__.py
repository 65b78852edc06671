"""Running grids of cells: grid expansion, planning, executors and the sweep driver.

Executors (`EXECUTORS`): ``sequential`` (in the driver's process), ``pool`` (a fresh local process per
cell) and ``slurm`` (submitit job arrays, or submitit's local executor when there is no Slurm). All
run the same `countsbench.runner.run_cell` and write JSON only; the driver ingests into MLflow.
"""

from __future__ import annotations

from pathlib import Path

from countsbench.config import ConfigError
from countsbench.executors.base import Executor
from countsbench.executors.pool import PoolExecutor
from countsbench.executors.sequential import SequentialExecutor
from countsbench.executors.slurm import SlurmExecutor, SlurmOptions

EXECUTORS = ("sequential", "pool", "slurm")


def make_executor(name: str, work_dir: Path, workers: int | None = None, slurm: SlurmOptions | None = None) -> Executor:
    """The executor called ``name``; job files go under ``work_dir``."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if name == "sequential":
        return SequentialExecutor()
    if name == "pool":
        return PoolExecutor(work_dir, workers)
    if name == "slurm":
        return SlurmExecutor(work_dir, workers, slurm or SlurmOptions())
    raise ConfigError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "SlurmOptions", "make_executor"]
