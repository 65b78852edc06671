"""`countsbench ui` in a real headless Chromium (Debian's chromium package): the task's experiment
lists its runs by name (a sweep's parent, its cells, the ``leaderboard`` run), a run's page shows its
metrics, and the leaderboard run's Artifacts tab shows the leaderboard as a table.

Without a chromium binary the test is skipped with a loud reason, and it FAILS instead when
``COUNTSBENCH_REQUIRE_BROWSER=1`` (set by .ci/run once it has installed chromium), so a CI where the
browser should run can never pass silently without it. ``COUNTSBENCH_UI_SCREENSHOTS=DIR`` keeps the
screenshots it takes (``runs.png``, ``leaderboard.png``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_ui import post, ui_server

from countsbench.runner import CellRequest, run_cell

pytestmark = pytest.mark.browser
METRICS = ["rmse", "mae"]


def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        message = "BROWSER TEST NOT RUN: no chromium binary (apt-get install -y chromium)"
        if os.environ.get("COUNTSBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def render(binary: str, url: str, screenshot: Path | None = None, width: int = 1400) -> str:
    """The page's DOM once its scripts have run (and a screenshot of it when asked)."""
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},900"]
    command += ["--virtual-time-budget=30000"]
    if screenshot is not None:
        subprocess.run([*command, f"--screenshot={screenshot}", url], capture_output=True, timeout=90, check=True)
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    done = subprocess.run([*command, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True)
    return done.stdout


def test_mlflow_ui_shows_named_runs_metrics_and_the_leaderboard_table_in_chromium(results_dir, tmp_path):
    from countsbench.executors.driver import SweepSettings, run_sweep
    from countsbench.executors.grid import SweepSpec, expand
    from countsbench.executors.planning import plan_cells
    from countsbench.executors.sequential import SequentialExecutor
    from countsbench.leaderboards import task_leaderboard

    binary = chromium()
    shots = Path(os.environ.get("COUNTSBENCH_UI_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    run_cell(CellRequest("conditional_mean", "pbmc_mcar", seed=0), results_dir, metrics=METRICS)  # on its own
    cells = plan_cells(expand(SweepSpec(("mean", "zero"), ("pbmc_mcar",), (0, 1))), metrics=METRICS)
    run_sweep(cells, SequentialExecutor(), SweepSettings(results_dir, metrics=METRICS))  # publishes the leaderboard
    board = task_leaderboard("pbmc_mcar", results_dir)
    with ui_server(results_dir) as base:
        experiments = post(base + "/api/2.0/mlflow/experiments/search", {"max_results": 10})["experiments"]
        (experiment,) = [e["experiment_id"] for e in experiments if e["name"] == "pbmc_mcar"]
        runs_url = f"{base}/#/experiments/{experiment}/runs"
        page = render(binary, runs_url)  # newest first; a sweep's cells are folded under its parent
        assert "leaderboard" in page and "sweep mean, zero x seeds 0,1" in page and "conditional_mean seed 0" in page
        assert "pbmc68k_reduced, 50% of valid test entries MCAR" in page  # the experiment's description
        # sorted by a metric the UI lists every run flat: each cell by its name, with its dataset
        page = render(binary, runs_url + "?orderByKey=metrics.%60rmse%60&orderByAsc=true", shots / "runs.png", 1800)
        for name in ("conditional_mean seed 0", "mean seed 0", "mean seed 1", "zero seed 0", "zero seed 1"):
            assert name in page, name
        assert "10x_pbmc68k_reduced" in page

        query = {"experiment_ids": [experiment], "filter": "tags.`countsbench.kind` = 'leaderboard'"}
        (leaderboard,) = post(base + "/api/2.0/mlflow/runs/search", query)["runs"]
        run_url = f"{runs_url}/{leaderboard['info']['run_id']}"
        table = render(binary, f"{run_url}/artifacts/leaderboard.json", shots / "leaderboard.png", 3400)
        assert "View as table" in table and "leaderboard_all.json" in table
        for label in board.header(board.columns("headline")):
            assert f">{label}<" in table, label  # a column header of the rendered table
        assert "mae ↓" not in table  # mae is not a pbmc_mcar headline metric (leaderboard_all.json has it)
        for cells in board.table(metrics=board.columns("headline")):
            assert f">{cells[0]}<" in table and f">{cells[6]}<" in table  # the method and its rmse cell

        query = {"experiment_ids": [experiment], "filter": "attributes.run_name = 'mean seed 0'"}
        (cell,) = post(base + "/api/2.0/mlflow/runs/search", query)["runs"]
        run_page = render(binary, f"{runs_url}/{cell['info']['run_id']}")
        assert "rmse" in run_page and "mae" in run_page and "peak_memory_mb" in run_page
