"""Logging results to MLflow (one experiment per task); only the driver process writes here.

The store is SQLite under the results directory unless ``MLFLOW_TRACKING_URI`` names another
(an ``mlflow server`` shared by a cluster, say). Each experiment gets an explicit artifact location
under the results directory, or MLflow would write ``./mlruns`` wherever the user happens to be.
Logging is idempotent: a result already logged (same ``countsbench.result_id`` tag) is not logged
twice, so ``--resume`` after a crash between the JSON and the MLflow write leaves no duplicate.

The MLflow UI is meant to be usable as a leaderboard, so the conventions it reads are followed:
- runs are named ``<variant> seed <seed>`` (``countsdiff[n_samples=5] seed 2``) and carry MLflow's
  source tags (``mlflow.source.git.commit``: the commit recorded in the result's provenance);
- an experiment's description (``mlflow.note.content``) is its task's summary and docstrings;
- the task's data are the run's dataset inputs (`dataset_inputs`): their digests are the checksums
  the result records in its provenance;
- a sweep's cells are child runs (``mlflow.parentRunId``) of one parent run per experiment
  (`Tracker.sweep_run`), found again by its ``countsbench.sweep_id`` when the sweep is resumed;
- each experiment holds a ``leaderboard`` run whose artifacts are the leaderboard as MLflow tables
  (`countsbench.leaderboards.mlflow_table`).
Runs that are not cells carry ``countsbench.kind`` (``sweep`` or ``leaderboard``) and no ``cell_id``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from countsbench.directions import direction_of
from countsbench.evaluation import REPLICATES_ARTIFACT, metric_spec_for

TAG_PREFIX = "countsbench."
DIRECTION_TAG = TAG_PREFIX + "direction."
KIND_TAG = TAG_PREFIX + "kind"
SWEEP_ID_TAG = TAG_PREFIX + "sweep_id"
COST_METRICS = ("duration_s", "fit_s", "infer_s", "eval_s", "peak_memory_mb", "n_parameters")
#: MLflow's own tags (`mlflow.utils.mlflow_tags`), read by its UI.
GIT_COMMIT_TAG = "mlflow.source.git.commit"
SOURCE_NAME_TAG = "mlflow.source.name"
SOURCE_TYPE_TAG = "mlflow.source.type"
PARENT_RUN_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
DATA_CONTEXT_TAG = "mlflow.data.context"
#: A dataset digest is at most 36 characters in MLflow's SQL stores: the first 32 hex digits of the sha256.
DIGEST_CHARS = 32
LEADERBOARD_RUN = "leaderboard"


#: Seconds to wait for a tracking server to accept a connection before giving up.
CONNECT_TIMEOUT_S = 5.0
#: MLflow's HTTP retry defaults (7 retries, backoff factor 2: over 4 minutes on a dead server) are
#: lowered unless the user set them.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


class TrackingError(RuntimeError):
    """MLflow could not be reached or written (the JSON results are unaffected)."""


def check_reachable(uri: str) -> None:
    """Fail within `CONNECT_TIMEOUT_S` when an http(s) tracking server does not accept connections."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise TrackingError(
            f"MLflow server {uri} is unreachable ({error.strerror or error}); check MLFLOW_TRACKING_URI"
        ) from None


def run_name(variant: str, seed: int) -> str:
    """The MLflow run name of a cell: ``countsdiff[n_samples=5] seed 2``."""
    return f"{variant} seed {seed}"


def tracking_uri(results_dir: Path) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{(Path(results_dir).resolve() / 'mlflow.db')}"


