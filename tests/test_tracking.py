import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from countsbench.leaderboards import build_leaderboard
from countsbench.runner import CellRequest, run_cell
from countsbench.tracking import DIRECTION_TAG, Tracker


def test_mlflow_round_trip_on_sqlite(results_dir):
    result = run_cell(CellRequest("conditional_mean", "pbmc_mcar", seed=2), results_dir)
    tracker = Tracker(results_dir)
    assert tracker.uri.startswith("sqlite:///") and str(results_dir.resolve()) in tracker.uri
    experiment = tracker.client.get_experiment_by_name("pbmc_mcar")
    assert experiment.artifact_location.startswith((results_dir.resolve() / "mlartifacts").as_uri())
    run = tracker.client.get_run(result["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["method"] == "conditional_mean" and run.data.tags["seed"] == "2"
    assert run.data.tags["role"] == "control" and run.data.tags[DIRECTION_TAG + "bias"] == "target:0.0"
    assert run.data.params["method.condition_keys"] == "all" and run.data.params["task.mask"] == "mcar"
    assert run.data.metrics["rmse"] == result["metrics"]["rmse"]
    assert run.data.metrics["peak_memory_mb"] > 0
    artifacts = [a.path for a in tracker.client.list_artifacts(run.info.run_id)]
    assert any(path.endswith(".npz") for path in artifacts)


def test_logging_is_idempotent_and_failures_are_logged_as_failed(results_dir, test_plugin):
    from countsbench.registry import load_plugin

    load_plugin(test_plugin)
    result = run_cell(CellRequest("mean", "pbmc_mcar"), results_dir)
    tracker = Tracker(results_dir)
    assert tracker.log(result) == result["mlflow_run_id"]  # same result -> same run, no duplicate
    failed = run_cell(CellRequest("plugin_crashes", "pbmc_mcar"), results_dir)
    assert tracker.client.get_run(failed["mlflow_run_id"]).info.status == "FAILED"
    board = build_leaderboard("pbmc_mcar", results_dir)
    rows = {row.variant: row for row in board.rows}
    assert rows["plugin_crashes"].failed == 1 and rows["mean"].seeds == [0]


def test_leaderboard_mean_and_standard_error_over_seeds(results_dir, test_plugin):
    from countsbench.registry import load_plugin

    load_plugin(test_plugin)
    values = [
        run_cell(CellRequest("plugin_median", "pbmc_mcar", seed=s), results_dir)["metrics"]["rmse"] for s in range(3)
    ]
    run_cell(CellRequest("plugin_median", "pbmc_mcar", seed=0), results_dir)  # a rerun replaces, never adds
    run_cell(CellRequest("plugin_median", "pbmc_mcar", overrides={"offset": "1"}), results_dir)
    board = build_leaderboard("pbmc_mcar", results_dir, ("rmse",))
    rows = {row.variant: row for row in board.rows}
    assert set(rows) == {"plugin_median", "plugin_median[offset=1]"}  # configs are never averaged together
    row = rows["plugin_median"]
    mean, se = row.mean_se("rmse")
    assert mean == pytest.approx(sum(values) / 3) and sorted(row.seeds) == [0, 1, 2]
    assert se == 0.0  # a deterministic method: identical values over seeds


def test_row_mean_and_standard_error_by_hand():
    from countsbench.leaderboards.table import Row

    row = Row("m", "m", "control", seeds_ok={0, 1, 2}, values={"rmse": {0: 1.0, 1: 2.0, 2: 4.0}})
    mean, se = row.mean_se("rmse")
    assert mean == pytest.approx(7 / 3)
    # sample standard deviation of (1, 2, 4) is sqrt(7/3); s.e. = sd / sqrt(3)
    assert se == pytest.approx((7 / 3) ** 0.5 / 3**0.5)


def test_trackers_started_together_on_a_new_directory_all_succeed(tmp_path):
    """Several drivers (`countsbench run` in a shell loop with &) open one new SQLite store at once."""
    import subprocess
    import sys

    code = "import sys; from countsbench.tracking import Tracker; Tracker(sys.argv[1]).experiment_id('pbmc_mcar')"
    store = tmp_path / "results"
    processes = [
        subprocess.Popen([sys.executable, "-c", code, str(store)], stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    errors = [p.communicate()[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, errors
    assert len(Tracker(store).client.search_experiments()) == 2  # "Default" and pbmc_mcar, once


def cell_runs(tracker: Tracker, experiment: str) -> list:
    runs = tracker.client.search_runs([tracker.experiment_id(experiment, create=False)], max_results=1000)
    return [run for run in runs if "cell_id" in run.data.tags]


def test_runs_follow_mlflow_conventions(results_dir):
    """Run names, source tags, the experiment's description and the task's data as dataset inputs."""
    request = CellRequest("conditional_mean", "pbmc_mcar", seed=2, overrides={"condition_keys": "bulk_labels"})
    result = run_cell(request, results_dir, metrics=["rmse"])
    tracker = Tracker(results_dir)
    run = tracker.client.get_run(result["mlflow_run_id"])
    assert run.info.run_name == "conditional_mean[condition_keys=bulk_labels] seed 2" == result["run_name"]
    assert run.data.tags["mlflow.runName"] == run.info.run_name
    commit = result["provenance"]["git_commit"]
    assert len(commit) == 40 and run.data.tags["mlflow.source.git.commit"] == commit  # tests run in a checkout
    assert run.data.tags["mlflow.source.name"] == "countsbench" and "mlflow.parentRunId" not in run.data.tags
    note = tracker.client.get_experiment_by_name("pbmc_mcar").tags["mlflow.note.content"]
    assert note.startswith("**pbmc_mcar** (imputation): pbmc68k_reduced, 50% of valid test entries MCAR")
    assert "Impute held-out test entries of the embedded pbmc68k_reduced" in note  # the task class docstring
    assert "Integer UMI counts are recovered" in note  # the task module docstring
    assert "Headline metrics: `rmse`, `energy_distance`" in note
    ((path, checksum),) = result["provenance"]["data_checksums"].items()
    (dataset_input,) = run.inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert dataset.name == Path(path).stem and checksum == "sha256:" + checksum[7:]
    assert dataset.digest == checksum[7 : 7 + 32] and json.loads(dataset.profile) == {"checksum": checksum}
    assert json.loads(dataset.source) == {"uri": Path(path).absolute().as_uri()} and dataset.source_type == "local"
    assert [(t.key, t.value) for t in dataset_input.tags] == [("mlflow.data.context", "train/test")]


def test_data_without_files_is_identified_by_the_task_definition():
    from countsbench.tracking import dataset_inputs, experiment_note

    description = {"generator": "size-factor negative binomial", "rows": "train=400"}
    result = {"task": "toy_nb", "split": "valid", "task_description": description, "provenance": {}}
    (dataset_input,) = dataset_inputs(result)
    definition = json.dumps(description, sort_keys=True)
    assert dataset_input.dataset.name == "toy_nb" and dataset_input.dataset.source_type == "code"
    assert dataset_input.dataset.digest == hashlib.sha256(definition.encode()).hexdigest()[:32]
    assert dataset_input.tags[0].value == "train/valid"
    assert "Unconditional generation of 10-dimensional sparse counts" in experiment_note("toy_nb")
    assert "to choose hyperparameters" in experiment_note("toy_nb/valid") and experiment_note("nope") is None


def test_sweep_is_a_parent_run_of_its_cells_and_publishes_the_leaderboard_table(results_dir):
    from mlflow.entities import ViewType

    from countsbench.executors.driver import SweepSettings, run_sweep
    from countsbench.executors.grid import SweepSpec, expand
    from countsbench.executors.planning import plan_cells
    from countsbench.executors.sequential import SequentialExecutor

    earlier = run_cell(CellRequest("zero", "pbmc_mcar", seed=0), results_dir, metrics=["rmse", "mae"])
    cells = plan_cells(expand(SweepSpec(("zero", "mean"), ("pbmc_mcar",), (0, 1))), metrics=["rmse", "mae"])
    settings = SweepSettings(results_dir, metrics=["rmse", "mae"], resume=True)
    report = run_sweep(cells, SequentialExecutor(), settings)
    assert report.ran == 3 and report.skipped == 1
    tracker = Tracker(results_dir)
    experiment_id = tracker.experiment_id("pbmc_mcar", create=False)
    (parent,) = tracker.client.search_runs([experiment_id], filter_string="tags.`countsbench.kind` = 'sweep'")
    assert parent.info.run_name == "sweep mean, zero x seeds 0,1" and parent.info.status == "FINISHED"
    assert parent.data.metrics == {"cells": 4.0, "cells_ok": 4.0, "cells_failed": 0.0}
    assert parent.data.params["executor"] == "sequential, in this process" and parent.data.params["cells"] == "4"
    assert "mlflow.source.git.commit" in parent.data.tags
    children = cell_runs(tracker, "pbmc_mcar")
    assert sorted(r.info.run_name for r in children) == ["mean seed 0", "mean seed 1", "zero seed 0", "zero seed 1"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}  # the earlier run adopted
    assert earlier["mlflow_run_id"] in {r.info.run_id for r in children}

    (board_run,) = tracker.client.search_runs([experiment_id], filter_string="tags.`countsbench.kind` = 'leaderboard'")
    assert board_run.info.run_name == "leaderboard" and "cell_id" not in board_run.data.tags
    logged = json.loads(board_run.data.tags["mlflow.loggedArtifacts"])
    assert logged == [{"path": "leaderboard.json", "type": "table"}, {"path": "leaderboard_all.json", "type": "table"}]
    download = Path(tracker.client.download_artifacts(board_run.info.run_id, "", str(results_dir / "download")))
    table = json.loads((download / "leaderboard.json").read_text())
    assert table["columns"][:6] == ["method", "role", "seeds ok", "failed", "missing", "scaled score"]
    assert "rmse ↓" in table["columns"] and "mae ↓" not in table["columns"]  # the headline: rmse, not mae
    assert [row[0] for row in table["data"]] == ["mean", "zero"] and table["data"][0][2] == "2"
    assert "mae ↓" in json.loads((download / "leaderboard_all.json").read_text())["columns"]
    raw = pd.read_csv(download / "leaderboard.csv").set_index("variant")
    assert raw.loc["zero", "rmse.mean"] == pytest.approx(earlier["metrics"]["rmse"])
    assert "| mean | control | 2 | 0 | 0 |" in board_run.data.tags["mlflow.note.content"]

    again = run_sweep(cells, SequentialExecutor(), settings)  # resumed: nothing new to log
    assert again.ran == 0 and again.skipped == 4
    sweeps = tracker.client.search_runs([experiment_id], filter_string="tags.`countsbench.kind` = 'sweep'")
    assert [r.info.run_id for r in sweeps] == [parent.info.run_id] and len(cell_runs(tracker, "pbmc_mcar")) == 4
    unchanged = tracker.client.search_runs([experiment_id], filter_string="tags.`countsbench.kind` = 'leaderboard'")
    assert [r.info.run_id for r in unchanged] == [board_run.info.run_id]  # the same leaderboard: not logged again

    from countsbench.runner import publish_leaderboard

    stray = tracker.client.create_run(experiment_id, tags={"countsbench.kind": "leaderboard"}).info.run_id
    assert publish_leaderboard(tracker, "pbmc_mcar") == board_run.info.run_id  # a duplicate is removed
    assert tracker.client.get_run(stray).info.lifecycle_stage == "deleted"

    run_cell(CellRequest("conditional_mean", "pbmc_mcar"), results_dir, metrics=["rmse", "mae"])
    newest = publish_leaderboard(tracker, "pbmc_mcar")
    runs = tracker.client.search_runs([experiment_id], order_by=["attributes.start_time DESC"])
    assert runs[0].info.run_id == newest != board_run.info.run_id  # the newest run: first in the UI's list
    assert tracker.client.get_run(board_run.info.run_id).info.lifecycle_stage == "deleted"
    query = "tags.`countsbench.kind` = 'leaderboard'"
    everything = tracker.client.search_runs([experiment_id], query, run_view_type=ViewType.ALL)
    assert sorted(r.info.lifecycle_stage for r in everything) == ["active", "deleted", "deleted"]
    rows = {row.variant for row in build_leaderboard("pbmc_mcar", results_dir).rows}
    assert rows == {"zero", "mean", "conditional_mean"}  # the parent and leaderboard runs are not rows
