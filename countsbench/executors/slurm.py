"""The Slurm executor: job arrays through submitit; without Slurm, submitit's local executor.

Each batch of cells that becomes runnable is one job array (``map_array``). Options: partition,
time limit (minutes), GPUs and CPUs per task, and ``--workers`` as the array's parallelism. When no
``sbatch`` is on the PATH the same code runs on submitit's `LocalExecutor` (one subprocess per job),
which is what the tests use. Job files (pickles, logs) go under ``<results>/sweep/submitit``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from countsbench.context import cpu_threads
from countsbench.executors.base import Executor, JobHandle, WorkerLost
from countsbench.executors.job import CellJob, run_job


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time_min: int = 60
    gpus_per_task: int = 0
    cpus_per_task: int | None = None


class SubmititHandle(JobHandle):
    def __init__(self, job: CellJob, submitted) -> None:
        super().__init__(job)
        self.submitted = submitted

    def done(self) -> bool:
        return self.submitted.done()

    def outcome(self) -> dict:
        from submitit.core.utils import FailedJobError, UncompletedJobError

        try:
            return self.submitted.result()
        except (FailedJobError, UncompletedJobError) as error:
            last = str(error).strip().splitlines()[-1:] or ["no message"]
            raise WorkerLost(
                f"job {self.submitted.job_id} ended without a result: {last[0]} (log {self.submitted.paths.stderr})"
            ) from error

    def cancel(self) -> None:
        if not self.submitted.done():
            self.submitted.cancel(check=False)


class SlurmExecutor(Executor):
    def __init__(self, work_dir: Path, workers: int | None = None, options: SlurmOptions = SlurmOptions()) -> None:
        import submitit

        self.cluster = "slurm" if shutil.which("sbatch") else "local"
        self.executor = submitit.AutoExecutor(folder=Path(work_dir) / "submitit" / "%j", cluster=self.cluster)
        parameters: dict = {"timeout_min": options.time_min, "gpus_per_node": options.gpus_per_task}
        if options.cpus_per_task:
            parameters["cpus_per_task"] = options.cpus_per_task
        if self.cluster == "slurm":
            if options.partition:
                parameters["slurm_partition"] = options.partition
            if workers:
                parameters["slurm_array_parallelism"] = workers
            self.capacity = None  # Slurm queues the array; the parallelism limit is its own
        else:
            self.capacity = workers or cpu_threads()
        self.executor.update_parameters(name="countsbench", **parameters)

    def submit(self, jobs: Sequence[CellJob]) -> list[JobHandle]:
        submitted = self.executor.map_array(run_job, list(jobs))
        return [SubmititHandle(job, s) for job, s in zip(jobs, submitted, strict=True)]

    def describe(self) -> str:
        if self.cluster == "slurm":
            return "Slurm job arrays (submitit)"
        return f"no Slurm found: submitit's local executor, {self.capacity} job(s) at a time"
