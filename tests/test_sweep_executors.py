"""Sweeps on every executor: pool with a kill -9 and --resume, Slurm's local fallback, four concurrent
workers, failure recording and --retry-failed, and tuning on the validation split."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from countsbench.cli import main
from countsbench.executors.job import CellJob
from countsbench.executors.pool import PoolExecutor
from countsbench.results import ResultStore
from countsbench.runner import CellRequest
from countsbench.tracking import Tracker

GRID = ["--methods", "zero,mean", "--tasks", "pbmc_mcar,pbmc_mnar", "--metrics", "rmse"]

FLAKY_PLUGIN = """
import os
import numpy as np
from countsbench import Method, register_method

@register_method("flaky", kinds=("imputation",), role="baseline", summary="Fails while a flag file exists.")
class Flaky(Method):
    def impute(self, data, target_mask, ctx, n_samples=1):
        if os.path.exists(os.environ["FLAKY_FLAG"]):
            raise RuntimeError("flag file present")
        return np.where(target_mask, 1, data.dense())
"""


def recorded_runs(results_dir: Path, kind: str | None = None) -> list:
    """The cells' MLflow runs (``kind=None``), or the runs of another kind ("sweep", "leaderboard")."""
    tracker = Tracker(results_dir)
    runs = []
    for experiment in tracker.client.search_experiments():
        runs += tracker.client.search_runs([experiment.experiment_id], max_results=1000)
    if kind is None:
        return [run for run in runs if "cell_id" in run.data.tags]
    return [run for run in runs if run.data.tags.get("countsbench.kind") == kind]


def check_exactly_once(results_dir: Path, expected: int) -> None:
    runs = recorded_runs(results_dir)
    per_cell = Counter(run.data.tags["cell_id"] for run in runs)
    assert len(per_cell) == expected and set(per_cell.values()) == {1}, per_cell
    assert {run.info.status for run in runs} == {"FINISHED"}
    # one sweep parent per experiment, found again by a resumed sweep and finished by it; every cell its child
    parents = recorded_runs(results_dir, "sweep")
    assert len({run.info.experiment_id for run in parents}) == len(parents)
    assert {run.info.status for run in parents} == {"FINISHED"}
    assert {run.data.tags["mlflow.parentRunId"] for run in runs} == {run.info.run_id for run in parents}
    assert len(recorded_runs(results_dir, "leaderboard")) == len(parents)
    results = [r for r in ResultStore(results_dir).iter_results() if r["status"] == "ok"]
    assert len(results) == expected and all(r["mlflow_run_id"] for r in results)


def test_pool_sweep_killed_with_sigkill_then_resumed_records_each_cell_once(results_dir):
    command = [sys.executable, "-m", "countsbench", "sweep", *GRID, "--seeds", "0-2", "--executor", "pool"]
    command += ["--workers", "2", "--results-dir", str(results_dir)]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600  # generous: a loaded 2-core machine starts workers slowly
        while len(list(results_dir.glob("cells/*/result.json"))) < 4:
            assert driver.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no 4 results within 600 s"
            time.sleep(0.1)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert len(list(results_dir.glob("cells/*/result.json"))) < 12
    args = ["sweep", *GRID, "--seeds", "0-2", "--executor", "pool", "--workers", "2", "--resume"]
    assert main([*args, "--results-dir", str(results_dir)]) == 0
    check_exactly_once(results_dir, 12)
    peaks = {r["costs"]["peak_memory_mb"] for r in ResultStore(results_dir).iter_results()}
    assert len(peaks) > 1  # each cell measured in its own process, not one shared high-water mark


def test_slurm_executor_falls_back_to_submitit_local(results_dir, capsys):
    # 2 methods x 2 tasks x 1 seed here (test time); the 12-cell grid is run the same way by hand
    args = ["sweep", *GRID, "--seeds", "0", "--executor", "slurm", "--workers", "2", "--time", "10"]
    assert main([*args, "--results-dir", str(results_dir)]) == 0
    assert "submitit's local executor" in capsys.readouterr().err
    check_exactly_once(results_dir, 4)
    assert list((results_dir / "sweep" / "submitit").iterdir())  # the jobs really went through submitit


