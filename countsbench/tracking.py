"""Logging results to MLflow (one experiment per task); only the driver process writes here.

The store is SQLite under the results directory unless ``MLFLOW_TRACKING_URI`` names another
(an ``mlflow server`` shared by a cluster, say). Each experiment gets an explicit artifact location
under the results directory, or MLflow would write ``./mlruns`` wherever the user happens to be.
Logging is idempotent: a result already logged (same ``countsbench.result_id`` tag) is not logged
twice, so ``--resume`` after a crash between the JSON and the MLflow write leaves no duplicate.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from countsbench.directions import direction_of
from countsbench.evaluation import REPLICATES_ARTIFACT, metric_spec_for

TAG_PREFIX = "countsbench."
DIRECTION_TAG = TAG_PREFIX + "direction."
COST_METRICS = ("duration_s", "fit_s", "infer_s", "eval_s", "peak_memory_mb", "n_parameters")


def tracking_uri(results_dir: Path) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{(Path(results_dir).resolve() / 'mlflow.db')}"


def _quiet_mlflow() -> None:
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_file`` (created if needed) for the block."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Tracker:
    """A thin wrapper over `mlflow.MlflowClient` for countsbench results."""

    def __init__(self, results_dir: Path) -> None:
        _quiet_mlflow()
        from mlflow import MlflowClient

        self.results_dir = Path(results_dir).resolve()
        self.uri = tracking_uri(self.results_dir)
        # MLflow creates the SQLite schema on first use; two `countsbench run`s starting together on a
        # new results directory would both run its migrations and one would fail. Serialise that step.
        with _exclusive(self.results_dir / ".mlflow.lock"):
            self.client = MlflowClient(tracking_uri=self.uri)
            self.client.search_experiments(max_results=1)

    def experiment_id(self, task: str, create: bool = True) -> str | None:
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(task)
        if experiment is not None:
            return experiment.experiment_id
        if not create:
            return None
        location = (self.results_dir / "mlartifacts" / task).as_uri()
        try:
            return self.client.create_experiment(task, artifact_location=location)
        except MlflowException:  # created meanwhile by another driver
            return self.client.get_experiment_by_name(task).experiment_id

    def find_run(self, experiment_id: str, result_id: str) -> str | None:
        runs = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{TAG_PREFIX}result_id` = '{result_id}'", max_results=1
        )
        return runs[0].info.run_id if runs else None

    def log(self, result: dict, artifacts: Iterable[Path] = ()) -> str:
        """Log one result (JSON dict) with its artifacts; returns the MLflow run id."""
        from mlflow.entities import Metric, Param

        experiment_id = self.experiment_id(experiment_name(result))
        existing = self.find_run(experiment_id, result["result_id"])
        if existing is not None:
            if self.client.get_run(existing).info.status != "RUNNING":
                return existing
            self.client.delete_run(existing)  # half-logged by a driver killed mid-way: log it afresh
        run = self.client.create_run(experiment_id, run_name=result["run_name"], tags=_tags(result))
        run_id = run.info.run_id
        params = [Param(k, _param_value(v)) for k, v in _params(result).items()]
        metrics = [Metric(k, v, 0, 0) for k, v in _metrics(result).items()]
        for start in range(0, max(len(params), len(metrics)), 100):
            self.client.log_batch(run_id, metrics=metrics[start : start + 100], params=params[start : start + 100])
        for path in artifacts:
            self.client.log_artifact(run_id, str(path))
        if result.get("bootstrap"):  # per-replicate metric values, for the leaderboard's paired test
            self.client.log_dict(run_id, result["bootstrap"], REPLICATES_ARTIFACT)
        self.client.set_tag(run_id, TAG_PREFIX + "status", result["status"])
        self.client.set_terminated(run_id, status="FINISHED" if result["status"] == "ok" else "FAILED")
        return run_id


def experiment_name(result: dict) -> str:
    """The task's name; validation-split runs (hyperparameter tuning) go to ``<task>/valid``."""
    split = result.get("split", "test")
    return result["task"] if split == "test" else f"{result['task']}/{split}"


def _tags(result: dict) -> dict[str, str]:
    tags = {
        "method": result["method"],
        "variant": result["variant"],
        "task": result["task"],
        "seed": str(result["seed"]),
        "role": result["role"],
        "profile": result["profile"],
        "config_hash": result["config_hash"],
        "cell_id": result["cell_id"],
        "version": result["provenance"]["packages"].get("countsbench", "unknown"),
        "git_commit": result["provenance"]["git_commit"],
        TAG_PREFIX + "result_id": result["result_id"],
        TAG_PREFIX + "model_reused": str(bool((result.get("model_cache") or {}).get("reused"))),
    }
    if result.get("error"):
        tags["error"] = result["error"]["message"][:5000]
    for name in result.get("metrics", {}):
        spec = metric_spec_for(name)
        if spec is not None:
            tags[DIRECTION_TAG + name] = direction_of(spec)
    return tags


def _params(result: dict) -> dict[str, object]:
    params = {f"method.{k}": v for k, v in result["config"].items()}
    params.update({f"task.{k}": v for k, v in result.get("task_description", {}).items()})
    params.update({"profile": result["profile"], "device": result["provenance"]["device"]})
    return params


def _param_value(value: object) -> str:
    return str(value)[:6000]


def _metrics(result: dict) -> dict[str, float]:
    values = {k: v for k, v in result.get("metrics", {}).items() if v is not None}
    values.update({k: result["costs"][k] for k in COST_METRICS if result.get("costs", {}).get(k) is not None})
    return values
