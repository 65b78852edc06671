"""``countsbench evaluate RESULT_OR_RUN_ID [--metrics ...]``: re-score saved outputs without retraining.

(The other form, ``countsbench evaluate --task T --samples FILE --name NAME``, scores a file made by
another tool: `countsbench.commands.evaluate_samples`.)

The argument is a cell id, a result id, an MLflow run id or a ``result.json`` path. The task's data
(truth, target mask, training split) is rebuilt from the registry and checked against the saved
outputs (their observed entries must equal the truth's). The new values are merged into the cell's
metrics and recorded as a NEW result of the cell (a new result id, ``rescored_from`` naming the old
one), written as the cell's ``result.json`` and logged as a new MLflow run; leaderboards read the
latest run of each cell, so they show the re-scored values, and the old run stays as history.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from countsbench.commands import evaluate_samples
from countsbench.commands.common import add_plugin, add_results_dir, print_table
from countsbench.data import CountDataError
from countsbench.evaluation import (
    DEFAULT_BOOTSTRAP,
    BootstrapReplicates,
    Evaluation,
    check_metrics,
    finite_or_none,
    score_with_replicates,
)
from countsbench.registry import REGISTRY, RegistryError
from countsbench.results import ResultStore, read_result
from countsbench.task import TaskData, default_data_dir


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="re-score a run's saved outputs, or score another tool's output file (--samples)",
        description="Re-score a stored run's outputs with (new) metrics, or score a file made by another tool.",
        epilog=evaluate_samples.USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "result",
        nargs="?",
        metavar="RESULT_OR_RUN_ID",
        help="cell id, result id, MLflow run id or result.json (omit with --samples)",
    )
    parser.add_argument("--metrics", default=None, help="comma-separated metric names (default: the task's)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help="bootstrap resamples (0: none)")
    parser.add_argument("--scvi-model", type=Path, default=None, help="a pretrained scVI model directory for scFID")
    parser.add_argument("--data-dir", type=Path, default=None, help="user-supplied task data")
    parser.add_argument("--no-track", action="store_true", help="write the JSON result only, not MLflow")
    evaluate_samples.add_arguments(parser)
    add_results_dir(parser)
    add_plugin(parser)
    parser.set_defaults(func=main)


def find_result(store: ResultStore, ref: str) -> dict:
    """The latest successful result whose cell id, result id or MLflow run id is ``ref`` (or a path)."""
    path = Path(ref)
    if path.suffix == ".json" and path.is_file():
        result = read_result(path, quiet=True)
        if result is None or result["status"] != "ok":
            raise RegistryError(f"{path} is not a readable successful countsbench result")
        return result
    for result in store.iter_results():
        names = (result["cell_id"], result["result_id"], result.get("mlflow_run_id"))
        if result.get("status") == "ok" and ref in names:
            return store.load_success(result["cell_id"]) or result
    raise RegistryError(f"no successful result {ref!r} in {store.root} (give a cell id, result id or MLflow run id)")


def rebuild_evaluation(result: dict, store: ResultStore, data: TaskData, options: dict) -> Evaluation:
    """The `Evaluation` of a saved result: its outputs against the task's truth, rebuilt."""
    if not result.get("outputs"):
        raise CountDataError(f"result {result['result_id']} has no saved outputs to re-score")
    try:
        with np.load(store.outputs_file(result), allow_pickle=False) as saved:
            outputs = saved["outputs"]
    except (OSError, ValueError, KeyError) as error:
        raise CountDataError(f"saved outputs of {result['result_id']} are unreadable ({error})") from None
    split = result.get("split", "test")
    truth, target = (data.valid, data.valid_target) if split == "valid" else (data.test, data.test_target)
    kind = result["task_kind"]
    samples = None
    if kind == "imputation":
        if outputs.ndim != 3 or outputs.shape[1:] != truth.counts.shape:
            raise CountDataError(f"saved outputs {outputs.shape} do not fit the {split} split {truth.counts.shape}")
        if np.any(outputs[:, ~target] != truth.dense()[~target]):
            raise CountDataError("saved outputs do not match the task's data (observed entries differ)")
        prediction = outputs[0] if outputs.shape[0] == 1 else outputs.mean(axis=0)
        samples = outputs if outputs.shape[0] > 1 else None
    else:
        prediction = outputs
    return Evaluation(
        kind=kind,
        truth=truth,
        prediction=prediction,
        train=data.train,
        target_mask=target if kind == "imputation" else None,
        samples=samples,
        options={**dict(getattr(data, "metric_options", {}) or {}), **options},
        label_key=data.description.get("split_stratified_by"),
        cache_dir=store.root / "cache",
    )


def rescore(
    result: dict,
    store: ResultStore,
    metrics: list[str] | None = None,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    data_dir: Path | None = None,
    options: dict | None = None,
    track: bool = True,
) -> dict:
    """Re-score ``result``'s outputs; returns the new result (saved, and logged when ``track``)."""
    from countsbench.runner import _directions, _log_to_mlflow

    task = REGISTRY.tasks.get(result["task"]).factory()
    names = check_metrics(metrics if metrics is not None else task.default_metrics, task.kind)
    data = task.load(Path(data_dir) if data_dir is not None else default_data_dir())
    evaluation = rebuild_evaluation(result, store, data, options or {})
    start = time.perf_counter()
    values, replicates = score_with_replicates(evaluation, names, n_bootstrap=n_bootstrap)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    new = dict(result)
    new["metrics"] = {**result.get("metrics", {}), **{k: finite_or_none(v) for k, v in values.items()}}
    old = BootstrapReplicates.from_json(result["bootstrap"]) if result.get("bootstrap") else None
    if replicates is not None:  # the other metrics keep their replicates when the resamples pair up
        new["bootstrap"] = (replicates if old is None else old.merged(replicates)).to_json()
    elif old is not None:  # re-scored without a bootstrap: the re-scored metrics' old replicates are stale
        new["bootstrap"] = replace(old, values={k: v for k, v in old.values.items() if k not in values}).to_json()
    new["metric_directions"] = _directions(new["metrics"])
    new["costs"] = {**result.get("costs", {}), "rescore_s": time.perf_counter() - start}
    new["rescored_from"] = result["result_id"]
    new["rescored_at"] = now
    new["result_id"] = f"{result['cell_id']}-{now.replace(':', '').replace('-', '').replace('.', '')}"
    new["mlflow_run_id"] = None
    store.save(new)
    if track:
        from countsbench.tracking import Tracker

        _log_to_mlflow(Tracker(store.root), store, new)
    return new


def main(args: argparse.Namespace) -> int:
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    options = {"scvi_model": str(args.scvi_model)} if args.scvi_model else {}
    if evaluate_samples.requested(args):
        return evaluate_samples.main(args, metrics, options)
    store = ResultStore(args.results_dir)
    store.require_existing(tracking=not args.no_track)
    store.check_writable()
    result = find_result(store, args.result)
    new = rescore(result, store, metrics, args.bootstrap, args.data_dir, options, track=not args.no_track)
    if new.get("mlflow_run_id"):
        from countsbench.runner import publish_leaderboard
        from countsbench.tracking import Tracker, experiment_name

        publish_leaderboard(Tracker(store.root), experiment_name(new))
    rows = [[k, "-" if v is None else f"{v:.6g}"] for k, v in new["metrics"].items()]
    print_table(f"{new['variant']} on {new['task']}, seed {new['seed']} (re-scored)", ["metric", "value"], rows)
    print(f"result: {store.result_path(new['cell_id'])}  mlflow run: {new.get('mlflow_run_id')}", file=sys.stderr)
    return 0