def test_four_concurrent_workers_lose_nothing(results_dir, capfd):
    # four cells with four different fitted models: all four run at once
    args = ["sweep", "--methods", "zero,mean", "--tasks", "pbmc_mcar", "--metrics", "rmse", "--seeds", "0-1"]
    assert main([*args, "--executor", "pool", "--workers", "4", "--results-dir", str(results_dir)]) == 0
    out = capfd.readouterr()
    assert "database is locked" not in out.out + out.err
    assert "sweep finished: 4/4 cells ok" in out.out
    check_exactly_once(results_dir, 4)


@pytest.fixture()
def flaky(tmp_path, monkeypatch) -> Path:
    (tmp_path / "flaky_plugin.py").write_text(FLAKY_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("flaky_plugin", None)
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("FLAKY_FLAG", str(flag))
    return flag


def test_failures_are_reported_kept_on_resume_and_retried(results_dir, flaky, capsys):
    args = ["--plugin", "flaky_plugin", "sweep", "--methods", "flaky,zero", "--tasks", "pbmc_mcar", "--seeds", "0-1"]
    args += ["--metrics", "rmse", "--results-dir", str(results_dir)]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert out.count("FAILED flaky on pbmc_mcar") == 2 and "RuntimeError: flag file present" in out
    assert "--retry-failed" in out
    statuses = Counter(run.info.status for run in recorded_runs(results_dir))
    assert statuses == {"FAILED": 2, "FINISHED": 2}
    assert main([*args, "--resume"]) == 1  # failures are not retried by --resume alone ...
    assert "0 run now, 4 already recorded" in capsys.readouterr().out
    flaky.unlink()
    assert main([*args, "--retry-failed"]) == 0  # ... but by --retry-failed
    assert "2 run now, 2 already recorded" in capsys.readouterr().out
    board_rows = {}
    from countsbench.leaderboards import build_leaderboard

    for row in build_leaderboard("pbmc_mcar", results_dir).rows:
        board_rows[row.variant] = row
    assert board_rows["flaky"].seeds == [0, 1] and board_rows["flaky"].failed == 0  # latest run per cell counts


def test_selection_on_the_validation_split(results_dir, test_plugin, capsys):
    args = ["--plugin", test_plugin, "sweep", "--methods", "plugin_median", "--tasks", "pbmc_mcar", "--seeds", "0-1"]
    args += ["--grid", "offset=3,0", "--select-on", "valid", "--metric", "rmse", "--metrics", "rmse"]
    assert main([*args, "--results-dir", str(results_dir)]) == 0
    choice = json.loads((results_dir / "tuning" / "pbmc_mcar" / "plugin_median.json").read_text())
    means = {c["variant"]: c["mean"] for c in choice["candidates"]}
    assert len(set(means.values())) == 2 and choice["variant"] == min(means, key=means.get)
    assert choice["n_configs"] == 2 and choice["n_cells"] == 4
    valid = [r for r in ResultStore(results_dir).iter_results() if r["split"] == "valid"]
    assert len(valid) == 4 and choice["score"] == pytest.approx(
        sum(r["metrics"]["rmse"] for r in valid if r["variant"] == choice["variant"]) / 2
    )
    tracker = Tracker(results_dir)
    test_runs = tracker.client.search_runs([tracker.experiment_id("pbmc_mcar", create=False)])
    test_runs = [run for run in test_runs if "cell_id" in run.data.tags]  # not the sweep's parent, not leaderboard
    assert len(test_runs) == 2 and {r.data.tags["countsbench.tuning.n_configs"] for r in test_runs} == {"2"}
    assert tracker.experiment_id("pbmc_mcar/valid", create=False) is not None  # tuning runs kept apart
    with pytest.raises(SystemExit):
        main(["sweep", "--methods", "mean", "--tasks", "pbmc_mcar", "--select-on", "test"])
    assert main(["sweep", "--methods", "mean", "--tasks", "pbmc_mcar", "--select-on", "valid"]) == 2
    assert "needs --metric" in capsys.readouterr().err


def test_a_pool_worker_runs_its_cell_without_runpy_warnings(results_dir, tmp_path):
    """The exact command a pool worker runs; Python's warning that the entry module was already imported
    (which every worker's log showed when the entry point was `countsbench.executors.job`) fails it."""
    job = CellJob(CellRequest("zero", "pbmc_mcar"), str(results_dir), metrics=["rmse"])
    outcome = tmp_path / "outcome.json"
    done = subprocess.run(PoolExecutor.worker_command(job, outcome), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "found in sys.modules" not in done.stderr
    assert json.loads(outcome.read_text())["status"] == "ok"
