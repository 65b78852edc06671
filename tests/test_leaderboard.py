"""Leaderboard aggregation, best-beyond-noise marks, control scaling and exports, by hand."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from countsbench.tracking import Tracker
from leaderboards import build_leaderboard, csv_text, export_task, html_page, markdown
from leaderboards.scaling import scale
from leaderboards.significance import beyond_noise, paired_p_value
from leaderboards.table import Leaderboard, Row

# method -> (role, {metric: per-seed values}); rmse minimize, spearman maximize, bias target 0
RUNS = {
    "zero": ("control", {"rmse": [5.0, 5.0, 5.0], "spearman": [0.1, 0.1, 0.1], "bias": [-2.0, -2.0, -2.0]}),
    "mean": ("control", {"rmse": [3.0, 3.0, 3.0], "spearman": [0.5, 0.5, 0.5], "bias": [0.5, 0.5, 0.5]}),
    "plugin_median": ("baseline", {"rmse": [2.0, 2.1, 1.9], "spearman": [0.4, 0.3, 0.5], "bias": [-0.2, 0.1, 0.3]}),
}


def fake_result(method: str, role: str, seed: int, metrics: dict, status: str = "ok") -> dict:
    cell = f"{method}-{seed}"
    return {
        "status": status,
        "error": None if status == "ok" else {"message": "RuntimeError: boom", "type": "RuntimeError"},
        "result_id": f"{cell}-r",
        "cell_id": cell,
        "config_hash": "h",
        "method": method,
        "variant": method,
        "role": role,
        "task": "pbmc_mcar",
        "seed": seed,
        "profile": "quick",
        "config": {},
        "metrics": metrics,
        "costs": {"fit_s": 1.0 + seed, "infer_s": 0.5, "peak_memory_mb": 100.0, "duration_s": 2.0},
        "model_cache": {"reused": False},
        "run_name": f"{method} seed={seed}",
        "task_description": {},
        "provenance": {"packages": {}, "git_commit": "x", "device": "cpu"},
    }


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> Path:
    """Ten runs logged once for the module (MLflow logging is the slow part)."""
    results_dir = tmp_path_factory.mktemp("leaderboard") / "results"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        _log_runs(results_dir)
    return results_dir


@pytest.fixture()
def board(logged, monkeypatch) -> Leaderboard:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return build_leaderboard("pbmc_mcar", logged, ("rmse", "spearman", "bias"))


def _log_runs(results_dir: Path) -> None:
    tracker = Tracker(results_dir)
    for method, (role, values) in RUNS.items():
        for seed in range(3):
            metrics = {"rmse": values["rmse"][seed], "spearman": values["spearman"][seed]}
            metrics["bias"] = values["bias"][seed]
            tracker.log(fake_result(method, role, seed, metrics))
    tracker.log(fake_result("conditional_mean", "control", 0, {}, status="failed"))


def test_aggregation_failures_and_missing_cells(board):
    rows = {r.variant: r for r in board.rows}
    assert board.metrics == ["rmse", "spearman", "bias"]
    assert board.directions["bias"] == "target:0.0" and board.directions["spearman"] == "maximize"
    mean, se = rows["plugin_median"].mean_se("rmse")
    assert mean == pytest.approx(2.0) and se == pytest.approx(0.1 / math.sqrt(3))  # sd of (2, 2.1, 1.9) is 0.1
    assert rows["plugin_median"].mean_se("fit_s") == (pytest.approx(2.0), pytest.approx(math.sqrt(1 / 3)))
    failed = rows["conditional_mean"]
    assert failed.failed == 1 and board.missing(failed) == 2 and math.isnan(failed.mean_se("rmse")[0])
    assert board.missing(rows["zero"]) == 0


def test_scaling_against_controls_by_hand(board):
    rows = {r.variant: r for r in board.rows}
    median = rows["plugin_median"]
    assert board.scaled(median, "rmse") == pytest.approx((5 - 2) / (5 - 3))
    assert board.scaled(median, "spearman") == pytest.approx((0.4 - 0.1) / (0.5 - 0.1))
    # bias, target 0: controls at distance 2 (worst) and 0.5 (best); the median's mean bias is 0.2/3
    assert board.scaled(median, "bias") == pytest.approx((2 - 0.2 / 3) / (2 - 0.5))
    expected = (1.5 + 0.75 + (2 - 0.2 / 3) / 1.5) / 3
    assert board.summary_score(median) == pytest.approx(expected)
    assert board.summary_score(rows["zero"]) == 0 and board.summary_score(rows["mean"]) == 1
    assert [r.variant for r in board.sorted_rows()][:3] == ["plugin_median", "mean", "zero"]


def test_best_is_marked_only_beyond_noise(board):
    assert board.best("rmse").variant == "plugin_median"  # beats mean on every seed
    # spearman: mean (0.5 on all seeds) vs the median (0.4, 0.3, 0.5): d = (0.1, 0.2, 0): p > 0.05
    assert board.best("spearman") is None
    assert paired_p_value({0: 0.5, 1: 0.5, 2: 0.5}, {0: 0.4, 1: 0.3, 2: 0.5}, "maximize") > 0.05
    assert board.best("bias").variant == "plugin_median"  # closest to the target 0 on every seed


def test_significance_rules():
    best, runner = {0: 1.0, 1: 1.1, 2: 0.9}, {0: 2.0, 1: 2.1, 2: 1.9}
    assert beyond_noise(best, runner, "minimize")
    assert not beyond_noise(best, runner, "maximize")
    assert not beyond_noise({0: 1.0}, {0: 2.0}, "minimize")  # one seed: no test, no mark
    assert not beyond_noise(best, runner, "minimize", 0.5, 0.5)  # gap 1 < 1.96 * sqrt(0.5)
    assert beyond_noise(best, runner, "minimize", 0.1, 0.1)
    noisy = {0: 1.0, 1: 2.0, 2: 1.5}, {0: 1.2, 1: 1.9, 2: 1.6}
    assert not beyond_noise(*noisy, "minimize")


def test_scale_edge_cases():
    assert scale(4.0, [5.0, 3.0], "minimize") == pytest.approx(0.5)
    assert scale(1.0, [5.0, 3.0], "minimize") == pytest.approx(2.0)  # not clipped
    assert math.isnan(scale(1.0, [3.0], "minimize"))  # one control: undefined
    assert math.isnan(scale(1.0, [3.0, 3.0], "minimize"))  # tied controls: undefined
    assert scale(1.5, [3.0, 2.0], "target:1") == pytest.approx((2 - 0.5) / (2 - 1))


def test_bootstrap_standard_error_is_read_and_shown():
    row = Row(
        "m", "m", "baseline", seeds_ok={0, 1}, values={"rmse": {0: 1.0, 1: 1.0}, "rmse/bootstrap_se": {0: 0.3, 1: 0.4}}
    )
    assert row.bootstrap_se("rmse") == pytest.approx(math.sqrt((0.09 + 0.16) / 2))
    board = Leaderboard("t", ["rmse"], {"rmse": "minimize"}, [row])
    assert "(bs 0.35)" in board.table()[0][6]


def test_exports(board, tmp_path):
    text = markdown(board)
    assert "| plugin_median | baseline | 3 | 0 | 0 |" in text and "**2 ± 0.058**" in text
    assert "conditional_mean | control | 0 | 1 | 2" in text
    records = list(csv.DictReader(io.StringIO(csv_text(board))))
    rmse = {r["variant"]: r for r in records if r["metric"] == "rmse"}
    assert float(rmse["zero"]["mean"]) == 5.0 and rmse["plugin_median"]["best"] == "True"
    assert float(rmse["plugin_median"]["scaled"]) == pytest.approx(1.5)
    page = html_page(board, "pbmc_mcar.png")
    assert "<table" in page and "<strong>2 ± 0.058</strong>" in page and "RuntimeError: boom" in page
    paths = export_task(board, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["pbmc_mcar." + s for s in ("csv", "html", "md", "png")]
    png = (tmp_path / "out" / "pbmc_mcar.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_reexport_keeps_notes_below_the_marker(board, tmp_path):
    from leaderboards.export import NOTES_MARKER

    (path,) = [p for p in export_task(board, tmp_path) if p.suffix == ".md"]
    path.write_text(path.read_text().replace("| zero |", "| stale |") + f"\n{NOTES_MARKER}\n\nCountsDiff wins here.\n")
    export_task(board, tmp_path)
    text = path.read_text()
    assert "| stale |" not in text and "| zero |" in text  # the table is rebuilt
    assert text.count(NOTES_MARKER) == 1 and text.endswith("CountsDiff wins here.\n")


def test_leaderboard_export_command(logged, monkeypatch, tmp_path, capsys):
    from countsbench.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["leaderboard", "--export", str(tmp_path / "lb"), "--results-dir", str(logged)]) == 0
    exported = (tmp_path / "lb" / "pbmc_mcar.md").read_text()
    assert "| plugin_median | baseline | 3 | 0 | 0 |" in exported
    assert sorted(p.suffix for p in (tmp_path / "lb").iterdir()) == [".csv", ".html", ".md", ".png"]
    assert main(["leaderboard", "--results-dir", str(logged)]) == 2  # neither --task nor --export
    assert "give one --task" in capsys.readouterr().err
