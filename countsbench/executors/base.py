"""What every executor provides: submit cell jobs, and handles to poll them.

An executor runs `CellJob`s with `run_job` somewhere (this process, local subprocesses, Slurm jobs)
and hands back each job's result dict. It never writes to MLflow: the sweep driver ingests results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from countsbench.executors.job import CellJob


class WorkerLost(RuntimeError):
    """A worker ended without writing a result (killed, out of memory, crashed interpreter)."""


class JobHandle(ABC):
    def __init__(self, job: CellJob) -> None:
        self.job = job

    @abstractmethod
    def done(self) -> bool:
        """True once the job has ended (successfully or not)."""

    @abstractmethod
    def outcome(self) -> dict:
        """The result dict the worker recorded; raises `WorkerLost` when there is none."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop the job if it still runs."""


class Executor(ABC):
    #: The most jobs running at once (None: no limit, the cluster queues them).
    capacity: int | None = 1

    @abstractmethod
    def submit(self, jobs: Sequence[CellJob]) -> list[JobHandle]:
        """Start the jobs (at most ``capacity`` minus those running) and return their handles."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the progress display: where and how the jobs run."""

    def shutdown(self, handles: Sequence[JobHandle]) -> None:
        """Stop the given unfinished jobs (called when the driver is interrupted)."""
        for handle in handles:
            handle.cancel()
