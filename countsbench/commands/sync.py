"""``countsbench sync``: log to MLflow the results recorded as JSON while MLflow could not be reached.

A result whose JSON has no ``mlflow_run_id`` (the server was down, the SQLite file locked) is logged now.
Logging is idempotent through the ``countsbench.result_id`` tag, so a result logged by a run that died
before writing the run id back is found, not logged twice: every result ends up in MLflow exactly once.
Each experiment that received runs gets its ``leaderboard`` run refreshed.
"""

from __future__ import annotations

import argparse
import sys

from countsbench.commands.common import add_plugin, add_results_dir
from countsbench.results import ResultStore


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sync", help="log results missing from MLflow (recorded while it was down)")
    add_results_dir(parser)
    add_plugin(parser)
    parser.set_defaults(func=main)


def missing_results(store: ResultStore) -> list[dict]:
    """The store's results (successes and failures) whose JSON records no MLflow run."""
    return [result for result in store.iter_results() if not result.get("mlflow_run_id")]


def main(args: argparse.Namespace) -> int:
    from countsbench.runner import _log_to_mlflow, publish_leaderboard
    from countsbench.tracking import Tracker, experiment_name

    store = ResultStore(args.results_dir)
    if not store.root.is_dir():
        store.require_existing()
    store.check_writable()
    pending = missing_results(store)
    if not pending:
        print(f"countsbench: every result in {store.root} is in MLflow; nothing to sync", file=sys.stderr)
        return 0
    tracker = Tracker(store.root)
    experiments = set()
    for result in pending:
        _log_to_mlflow(tracker, store, result)
        experiments.add(experiment_name(result))
    for experiment in sorted(experiments):
        publish_leaderboard(tracker, experiment)
    print(f"countsbench: logged {len(pending)} result(s) to {tracker.uri}", file=sys.stderr)
    return 0
