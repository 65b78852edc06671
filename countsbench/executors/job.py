"""A cell as a unit of work that any executor can run: the same `run_cell`, JSON only.

Workers never touch MLflow (`track=False`); the driver ingests their results. `run_job` is what a
pool subprocess (`countsbench.executors.cell_process`, through `main`) or a Slurm/submitit job calls.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from countsbench.results import write_json_atomic
from countsbench.runner import CellRequest, run_cell


@dataclass(frozen=True)
class CellJob:
    request: CellRequest
    results_dir: str
    data_dir: str | None = None
    metrics: list[str] | None = None
    cache_models: bool = True
    plugins: tuple[str, ...] = ()
    #: Seconds of work before the cell is stopped and recorded as failed (reason timeout); None: no limit.
    timeout_s: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CellJob:
        payload = json.loads(text)
        payload["request"] = CellRequest(**payload["request"])
        payload["plugins"] = tuple(payload["plugins"])
        return cls(**payload)


def run_job(job: CellJob) -> dict:
    """Run the job's cell in this process and return its result (written as JSON, not to MLflow)."""
    from countsbench.registry import REGISTRY

    REGISTRY.load_all(job.plugins)
    return run_cell(
        job.request,
        Path(job.results_dir),
        data_dir=Path(job.data_dir) if job.data_dir else None,
        track=False,
        cache_models=job.cache_models,
        metrics=job.metrics,
        show_progress=False,
        timeout_s=job.timeout_s,
    )


def main(argv: list[str]) -> int:
    job_text, outcome_path = argv
    write_json_atomic(Path(outcome_path), run_job(CellJob.from_json(job_text)))
    return 0
