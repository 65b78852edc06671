"""The sweep driver: schedules a grid's cells on an executor and ingests results into MLflow.

- Resume: a cell with a successful JSON result is not rerun (``resume=True``); its result is ingested
  if the previous driver died before doing so. Ingestion is idempotent through the result id, and a
  half-logged MLflow run is replaced, so every cell is recorded exactly once.
- Failures: a cell whose latest attempt failed is reported and, under ``resume``, left alone unless
  ``retry_failed``. A worker lost without a result (killed, out of memory) is reported too; having
  no JSON, it is rerun by the next ``--resume``.
- Cells that share a fitted model (same `fit_id`, e.g. pbmc_mcar and pbmc_mnar) never run at the same
  time: the first fits and caches the model, the others reuse it, and no two workers write one cache.
- MLflow: in each experiment the sweep touches, a parent run (`SweepParents`) whose children are the
  sweep's cells, the same parent again when the sweep is resumed (its id is a digest of the cell ids);
  cells logged before (by ``countsbench run``) are adopted unless they already have a parent. At the
  end the parent records the cell counts, and each experiment's ``leaderboard`` run is refreshed.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from countsbench.executors.base import Executor, JobHandle, WorkerLost
from countsbench.executors.job import CellJob
from countsbench.executors.planning import PlannedCell
from countsbench.executors.progress import Progress
from countsbench.results import ResultStore
from countsbench.runner import ingest, publish_leaderboard
from countsbench.tracking import experiment_name

POLL_SECONDS = 0.2


@dataclass
class Failure:
    cell: PlannedCell
    message: str


@dataclass
class SweepReport:
    results: dict[str, dict] = field(default_factory=dict)  # cell_id -> latest result
    failures: list[Failure] = field(default_factory=list)
    skipped: int = 0
    ran: int = 0


@dataclass
class SweepSettings:
    results_dir: Path
    data_dir: Path | None = None
    metrics: list[str] | None = None
    cache_models: bool = True
    plugins: tuple[str, ...] = ()
    resume: bool = False
    retry_failed: bool = False
    cell_timeout: float | None = None

    def job(self, cell: PlannedCell) -> CellJob:
        data_dir = str(Path(self.data_dir).resolve()) if self.data_dir is not None else None
        root = str(Path(self.results_dir).resolve())
        return CellJob(cell.request, root, data_dir, self.metrics, self.cache_models, self.plugins, self.cell_timeout)


class SweepParents:
    """The sweep's parent run in each experiment it touches, created (or found again) at the start."""

    def __init__(self, tracker, cells: Sequence[PlannedCell], executor: str) -> None:
        self.tracker = tracker
        sweep_id = hashlib.sha256(",".join(sorted(c.cell_id for c in cells)).encode()).hexdigest()[:16]
        by_experiment: dict[str, list[PlannedCell]] = {}
        for cell in cells:
            name = experiment_name({"task": cell.request.task, "split": cell.request.split})
            by_experiment.setdefault(name, []).append(cell)
        self.cells = {name: {c.cell_id for c in group} for name, group in by_experiment.items()}
        self.runs = {}
        for name, group in by_experiment.items():
            variants = sorted({c.variant for c in group})
            seeds = sorted({c.request.seed for c in group})
            title = f"sweep {', '.join(variants)} x seeds {','.join(map(str, seeds))}"
            title = title if len(title) <= 200 else title[:199] + "…"
            params = {"sweep_id": sweep_id, "cells": len(group), "variants": ", ".join(variants)}
            params.update({"seeds": ",".join(map(str, seeds)), "executor": executor})
            self.runs[name] = tracker.sweep_run(name, sweep_id, title, params)

    def parent_of(self, result: dict) -> str | None:
        return self.runs.get(experiment_name(result))

    def adopt(self, result: dict) -> None:
        """Make a cell logged before this sweep one of its children."""
        parent = self.parent_of(result)
        if parent is not None and result.get("mlflow_run_id"):
            self.tracker.adopt(result["mlflow_run_id"], parent)

    def finish(self, report: SweepReport, completed: bool) -> None:
        """Cell counts on each parent; FINISHED, FAILED (some cell failed) or KILLED (interrupted)."""
        failed = {f.cell.cell_id for f in report.failures}
        for name, run_id in self.runs.items():
            ids = self.cells[name]
            counts = {"cells": len(ids), "cells_failed": len(ids & failed)}
            counts["cells_ok"] = sum(report.results.get(i, {}).get("status") == "ok" for i in ids)
            status = "KILLED" if not completed else "FAILED" if counts["cells_failed"] else "FINISHED"
            self.tracker.finish_sweep_run(run_id, counts, status)


