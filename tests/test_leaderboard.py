"""Leaderboard aggregation, best-beyond-noise marks, control scaling and exports, by hand.

The statistics of the best-mark rule (false-mark rate, power, the paired bootstrap) are tested in
tests/test_significance.py; the scaled score's rules (signals counted once, clipping, missing metrics)
in tests/test_scaling.py."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from countsbench.tracking import Tracker
from leaderboards import build_leaderboard, csv_text, export_task, html_page, markdown
from leaderboards.scaling import scale
from leaderboards.significance import compare, seed_p_values
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
    assert board.scaled(median, "rmse") == pytest.approx((5 - 2) / (5 - 3))  # 1.5: shown unclipped
    assert board.scaled(median, "spearman") == pytest.approx((0.4 - 0.1) / (0.5 - 0.1))
    # bias, target 0: controls at distance 2 (worst) and 0.5 (best); the median's per-seed distances
    # (0.2, 0.1, 0.3) average 0.2, the quantity that ranks and tests it too
    assert board.scaled(median, "bias") == pytest.approx((2 - 0.2) / (2 - 0.5))
    expected = (1.0 + 0.75 + 1.0) / 3  # 1.5 and 1.2 clipped to 1 before averaging
    assert board.summary_score(median) == pytest.approx(expected)
    assert board.summary_score(rows["zero"]) == 0 and board.summary_score(rows["mean"]) == 1
    assert [r.variant for r in board.sorted_rows()][:3] == ["mean", "plugin_median", "zero"]


def test_best_is_marked_only_beyond_noise(board):
    # rmse: the median (2, 2.1, 1.9) against mean's constant 3: Welch t = 1 / (0.1 / sqrt 3) = 17.3, df 2
    assert board.best("rmse").variant == "plugin_median"
    # spearman: mean (0.5 on all seeds) vs the median (0.4, 0.3, 0.5): t = 1.73 on 2 df, p = 0.22
    assert board.best("spearman") is None
    assert seed_p_values([-0.5, -0.5, -0.5], [-0.4, -0.3, -0.5]) == pytest.approx(0.2254, abs=1e-4)
    # bias, by distance to 0: the median's (0.2, 0.1, 0.3) against mean's constant 0.5: t = 5.2, p = 0.035
    assert board.best("bias").variant == "plugin_median"
    assert board.notes()[0].startswith("Best marks by the seed test alone") and "every metric" in board.notes()[0]


def test_significance_rules():
    best, runner = [1.0, 1.1, 0.9], [2.0, 2.1, 1.9]  # badness per seed
    assert compare(best, runner).marked
    assert not compare(runner, best).marked  # the leader must be the better row
    assert not compare([1.0], [2.0]).marked and not compare(best, [2.0]).marked  # one seed: no variance, no mark
    assert compare([1.0, 1.0, 1.0], [2.0, 2.0, 2.0]).marked  # deterministic rows: the means differ
    assert not compare([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]).marked  # a tie
    # one deterministic row: Welch with the other row's variance alone, df = 2
    assert compare([1.0, 1.0, 1.0], runner).seed_p == pytest.approx(2 * stats.t.sf(1.0 / (0.1 / 3**0.5), 2))
    assert not compare([1.0, 2.0, 1.5], [1.2, 1.9, 1.6]).marked  # within seed noise


def test_the_bootstrap_critical_value_has_the_replicates_degrees_of_freedom():
    best, runner = [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]  # beyond seed noise
    noise = np.array([1.0, -1.0] * 5)  # sd (ddof 1) sqrt(10 / 9) = 1.054
    z = 1.0 / np.std(1.0 + noise / 2.1, ddof=1)  # 1 / (1.054 / 2.1) = 1.99: above 1.96, below t_9 = 2.262
    verdict = compare(best, runner, np.zeros(10), 1.0 + noise / 2.1)
    assert verdict.seed_passed and 1.96 < z < 2.262 and verdict.bootstrap.z == pytest.approx(z)
    assert verdict.bootstrap.critical == pytest.approx(2.262, abs=1e-3) and not verdict.marked
    assert compare(best, runner, np.zeros(10), 1.0 + noise / 3.0).marked  # z = 2.85 > t_9


def test_scale_edge_cases():
    # scale() takes badness (smaller is better): a "target" metric's distance, a "maximize" one negated
    assert scale(4.0, [5.0, 3.0]) == pytest.approx(0.5)
    assert scale(1.0, [5.0, 3.0]) == pytest.approx(2.0)  # not clipped per metric (the summary clips)
    assert math.isnan(scale(1.0, [3.0]))  # one control: undefined
    assert math.isnan(scale(1.0, [3.0, 3.0]))  # tied controls: undefined
    assert scale(0.5, [2.0, 1.0]) == pytest.approx((2 - 0.5) / (2 - 1))


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


def test_bootstrap_replicates_travel_through_mlflow(tmp_path, monkeypatch):
    """A result's replicates are logged as the run's ``bootstrap_replicates.json`` and read back per
    seed; the best mark then needs the paired test too, and rows without replicates fall back."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracker = Tracker(tmp_path)
    rng = np.random.default_rng(0)
    shared = rng.normal(2.0, 0.3, 50)  # the resampled test cells' difficulty, common to both methods
    logged = {}
    for method, shift in (("good", 0.0), ("worse", 0.05)):
        for seed in range(2):
            replicates = logged[method, seed] = (shared + shift + rng.normal(0, 0.001, 50)).tolist()
            result = fake_result(method, "baseline", seed, {"rmse": 2.0 + shift + 0.001 * seed})
            pairing = {"metric_seed": 0, "n_cells": 140, "n_resamples": 50, "resample_digest": "d"}
            result["bootstrap"] = {**pairing, "values": {"rmse": replicates}}
            tracker.log(result)
    tracker.log(fake_result("old", "baseline", 0, {"rmse": 3.0}))  # logged before replicates were stored
    board = build_leaderboard("pbmc_mcar", tmp_path, ("rmse",))
    rows = {r.variant: r for r in board.rows}
    assert sorted(rows["good"].replicates) == [0, 1] and not rows["old"].replicates
    assert rows["worse"].replicates[1].values["rmse"] == logged["worse", 1]
    first, second, verdict = board.verdict("rmse")
    assert (first.variant, second.variant) == ("good", "worse")
    assert verdict.bootstrap.replicates == 50 and verdict.bootstrap.passed and verdict.marked
    assert not any("seed test alone" in note for note in board.notes())
