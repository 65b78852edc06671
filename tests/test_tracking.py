import pytest

from countsbench.runner import CellRequest, run_cell
from countsbench.tracking import DIRECTION_TAG, Tracker
from leaderboards import build_leaderboard


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
    from leaderboards.table import Row

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