def _recorded(store: ResultStore, cell: PlannedCell) -> dict | None:
    """The cell's success, else its latest failure, else None."""
    success = store.load_success(cell.cell_id)
    if success is not None:
        return success
    failures = store.load_failures(cell.cell_id)
    return failures[-1] if failures else None


def run_sweep(
    cells: Sequence[PlannedCell],
    executor: Executor,
    settings: SweepSettings,
    progress: Progress | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> SweepReport:
    """Run the cells (skipping recorded ones under ``resume``) and ingest every result."""
    from countsbench.tracking import Tracker

    store = ResultStore(settings.results_dir)
    store.check_writable()
    tracker = Tracker(store.root)
    parents = SweepParents(tracker, cells, executor.describe())
    report = SweepReport()
    pending: list[PlannedCell] = []
    for cell in cells:
        previous = _recorded(store, cell) if settings.resume or settings.retry_failed else None
        if previous is None or (previous["status"] == "failed" and settings.retry_failed):
            pending.append(cell)
            continue
        if not previous.get("mlflow_run_id"):
            ingest(previous, store.root, tracker, parents.parent_of(previous))
        else:
            parents.adopt(previous)
        report.results[cell.cell_id] = previous
        report.skipped += 1
        if previous["status"] == "failed":
            report.failures.append(Failure(cell, previous["error"]["message"]))
    progress = progress or Progress(len(cells))
    progress.total = len(cells)
    progress.done = sum(r["status"] == "ok" for r in report.results.values())
    progress.failed = len(report.failures)
    running: dict[JobHandle, PlannedCell] = {}
    completed = False
    try:
        while pending or running:
            _start_runnable(pending, running, executor, settings)
            progress.running = len(running)
            progress.update()
            finished = [handle for handle in running if handle.done()]
            if not finished:
                time.sleep(POLL_SECONDS)
                continue
            for handle in finished:
                cell = running.pop(handle)
                _collect(handle, cell, store, tracker, report, progress, parents)
                if on_result is not None and cell.cell_id in report.results:
                    on_result(report.results[cell.cell_id])
            progress.running = len(running)
            progress.update()
        completed = True
    finally:
        executor.shutdown([handle for handle in running if not handle.done()])
        progress.close()
        if completed:
            parents.finish(report, completed)
        else:  # interrupted: mark the parents KILLED if MLflow still answers, never mask the interruption
            with contextlib.suppress(Exception):
                parents.finish(report, completed)
    for experiment in parents.runs:
        publish_leaderboard(tracker, experiment)
    return report


def _start_runnable(
    pending: list[PlannedCell], running: dict[JobHandle, PlannedCell], executor: Executor, settings: SweepSettings
) -> None:
    free = len(pending) if executor.capacity is None else executor.capacity - len(running)
    busy = {cell.fit_id for cell in running.values()} if settings.cache_models else set()
    batch = []
    for cell in list(pending):
        if len(batch) >= free:
            break
        if cell.fit_id in busy:
            continue
        batch.append(cell)
        pending.remove(cell)
        if settings.cache_models:
            busy.add(cell.fit_id)
    if batch:  # one job per cell, submitted together (one job array on Slurm)
        handles = executor.submit([settings.job(cell) for cell in batch])
        running.update(zip(handles, batch, strict=True))


def _collect(
    handle: JobHandle,
    cell: PlannedCell,
    store: ResultStore,
    tracker,
    report: SweepReport,
    progress: Progress,
    parents: SweepParents,
) -> None:
    report.ran += 1
    progress.finished_here += 1
    try:
        result = handle.outcome()
    except WorkerLost as error:
        report.failures.append(Failure(cell, str(error)))
        progress.failed += 1
        return
    ingest(result, store.root, tracker, parents.parent_of(result))
    report.results[cell.cell_id] = result
    if result["status"] == "ok":
        progress.done += 1
    else:
        report.failures.append(Failure(cell, result["error"]["message"]))
        progress.failed += 1
