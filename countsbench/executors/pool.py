"""The pool executor: each cell in a fresh local subprocess, at most N at once.

A fresh process per cell means the recorded peak memory is that cell's own (imports included). With
GPUs, one worker slot per GPU (``CUDA_VISIBLE_DEVICES`` set per slot); without, N CPU workers share
the cores, each limited to ``cores // N`` threads. Workers are killed with the driver (Linux
``PR_SET_PDEATHSIG``), so a ``kill -9`` of the driver leaves no orphan that could write a result
after a ``--resume`` has rerun its cell.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from countsbench.context import cpu_threads
from countsbench.executors.base import Executor, JobHandle, WorkerLost
from countsbench.executors.job import CellJob

#: Seconds a worker gets past its cell timeout to record the timeout itself before it is killed.
KILL_GRACE_S = 30.0
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def visible_gpus() -> int:
    from countsbench.context import cuda_available

    if not cuda_available():
        return 0
    import torch

    return torch.cuda.device_count()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class SubprocessHandle(JobHandle):
    def __init__(self, job: CellJob, process: subprocess.Popen, outcome_path: Path, log_path: Path, slot: int):
        super().__init__(job)
        self.process, self.outcome_path, self.log_path, self.slot = process, outcome_path, log_path, slot
        self.started, self.killed_late = time.monotonic(), False

    def done(self) -> bool:
        """Finished; a worker still running `KILL_GRACE_S` past its cell timeout (stuck where the worker's
        own alarm cannot interrupt it, e.g. inside one native call) is killed and counts as lost."""
        if self.process.poll() is not None:
            return True
        limit = self.job.timeout_s
        if limit is not None and time.monotonic() - self.started > limit + KILL_GRACE_S:
            self.killed_late = True
            self.cancel()
            return True
        return False

    def outcome(self) -> dict:
        import json

        code = self.process.wait()
        if self.killed_late and not self.outcome_path.exists():
            raise WorkerLost(
                f"worker killed: still running {KILL_GRACE_S} s past --cell-timeout {self.job.timeout_s:g} s "
                f"(timeout; log {self.log_path})"
            )
        if code != 0 or not self.outcome_path.exists():
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] if self.log_path.exists() else []
            detail = f": {tail[0]}" if tail else ""
            raise WorkerLost(f"worker exited with code {code} before recording a result{detail} (log {self.log_path})")
        result = json.loads(self.outcome_path.read_text())
        self.outcome_path.unlink()
        self.log_path.unlink(missing_ok=True)  # kept only when the worker was lost
        return result

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class PoolExecutor(Executor):
    def __init__(self, work_dir: Path, workers: int | None = None) -> None:
        self.gpus = visible_gpus()
        self.capacity = workers or self.gpus or cpu_threads()
        self.threads = max(1, cpu_threads() // self.capacity)
        self.work_dir = Path(work_dir)
        self.free_slots = list(range(self.capacity))
        self.handles: list[SubprocessHandle] = []

    def _environment(self, slot: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update({name: str(self.threads) for name in THREAD_VARIABLES})
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(slot % self.gpus)
        # workers import what the driver can (plugins given by path, the tests' plugin directory)
        env["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
        return env

    def _reclaim_slots(self) -> None:
        for handle in [h for h in self.handles if h.done()]:
            self.free_slots.append(handle.slot)
            self.handles.remove(handle)

    def submit(self, jobs: Sequence[CellJob]) -> list[JobHandle]:
        self._reclaim_slots()
        if len(jobs) > len(self.free_slots):
            raise RuntimeError(f"{len(jobs)} jobs submitted with {len(self.free_slots)} free workers")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        started = []
        for job in jobs:
            slot = self.free_slots.pop(0)
            stem = self.work_dir / f"{job.request.method}-{job.request.task}-{job.request.seed}-{os.urandom(4).hex()}"
            outcome, log = stem.with_suffix(".outcome.json"), stem.with_suffix(".log")
            with log.open("w") as log_file:
                process = subprocess.Popen(
                    self.worker_command(job, outcome),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=self._environment(slot),
                    preexec_fn=_die_with_parent,
                )
            handle = SubprocessHandle(job, process, outcome, log, slot)
            self.handles.append(handle)
            started.append(handle)
        return started

    @staticmethod
    def worker_command(job: CellJob, outcome: Path) -> list[str]:
        """The command a worker process runs: the job's cell, its result written to ``outcome``."""
        return [sys.executable, "-m", "countsbench.executors.cell_process", job.to_json(), str(outcome)]

    def describe(self) -> str:
        where = f"{self.gpus} GPU(s)" if self.gpus else f"{self.threads} thread(s) each"
        return f"pool of {self.capacity} local worker process(es), {where}"
