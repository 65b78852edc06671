"""The sequential executor: cells one after another in the driver's own process (the default, CI).

Peak memory is then the driver's high-water mark so far, not the cell's own; use the pool executor
when per-cell memory figures matter.
"""

from __future__ import annotations

from collections.abc import Sequence

from countsbench.executors.base import Executor, JobHandle
from countsbench.executors.job import CellJob, run_job


class FinishedHandle(JobHandle):
    def __init__(self, job: CellJob, result: dict) -> None:
        super().__init__(job)
        self.result = result

    def done(self) -> bool:
        return True

    def outcome(self) -> dict:
        return self.result

    def cancel(self) -> None:
        """Nothing to stop: the cell ran during `submit`."""


class SequentialExecutor(Executor):
    capacity = 1

    def submit(self, jobs: Sequence[CellJob]) -> list[JobHandle]:
        return [FinishedHandle(job, run_job(job)) for job in jobs]

    def describe(self) -> str:
        return "sequential, in this process"