def _quiet_mlflow() -> None:
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_file`` (created if needed) for the block. A directory
    that cannot be written (a reader's read-only copy) gets no lock: nothing is written there either."""
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_file, "a")  # noqa: SIM115 - closed below
    except OSError:
        yield
        return
    with handle:
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
        check_reachable(self.uri)
        # MLflow creates the SQLite schema on first use; two `countsbench run`s starting together on a
        # new results directory would both run its migrations and one would fail. Serialise that step.
        try:
            with _exclusive(self.results_dir / ".mlflow.lock"):
                self.client = MlflowClient(tracking_uri=self.uri)
                self.client.search_experiments(max_results=1)
        except Exception as error:  # a locked or corrupt SQLite file, a server refusing requests
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            raise TrackingError(f"MLflow store {self.uri} is unusable ({reason})") from error

    def experiment_id(self, task: str, create: bool = True) -> str | None:
        """The experiment of ``task`` (or ``<task>/valid``); created with its description when ``create``,
        and an older experiment without a description gets one."""
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(task)
        if experiment is not None:
            if create and NOTE_TAG not in experiment.tags:
                note = experiment_note(task)
                if note:
                    self.client.set_experiment_tag(experiment.experiment_id, NOTE_TAG, note)
            return experiment.experiment_id
        if not create:
            return None
        location = (self.results_dir / "mlartifacts" / task).as_uri()
        note = experiment_note(task)
        try:
            return self.client.create_experiment(
                task, artifact_location=location, tags={NOTE_TAG: note} if note else None
            )
        except MlflowException:  # created meanwhile by another driver
            return self.client.get_experiment_by_name(task).experiment_id

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Serialise a get-or-create between the drivers sharing this results directory."""
        with _exclusive(self.results_dir / f".{name}.lock"):
            yield

    def find_run(self, experiment_id: str, result_id: str) -> str | None:
        runs = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{TAG_PREFIX}result_id` = '{result_id}'", max_results=1
        )
        return runs[0].info.run_id if runs else None

    def log(self, result: dict, artifacts: Iterable[Path] = (), parent_run_id: str | None = None) -> str:
        """Log one result (JSON dict) with its artifacts, as a child of ``parent_run_id`` (a sweep's
        parent run) when given; returns the MLflow run id."""
        from mlflow.entities import Metric, Param

        experiment_id = self.experiment_id(experiment_name(result))
        existing = self.find_run(experiment_id, result["result_id"])
        if existing is not None:
            if self.client.get_run(existing).info.status != "RUNNING":
                if parent_run_id is not None:
                    self.adopt(existing, parent_run_id)
                return existing
            self.client.delete_run(existing)  # half-logged by a driver killed mid-way: log it afresh
        tags = _tags(result)
        if parent_run_id is not None:
            tags[PARENT_RUN_TAG] = parent_run_id
        run = self.client.create_run(experiment_id, run_name=run_name(result["variant"], result["seed"]), tags=tags)
        run_id = run.info.run_id
        params = [Param(k, _param_value(v)) for k, v in _params(result).items()]
        metrics = [Metric(k, v, 0, 0) for k, v in _metrics(result).items()]
        for start in range(0, max(len(params), len(metrics)), 100):
            self.client.log_batch(run_id, metrics=metrics[start : start + 100], params=params[start : start + 100])
        self.client.log_inputs(run_id, datasets=dataset_inputs(result))
        for path in artifacts:
            self.client.log_artifact(run_id, str(path))
        if result.get("bootstrap"):  # per-replicate metric values, for the leaderboard's paired test
            self.client.log_dict(run_id, result["bootstrap"], REPLICATES_ARTIFACT)
        self.client.set_tag(run_id, TAG_PREFIX + "status", result["status"])
        self.client.set_terminated(run_id, status="FINISHED" if result["status"] == "ok" else "FAILED")
        return run_id

    def adopt(self, run_id: str, parent_run_id: str) -> None:
        """Make a logged run a child of ``parent_run_id`` unless it already has a parent (a cell that
        an earlier sweep ran stays under that sweep)."""
        if PARENT_RUN_TAG not in self.client.get_run(run_id).data.tags:
            self.client.set_tag(run_id, PARENT_RUN_TAG, parent_run_id)

    def sweep_run(self, experiment: str, sweep_id: str, name: str, params: Mapping[str, object]) -> str:
        """The parent run of a sweep's cells in ``experiment``: created RUNNING, or found again by
        ``sweep_id`` (a resumed sweep) and set RUNNING again."""
        experiment_id = self.experiment_id(experiment)
        query = f"tags.`{KIND_TAG}` = 'sweep' and tags.`{SWEEP_ID_TAG}` = '{sweep_id}'"
        with self.exclusive("sweep"):
            found = self.client.search_runs([experiment_id], filter_string=query, max_results=1)
            if found:
                run_id = found[0].info.run_id
                self.client.update_run(run_id, status="RUNNING")
                return run_id
            from countsbench.provenance import git_commit

            tags = {KIND_TAG: "sweep", SWEEP_ID_TAG: sweep_id, **source_tags(git_commit())}
            run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])
        return run_id

    def finish_sweep_run(self, run_id: str, counts: Mapping[str, int], status: str) -> None:
        """Record the sweep's cell counts on its parent run and end it (FINISHED, FAILED or KILLED)."""
        from mlflow.entities import Metric

        self.client.log_batch(run_id, metrics=[Metric(k, float(v), 0, 0) for k, v in counts.items()])
        self.client.set_terminated(run_id, status=status)


