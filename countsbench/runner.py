"""`run_cell`: one method on one task with one seed, from config to recorded result.

Everything that can be checked is checked before any work starts (names, task kind, config,
device, data presence, results directory). Once work starts, any exception is recorded as a failed
result (JSON and MLflow) and never dropped; a success is written atomically, then logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import signal
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from countsbench.config import SEED_RANGE, ConfigError, resolve_config
from countsbench.context import RunContext, resolve_device, seed_everything
from countsbench.data import CountData, ExpressedValidity
from countsbench.directions import direction_of
from countsbench.evaluation import Evaluation, check_metrics, finite_or_none, metric_spec_for, score_with_replicates
from countsbench.memory import reset_peak_rss, rss_mb
from countsbench.method import Method
from countsbench.model_cache import ModelCache
from countsbench.provenance import SCHEMA_VERSION, collect
from countsbench.registry import REGISTRY, MethodSpec
from countsbench.results import DEFAULT_RESULTS_DIR, ResultStore
from countsbench.safe_io import write_atomic
from countsbench.task import Task, TaskData, TaskInfo, default_data_dir
from countsbench.tracking import TrackingError, run_name

VERSION = "0.1.0"
SPLITS = ("test", "valid")


class MethodOutputError(ValueError):
    """A method returned something that breaks the `Method` contract."""


class CellTimeout(Exception):
    """The cell ran past its time limit (``sweep --cell-timeout``); recorded as a failure."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `CellTimeout` in this (main) thread once ``seconds`` have passed (SIGALRM; None: no limit)."""
    if not seconds:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise CellTimeout(f"the cell ran past its time limit of {seconds:g} s (--cell-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class CellRequest:
    """What the user asked for: a (method, task, seed) cell and how to configure it."""

    method: str
    task: str
    seed: int = 0
    profile: str = "quick"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    device: str = "auto"
    #: The split scored: "test", or "valid" to tune hyperparameters on the validation targets
    #: (`countsbench sweep --select-on valid`) without touching the test set.
    split: str = "test"


@dataclass
class PreparedCell:
    """A request resolved and validated: nothing left that could fail for a user's mistake."""

    request: CellRequest
    method_spec: MethodSpec
    task: Task
    data: TaskData
    info: TaskInfo
    config: dict[str, Any]
    profile_config: dict[str, Any]
    device: str
    metrics: list[str]

    @property
    def config_hash(self) -> str:
        return digest({"method": self.request.method, "config": self.config})[:12]

    @property
    def cell_id(self) -> str:
        r = self.request
        identity = {"method": r.method, "task": r.task, "seed": r.seed, "config": self.config, "version": VERSION}
        identity["task_definition"] = dict(self.data.description)  # split, mask, seeds, test subsample
        if r.split != "test":
            identity["split"] = r.split
        return digest(identity)[:16]

    def scored_split(self) -> tuple[CountData, np.ndarray | None]:
        """The split scored and its target mask: the test split, or the validation split for tuning."""
        if self.request.split == "valid":
            return self.data.valid, self.data.valid_target
        return self.data.test, self.data.test_target

    def fit_valid(self) -> CountData | None:
        """The validation data `fit` may see. When the validation split is scored, its targets are
        hidden (imputation), or it is withheld altogether (generation), so tuning cannot peek."""
        if self.task.kind == "denoising":  # every cell is denoised from its own training counts: no held-out cells
            return None
        if self.request.split != "valid":
            return self.data.valid
        if self.data.valid_target is None:
            return None
        return self.data.valid.with_hidden(self.data.valid_target)

    @property
    def variant(self) -> str:
        return variant_label(self.request.method, self.request.profile, self.config, self.profile_config)

    def fit_id(self) -> str:
        """Identifies a fitted model: cells that differ only in inference settings or in the
        evaluation mask of the same data (pbmc_mcar, pbmc_mnar) share it."""
        cls = self.method_spec.cls
        training = {k: v for k, v in self.config.items() if k not in cls.inference_only}
        identity = {
            "method": self.request.method,
            "config": training,
            "seed": self.request.seed,
            "dataset": self.task.dataset_id(),
            "train": data_fingerprint(self.data.train),
            "version": VERSION,
        }
        if self.request.split != "test":  # fitted without the validation targets: never mixed with test fits
            identity["fit_valid"] = "targets hidden"
        return digest(identity)[:16]


def digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def data_fingerprint(data: CountData) -> str:
    """sha256 of a split's counts, valid mask and condition codes."""
    h = hashlib.sha256()
    counts = data.counts
    parts = [counts.data, counts.indices, counts.indptr] if sp.issparse(counts) else [counts]
    if isinstance(data.valid, ExpressedValidity):
        parts.extend([data.valid.expressed, data.valid.groups])
    elif data.valid is not None:
        parts.append(data.valid)
    parts.extend(data.conditions[k] for k in data.condition_keys)
    for part in parts:
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


def label_baseline(
    cls: type, profile: str, info: TaskInfo, profile_defaults: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """What a cell's variant label is the difference from: the profile's config under the presets the
    overrides chose (`Method.defaults_for`), with each overridden key at its plain profile value, so the
    label names the user's ``--set`` values only (``countsdiff[network=transformer]``, not every preset
    that came with it)."""
    chosen = resolve_config(cls, profile, profile_defaults, {})
    plain = chosen if not overrides else resolve_config(cls, profile, cls.defaults(profile, info), {})
    return {**chosen, **{key: plain[key] for key in overrides if key in plain}}


def variant_label(method: str, profile: str, config: Mapping[str, Any], profile_config: Mapping[str, Any]) -> str:
    """``method`` plus the keys set away from the profile's defaults: ``countsdiff[n_samples=5]``."""
    changed = [f"{k}={config[k]}" for k in sorted(config) if config[k] != profile_config.get(k)]
    if profile != "quick":
        changed.insert(0, f"profile={profile}")
    return f"{method}[{','.join(changed)}]" if changed else method


def prepare_cell(
    request: CellRequest,
    data_dir: Path | None = None,
    metrics: list[str] | None = None,
    data: TaskData | None = None,
) -> PreparedCell:
    """Resolve and validate a request; raises a clear error for every user mistake.

    ``data``: the task's data when already loaded (a sweep's driver loads each task once).
    """
    REGISTRY.check_supports(request.method, request.task)
    if isinstance(request.seed, bool) or not isinstance(request.seed, int) or request.seed not in SEED_RANGE:
        raise ConfigError(f"seed {request.seed!r}: expected an integer {SEED_RANGE.describe()}")
    method_spec = REGISTRY.methods.get(request.method)
    task_spec = REGISTRY.tasks.get(request.task)
    device = resolve_device(request.device)
    task = task_spec.factory()
    if data is None:
        data = task.load(Path(data_dir) if data_dir is not None else default_data_dir())
    if request.split not in SPLITS:
        raise ConfigError(f"unknown split {request.split!r}; choose one of {', '.join(SPLITS)}")
    if request.split == "valid" and task.kind == "imputation" and data.valid_target is None:
        raise ConfigError(f"task {request.task!r} has no validation target mask to tune on")
    if request.split == "valid" and task.kind == "denoising":
        raise ConfigError(f"task {request.task!r} is a denoising task: it has no validation split to tune on")
    if method_spec.cls.reads_held_out and method_spec.role != "control":
        raise ConfigError(f"method {request.method!r} reads held-out counts, which only a control may do")
    info = task.info(data, request.task)
    profile_defaults = method_spec.cls.defaults_for(request.profile, info, request.overrides)
    config = resolve_config(method_spec.cls, request.profile, profile_defaults, request.overrides)
    profile_config = label_baseline(method_spec.cls, request.profile, info, profile_defaults, request.overrides)
    chosen = check_metrics(metrics if metrics is not None else task.default_metrics, task.kind)
    return PreparedCell(request, method_spec, task, data, info, config, profile_config, device, chosen)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_imputation(out: Any, hidden: CountData, target_mask: np.ndarray, n_samples: int) -> np.ndarray:
    """Enforce the imputation contract: (n, d) or (K, n, d) non-negative integers, observed unchanged."""
    out = np.asarray(out)
    n, d = hidden.counts.shape
    if out.ndim == 2:
        out = out[None]
    if out.shape != (n_samples, n, d):
        raise MethodOutputError(f"impute returned shape {out.shape}, expected ({n_samples}, {n}, {d}) or ({n}, {d})")
    _check_counts(out, "impute")
    observed = hidden.dense()
    if np.any(out[:, ~target_mask] != observed[~target_mask]):
        raise MethodOutputError("impute changed observed (non-target) entries")
    return out.astype(np.int64, copy=False)


def check_denoised(out: Any, noisy: CountData) -> np.ndarray:
    """Enforce the denoising contract: (n, d) finite, non-negative expected counts (floats allowed)."""
    out = np.asarray(out)
    if out.shape != noisy.counts.shape:
        raise MethodOutputError(f"denoise returned shape {out.shape}, expected {noisy.counts.shape}")
    if out.dtype.kind not in "iuf" or not np.all(np.isfinite(out)):
        raise MethodOutputError("denoise returned non-finite or non-numeric values")
    if out.size and out.min() < 0:
        raise MethodOutputError("denoise returned negative values")
    return out.astype(np.float64, copy=False)


def check_samples(out: Any, n: int, d: int) -> np.ndarray:
    out = np.asarray(out)
    if out.shape != (n, d):
        raise MethodOutputError(f"sample returned shape {out.shape}, expected ({n}, {d})")
    _check_counts(out, "sample")
    return out.astype(np.int64, copy=False)


def _check_counts(out: np.ndarray, what: str) -> None:
    """Metrics are computed on integer counts: non-integer output is rejected, not rounded."""
    if out.dtype.kind not in "iuf" or (out.dtype.kind == "f" and not np.all(np.isfinite(out))):
        raise MethodOutputError(f"{what} returned non-finite or non-numeric values")
    if out.dtype.kind == "f" and np.any(out != np.round(out)):
        raise MethodOutputError(f"{what} returned non-integer values; methods must return counts")
    if out.size and out.min() < 0:
        raise MethodOutputError(f"{what} returned negative values")


def _fit_or_load(cell: PreparedCell, store: ResultStore, ctx: RunContext, cache_models: bool) -> tuple[Method, bool]:
    """The cached model of the cell's fit id when one is intact, else a fresh fit (cached when asked).
    Without the cache, a training checkpoint left by an earlier run of the cell is removed: it refits."""
    cls = cell.method_spec.cls
    cache = ModelCache(store.model_dir(cell.fit_id()))
    cache_models = cache_models and cls.persistable
    if cache_models:
        method = cache.load(cls)
        if method is not None:
            for key in cls.inference_only:  # stored as attributes of the same name (Method contract)
                setattr(method, key, cell.config[key])
            return method, True
    elif ctx.output_dir is not None:
        shutil.rmtree(Path(ctx.output_dir) / "checkpoints", ignore_errors=True)
    method = cls(**cell.config)
    method.fit(cell.data.train, cell.fit_valid(), ctx)
    if cache_models:
        cache.save(method)
    return method, False


def _infer(cell: PreparedCell, method: Method, ctx: RunContext) -> tuple[np.ndarray, np.ndarray, str]:
    """Returns (raw outputs to save, prediction to score, aggregate label)."""
    test, target = cell.scored_split()
    if cell.task.kind == "imputation":
        hidden = test.with_hidden(target)
        n_samples = int(cell.config.get("n_samples", 1))
        out = check_imputation(method.impute(hidden, target, ctx, n_samples=n_samples), hidden, target, n_samples)
        if n_samples == 1:
            return out, out[0], "single"
        return out, out.mean(axis=0), "mean_of_K"
    if cell.task.kind == "denoising":  # the training counts of every cell; ``test`` holds their held-out molecules
        if method.reads_held_out:
            method.see_held_out(test)
        out = check_denoised(method.denoise(cell.data.train, ctx), cell.data.train)
        return out, out, "single"
    conditions = dict(test.conditions) or None
    out = check_samples(method.sample(test.n_samples, conditions, ctx), test.n_samples, test.n_features)
    return out, out, "single"


def _save_outputs(path: Path, raw: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.savez_compressed(handle, outputs=raw)


def _work(
    cell: PreparedCell,
    store: ResultStore,
    ctx: RunContext,
    cache_models: bool,
    costs: dict[str, Any],
    result: dict[str, Any],
    say: Any,
) -> None:
    """Fit (or load), infer, save the outputs and score: fills ``costs`` and ``result`` as it goes."""
    ctx.output_dir = store.cell_dir(cell.cell_id) / "artifacts"
    seed_everything(cell.request.seed)
    train = cell.data.train
    steps = f", {cell.config['steps']} training steps" if "steps" in cell.config else ""
    say(
        f"fitting {cell.request.method} on {cell.request.task} ({cell.request.profile} profile{steps}, seed "
        f"{cell.request.seed}, device {cell.device}): {train.n_samples} training samples x {train.n_features} features"
    )
    t = time.perf_counter()
    method, reused = _fit_or_load(cell, store, ctx, cache_models)
    costs["fit_s"] = 0.0 if reused else time.perf_counter() - t
    result["model_cache"] = {"fit_id": cell.fit_id(), "reused": reused}
    costs["n_parameters"] = method.n_parameters()
    say({"imputation": "imputing", "denoising": "denoising"}.get(cell.task.kind, "sampling"))
    t = time.perf_counter()
    raw, prediction, aggregate = _infer(cell, method, ctx)
    costs["infer_s"] = time.perf_counter() - t
    result["aggregate"] = aggregate
    outputs = store.outputs_path(cell.cell_id)
    write_atomic(outputs, lambda path: _save_outputs(path, raw))
    result["outputs"] = str(outputs.relative_to(store.root))
    say("scoring")
    t = time.perf_counter()
    truth, target = cell.scored_split()
    samples = raw if aggregate == "mean_of_K" else None
    evaluation = task_evaluation(cell.task.kind, cell.data, truth, target, prediction, samples, store.root / "cache")
    values, replicates = score_with_replicates(evaluation, cell.metrics)
    result["metrics"] = {k: finite_or_none(v) for k, v in values.items()}
    result["bootstrap"] = None if replicates is None else replicates.to_json()
    costs["eval_s"] = time.perf_counter() - t
    cell.task.write_artifacts(truth, prediction, ctx.output_dir)


def run_cell(
    request: CellRequest,
    results_dir: Path = DEFAULT_RESULTS_DIR,
    *,
    data_dir: Path | None = None,
    resume: bool = False,
    track: bool = True,
    cache_models: bool = True,
    metrics: list[str] | None = None,
    show_progress: bool | None = None,
    log: Any = None,
    timeout_s: float | None = None,
) -> dict:
    """Run one cell and record it; returns the result dict (``status`` is "ok" or "failed"). Past
    ``timeout_s`` seconds of work the cell is stopped and recorded as failed (reason ``timeout``)."""
    say = log or (lambda message: None)
    cell = prepare_cell(request, data_dir, metrics)
    store = ResultStore(results_dir)
    store.check_writable()
    if resume:
        previous = store.load_success(cell.cell_id)
        if previous is not None:
            say(f"cell {cell.cell_id} already done; skipping (--resume)")
            if track and not previous.get("mlflow_run_id"):
                _log_to_mlflow(None, store, previous)
            previous["skipped"] = True
            return previous

    started, t0 = _now(), time.perf_counter()
    reset_peak_rss()  # this cell's own peak, also after other cells in this process (sequential executor)
    ctx = RunContext(seed=request.seed, device=cell.device, profile=request.profile, output_dir=None)
    if show_progress is not None:
        ctx.show_progress = show_progress
    costs: dict[str, Any] = {}
    result: dict[str, Any] = {
        "status": "ok",
        "error": None,
        "metrics": {},
        "bootstrap": None,
        "model_cache": None,
        "outputs": None,
    }
    try:
        with time_limit(timeout_s):
            _work(cell, store, ctx, cache_models, costs, result, say)
    except Exception as error:  # recorded as a failed cell, never dropped
        result["status"] = "failed"
        result["error"] = {
            "type": type(error).__name__,
            "message": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
        }
        if isinstance(error, CellTimeout):
            result["error"]["reason"] = "timeout"
    costs["duration_s"] = time.perf_counter() - t0
    costs["peak_memory_mb"] = rss_mb("VmHWM")
    result.update(
        {
            "schema_version": SCHEMA_VERSION,
            "result_id": f"{cell.cell_id}-{started.replace(':', '').replace('-', '').replace('.', '')}",
            "cell_id": cell.cell_id,
            "config_hash": cell.config_hash,
            "method": request.method,
            "variant": cell.variant,
            "role": cell.method_spec.role,
            "task": request.task,
            "task_kind": cell.task.kind,
            "task_description": dict(cell.data.description),
            "seed": request.seed,
            "split": request.split,
            "profile": request.profile,
            "config": cell.config,
            "metric_directions": _directions(result["metrics"]),
            "costs": costs,
            "started_at": started,
            "finished_at": _now(),
            "run_name": run_name(cell.variant, request.seed),
            "provenance": collect(cell.device, cell.data.data_files, store.checksum_cache()),
            "mlflow_run_id": None,
        }
    )
    store.save(result)  # safely recorded before MLflow is contacted
    if track:
        _log_to_mlflow(None, store, result)
    return result


def task_evaluation(
    kind: str,
    data: TaskData,
    truth: CountData,
    target: np.ndarray | None,
    prediction: np.ndarray,
    samples: np.ndarray | None,
    cache_dir: Path | None,
) -> Evaluation:
    """The `Evaluation` of an output on the scored split ``truth`` (its ``target`` mask for imputation):
    the task's training split, metric options and cell-type key. ``samples``: the K draws of a multiple
    imputation (None for one). Shared by `run_cell` and `countsbench.external`, so both score alike."""
    return Evaluation(
        kind=kind,
        truth=truth,
        prediction=prediction,
        train=data.train,
        target_mask=target,
        samples=samples,
        options=dict(data.metric_options),
        label_key=data.description.get("split_stratified_by"),
        cache_dir=cache_dir,
    )


def _directions(metrics: Mapping[str, Any]) -> dict[str, str]:
    directions = {}
    for name in metrics:
        spec = metric_spec_for(name)
        directions[name] = direction_of(spec)
    return directions


def ingest(result: dict, results_dir: Path, tracker: Any = None, parent_run_id: str | None = None) -> dict:
    """Log a result that a worker wrote as JSON into MLflow (the driver's job; idempotent through
    the ``countsbench.result_id`` tag), as a child of a sweep's ``parent_run_id`` when given, and
    record the MLflow run id in its JSON."""
    if tracker is None:
        from countsbench.tracking import Tracker

        tracker = Tracker(results_dir)
    _log_to_mlflow(tracker, ResultStore(results_dir), result, parent_run_id)
    return result


def publish_leaderboard(tracker: Any, experiment: str) -> str | None:
    """Refresh the experiment's ``leaderboard`` run (`countsbench.leaderboards.mlflow_table.publish`) after logging."""
    from countsbench.leaderboards.mlflow_table import publish

    try:
        return publish(tracker, experiment)
    except Exception as error:
        raise TrackingError(
            f"results logged to {tracker.uri}, but the leaderboard run of {experiment!r} could not be refreshed "
            f"({type(error).__name__}: {error})"
        ) from error


def _log_to_mlflow(tracker: Any, store: ResultStore, result: dict, parent_run_id: str | None = None) -> None:
    """Log a result saved as JSON (opening the tracker when ``tracker`` is None); any failure is one
    `TrackingError` line that says the JSON is safe and how to log it later (`countsbench sync`)."""
    artifacts = [store.outputs_file(result)] if result.get("outputs") else []
    artifact_dir = store.cell_dir(result["cell_id"]) / "artifacts"
    if artifact_dir.is_dir():
        artifacts.extend(sorted(p for p in artifact_dir.iterdir() if p.is_file()))
    try:
        if tracker is None:
            from countsbench.tracking import Tracker

            tracker = Tracker(store.root)
        result["mlflow_run_id"] = tracker.log(result, artifacts, parent_run_id)
    except Exception as error:
        from countsbench.tracking import tracking_uri

        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise TrackingError(
            f"result saved in {store.result_path(result['cell_id']).parent} but MLflow logging to "
            f"{tracking_uri(store.root)} failed ({reason}); `countsbench sync --results-dir {store.root}` logs it "
            "once the server answers"
        ) from error
    store.save(result)
