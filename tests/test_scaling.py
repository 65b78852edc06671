"""The scaled summary score (`countsbench.leaderboards.scaling`): each signal once, clipped, missing metrics flagged."""

from __future__ import annotations

import math

import pytest

from countsbench.leaderboards.scaling import CLIP, Signal, signal_of, summary
from countsbench.leaderboards.table import Leaderboard, Row

SEEDS = (0, 1, 2)


def row(name: str, role: str = "baseline", **values: float | tuple[float, ...]) -> Row:
    """A row with the same value on every seed, or one value per seed (a tuple)."""
    per_seed = {m: dict(zip(SEEDS, v if isinstance(v, tuple) else (v,) * 3, strict=True)) for m, v in values.items()}
    return Row(name, name, role, seeds_ok=set(SEEDS), values=per_seed)


def board(rows: list[Row], metrics: list[str], directions: dict[str, str] | None = None) -> Leaderboard:
    directions = {m: "minimize" for m in metrics} | (directions or {})
    return Leaderboard("t", metrics, directions, rows, {m: signal_of(m) for m in metrics})


def test_registered_declarations():
    assert signal_of("log_mmd") == Signal(True, "mmd", "always")
    assert signal_of("log_scfid").same_as == "scfid"
    assert signal_of("crps") == Signal(True, "mae", "equal")
    assert signal_of("marginal_mmd/mean").scored and not signal_of("marginal_mmd/dim3").scored
    assert not signal_of("variance_ratio/dim0").scored
    assert signal_of("variance_ratio_in_band").same_as == "variance_log_error"
    assert signal_of("rmse") == Signal() and signal_of("unregistered/metric") == Signal()


def test_duplicates_and_transforms_count_once():
    """log_mmd is a transform of mmd for every row; crps equals mae for a single imputation only."""
    controls = [
        row("zero", "control", mmd=0.04, log_mmd=math.log(0.04), mae=2.0, crps=2.0),
        row("mean", "control", mmd=0.02, log_mmd=math.log(0.02), mae=1.0, crps=1.0),
    ]
    single = row("single", mmd=0.03, log_mmd=math.log(0.03), mae=1.5, crps=1.5)  # K = 1: crps is its mae
    multiple = row("multiple", mmd=0.03, log_mmd=math.log(0.03), mae=1.5, crps=1.25)  # K = 5
    lb = board([*controls, single, multiple], ["mmd", "log_mmd", "mae", "crps"])
    assert lb.counted_metrics(single) == ["mmd", "mae"]
    assert lb.counted_metrics(multiple) == ["mmd", "mae", "crps"]
    assert lb.summary_score(single) == pytest.approx((0.5 + 0.5) / 2)
    assert lb.summary_score(multiple) == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    # without its original on the board, a transform is the signal
    alone = board([*controls, single], ["log_mmd"])
    assert alone.counted_metrics(single) == ["log_mmd"]


def test_components_of_a_dict_metric_stand_behind_its_summary_key():
    controls = [
        row("a", "control", **{"marginal_mmd/mean": 2.0, "marginal_mmd/dim0": 3.0, "marginal_mmd/dim1": 1.0}),
        row("b", "control", **{"marginal_mmd/mean": 1.0, "marginal_mmd/dim0": 1.0, "marginal_mmd/dim1": 1.0}),
    ]
    method = row("m", **{"marginal_mmd/mean": 1.5, "marginal_mmd/dim0": 2.0, "marginal_mmd/dim1": 1.0})
    lb = board([*controls, method], ["marginal_mmd/mean", "marginal_mmd/dim0", "marginal_mmd/dim1"])
    assert lb.counted_metrics(method) == ["marginal_mmd/mean"]


def test_scaled_values_are_clipped_before_averaging():
    controls = [row("worst", "control", rmse=5.0, spearman=0.1), row("best", "control", rmse=3.0, spearman=0.5)]
    method = row("m", rmse=1.0, spearman=-0.7)  # far beyond the best control, and below the worst
    lb = board([*controls, method], ["rmse", "spearman"], {"spearman": "maximize"})
    assert lb.scaled(method, "rmse") == pytest.approx(2.0) and lb.scaled(method, "spearman") == pytest.approx(-2.0)
    assert CLIP == (0.0, 1.0) and lb.summary_score(method) == pytest.approx((1.0 + 0.0) / 2)
    assert summary({"a": 1.7, "b": 0.25}).score == pytest.approx((1.0 + 0.25) / 2)


def test_target_metrics_scale_by_the_mean_distance_to_the_target():
    controls = [row("far", "control", bias=(-2.0, 2.0, -2.0)), row("near", "control", bias=0.5)]
    method = row("m", bias=(-1.0, 1.0, 1.0))  # mean bias 1/3, but 1 from the target on every seed
    lb = board([*controls, method], ["bias"], {"bias": "target:0.0"})
    assert lb.scaled(method, "bias") == pytest.approx((2 - 1) / (2 - 0.5))


def test_missing_metrics_are_flagged_not_averaged_away():
    controls = [
        row("worst", "control", rmse=5.0, mae=3.0, energy=2.0),
        row("best", "control", rmse=3.0, mae=1.0, energy=1.0),
    ]
    partial = row("partial", rmse=3.0, mae=1.0)  # no energy value: scored 1, 1 and a missing 0
    complete = row("complete", rmse=4.0, mae=2.0, energy=1.5)
    failed = Row("failed", "failed", "baseline", seeds_failed={0})
    one_control = row("x", rmse=4.0)  # a metric only one control has cannot be scaled: not counted
    lb = board([*controls, partial, complete, failed, one_control], ["rmse", "mae", "energy", "lonely"])
    lb.rows[0].values["lonely"] = {0: 1.0}
    result = lb.summary(partial)
    assert result.missing == ("energy",) and result.counted == ("rmse", "mae", "energy")
    assert result.score == pytest.approx(2 / 3)  # a lower bound: the missing metric counts as 0
    cells = {cells[0]: cells[5] for cells in lb.table()}
    assert cells["partial"] == "≥0.667 (1 of 3 missing)" and cells["complete"] == "0.5" and cells["failed"] == "-"
    assert cells["x"] == "≥0.167 (2 of 3 missing)"
    notes = lb.notes()
    assert any(n.startswith("Scaled score of partial: a lower bound, 1 of 3 metrics missing") for n in notes)
    assert not any("of complete" in n or "of failed" in n for n in notes)