def experiment_name(result: dict) -> str:
    """The task's name; validation-split runs (hyperparameter tuning) go to ``<task>/valid``."""
    split = result.get("split", "test")
    return result["task"] if split == "test" else f"{result['task']}/{split}"


def source_tags(commit: str) -> dict[str, str]:
    """MLflow's source tags: the UI shows the source and links the commit."""
    tags = {SOURCE_NAME_TAG: "countsbench", SOURCE_TYPE_TAG: "LOCAL"}
    if commit and commit != "unknown":
        tags[GIT_COMMIT_TAG] = commit
    return tags


def experiment_note(experiment: str) -> str | None:
    """The experiment's description in the MLflow UI (Markdown): the task's summary, its class and module
    docstrings, its headline metrics and where its leaderboard is. None for a task not registered here."""
    from countsbench.registry import REGISTRY

    task, _, split = experiment.partition("/")
    if task not in REGISTRY.tasks:
        return None
    spec = REGISTRY.tasks.get(task)
    definition = spec.factory()
    parts = [f"**{task}** ({spec.kind}): {spec.summary}" if spec.summary else f"**{task}** ({spec.kind})"]
    if split:
        parts.append(
            f"Runs scored on the {split} split, to choose hyperparameters (`countsbench sweep --select-on {split}`); "
            f"the test results are in the experiment `{task}`."
        )
    module = sys.modules.get(type(definition).__module__)
    parts += [doc for doc in (inspect.getdoc(type(definition)), inspect.getdoc(module)) if doc]
    if spec.paper:
        parts.append(f"Paper: {spec.paper}.")
    headline = definition.headline_metrics or definition.default_metrics
    parts.append(
        f"Headline metrics: {', '.join(f'`{m}`' for m in headline)}. The leaderboard: the run "
        f"`{LEADERBOARD_RUN}` (its Artifacts tab shows the tables), or `countsbench leaderboard --task {task}`."
    )
    return "\n\n".join(parts)


def dataset_inputs(result: dict) -> list:
    """The task's data as MLflow dataset inputs (context ``train/<scored split>``).

    One dataset per data file, named by the file, its digest the sha256 recorded in the result's
    provenance (its first `DIGEST_CHARS` hex digits; the full checksum is the dataset's profile). A task
    read from no file (generated, or bundled with a library) gets one dataset named by the task whose
    digest is the sha256 of the task's recorded definition (split, mask and seeds)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    context = f"train/{result.get('split', 'test')}"
    inputs = []
    for path, checksum in sorted((result["provenance"].get("data_checksums") or {}).items()):
        hexdigest = checksum.partition(":")[2] or checksum
        source = json.dumps({"uri": Path(path).absolute().as_uri()})
        profile = json.dumps({"checksum": checksum})
        dataset = Dataset(Path(path).stem, hexdigest[:DIGEST_CHARS], "local", source, profile=profile)
        inputs.append(DatasetInput(dataset, [InputTag(DATA_CONTEXT_TAG, context)]))
    if not inputs:
        definition = json.dumps(result.get("task_description", {}), sort_keys=True, default=str)
        digest = hashlib.sha256(definition.encode()).hexdigest()[:DIGEST_CHARS]
        source = json.dumps({"tags": {"countsbench.task": result["task"]}})
        dataset = Dataset(result["task"], digest, "code", source, profile=json.dumps({"definition": definition}))
        inputs.append(DatasetInput(dataset, [InputTag(DATA_CONTEXT_TAG, context)]))
    return inputs


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
        **source_tags(result["provenance"]["git_commit"]),
    }
    external = result["provenance"].get("external_file")
    if external:  # a file made by another tool (`countsbench.external`): which file, searchable in the UI
        tags[TAG_PREFIX + "external_sha256"] = external["sha256"]
        tags[TAG_PREFIX + "external_path"] = external["path"][:5000]
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
