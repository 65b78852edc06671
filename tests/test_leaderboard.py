"""Leaderboard aggregation, best-beyond-noise marks, control scaling, column choice and every output
format (read back with pandas, json and a Markdown table parser), by hand.

The statistics of the best-mark rule (false-mark rate, power, the paired bootstrap) are tested in
tests/test_significance.py; the scaled score's rules (signals counted once, clipping, missing metrics)
in tests/test_scaling.py."""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from countsbench.config import ConfigError
from countsbench.leaderboards import build_leaderboard, csv_text, export_task, html_page, markdown
from countsbench.leaderboards.scaling import scale
from countsbench.leaderboards.significance import compare, seed_p_values
from countsbench.leaderboards.table import Leaderboard, Row
from countsbench.registry import REGISTRY
from countsbench.tracking import Tracker

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
        "run_name": f"{method} seed {seed}",
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
    return build_leaderboard("pbmc_mcar", logged, ("rmse", "spearman", "bias"), headline=("rmse", "bias"))


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


def parse_markdown_tables(text: str) -> list[pd.DataFrame]:
    """Each pipe table of a Markdown document as a DataFrame of its cells (``\\|`` unescaped)."""
    tables, lines = [], text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("|") and index + 1 < len(lines) and re.fullmatch(r"\|(---\|)+", lines[index + 1]):
            body = []
            for row in lines[index + 2 :]:
                if not row.startswith("|"):
                    break
                body.append(row)
            split = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in [line, *body]]
            tables.append(pd.DataFrame(split[1:], columns=split[0]))
    return tables


def test_every_builtin_task_declares_headline_metrics_among_its_defaults():
    builtin = [spec for spec in REGISTRY.tasks if spec.factory.__module__.startswith("countsbench.tasks.")]
    assert builtin
    for spec in builtin:
        task = spec.factory()
        assert task.headline_metrics and set(task.headline_metrics) <= set(task.default_metrics), spec.name
    headline = {name: REGISTRY.tasks.get(name).factory().headline_metrics for name in ("pbmc_mcar", "toy_nb", "digits")}
    assert headline["pbmc_mcar"] == ("rmse", "energy_distance", "mmd", "sliced_wasserstein", "crps", "xgboost_macro_f1")
    assert headline["toy_nb"] == (
        "joint_mmd",
        "joint_sliced_wasserstein",
        "variance_log_error",
        "variance_ratio_in_band",
    )
    assert headline["digits"] == ("fid", "inception_score", "class_accuracy")


def test_column_choice(board):
    assert board.headline_metrics == ["rmse", "bias"]
    assert board.columns() == ["rmse", "bias"] and board.columns("all") == ["rmse", "spearman", "bias"]
    assert board.columns(["spearman", "rmse"]) == ["spearman", "rmse"]
    with pytest.raises(ConfigError, match="no values of nope on pbmc_mcar; its metrics: rmse, spearman, bias"):
        board.columns(["nope"])
    header = board.header(["spearman"])
    assert "spearman ↑" in header and not any(h.startswith(("rmse", "bias")) for h in header)
    assert "scaled score" in header and header[-4:] == ["train s", "sampling s", "peak MB", "params"]
    (cells,) = [c for c in board.table(metrics=["spearman"]) if c[0] == "plugin_median"]
    # the scaled score still averages all three metrics (each clipped to [0, 1]: (1 + 0.75 + 1) / 3)
    assert len(cells) == len(header) and cells[5] == "0.917"
    no_headline = Leaderboard("t", ["a", "b"], {}, [], headline=["c"])
    assert no_headline.columns() == ["a", "b"]  # none of the headline metrics logged: every metric


def test_exports(board, tmp_path):
    text = markdown(board)
    assert "| plugin_median | baseline | 3 | 0 | 0 |" in text and "**2 ± 0.058**" in text
    assert "conditional_mean | control | 0 | 1 | 2" in text
    assert text.index("## Headline metrics") < text.index("## All metrics")
    headline, full = parse_markdown_tables(text)
    assert list(headline.columns[6:8]) == ["rmse ↓", "bias →0.0"] and "spearman ↑" in full.columns
    # scores clipped to [0, 1]: the control mean (1.0) sorts above plugin_median (0.917)
    assert list(headline["method"]) == list(full["method"]) == ["mean", "plugin_median", "zero", "conditional_mean"]
    frame = pd.read_csv(io.StringIO(csv_text(board))).set_index("variant")
    assert len(frame) == 4 and frame.loc["zero", "rmse.mean"] == 5.0 and frame.loc["plugin_median", "rmse.best"]
    assert frame.loc["plugin_median", "rmse.scaled"] == pytest.approx(1.5)
    assert frame.loc["plugin_median", "rmse.se"] == pytest.approx(0.1 / math.sqrt(3))
    assert math.isnan(frame.loc["conditional_mean", "rmse.mean"]) and frame.loc["conditional_mean", "failed"] == 1
    assert frame.loc["plugin_median", "fit_s.mean"] == pytest.approx(2.0) and "spearman.mean" in frame.columns
    page = html_page(board, "pbmc_mcar.png")
    assert "<table" in page and "<strong>2 ± 0.058</strong>" in page and "RuntimeError: boom" in page
    assert page.index('id="leaderboard"') < page.index('id="leaderboard-all"')
    paths = export_task(board, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["pbmc_mcar." + s for s in ("csv", "html", "md", "png")]
    png = (tmp_path / "out" / "pbmc_mcar.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_reexport_keeps_notes_below_the_marker(board, tmp_path):
    from countsbench.leaderboards.export import NOTES_MARKER

    (path,) = [p for p in export_task(board, tmp_path) if p.suffix == ".md"]
    path.write_text(path.read_text().replace("| zero |", "| stale |") + "\nCountsDiff wins here.\n")
    export_task(board, tmp_path)
    text = path.read_text()
    assert "| stale |" not in text and "| zero |" in text  # the table is rebuilt
    assert text.count(NOTES_MARKER) == 1 and text.endswith("CountsDiff wins here.\n")


def test_a_new_page_ends_with_the_marker_and_a_page_without_it_is_not_overwritten(board, tmp_path):
    from countsbench.config import ConfigError
    from countsbench.leaderboards.export import NOTES_MARKER

    (path,) = [p for p in export_task(board, tmp_path) if p.suffix == ".md"]
    assert path.read_text().rstrip().endswith(NOTES_MARKER)  # where a reading goes
    hand_written = path.read_text().replace(NOTES_MARKER, "## Reading\n\nCountsDiff wins here.")
    path.write_text(hand_written)
    (tmp_path / "pbmc_mcar.png").unlink()
    with pytest.raises(ConfigError, match="no notes marker"):
        export_task(board, tmp_path)
    assert path.read_text() == hand_written and not (tmp_path / "pbmc_mcar.png").exists()  # nothing written


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


def leaderboard_cli(results_dir: Path, *options: str) -> str:
    import contextlib

    from countsbench.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["leaderboard", "--task", "pbmc_mcar", "--results-dir", str(results_dir), *options]) == 0
    return out.getvalue()


@pytest.mark.parametrize("options", [(), ("--all",), ("--metrics", "spearman,rmse")])
def test_every_format_round_trips(logged, monkeypatch, options):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # the default: the pbmc_mcar headline metrics (rmse, energy_distance, ...) these fake runs logged;
    # --all: in the order of its default metrics (rmse, mae, bias, ...), then the others
    expected = {(): ["rmse"], ("--all",): ["rmse", "bias", "spearman"]}.get(options, ["spearman", "rmse"])
    variants = ["mean", "plugin_median", "zero", "conditional_mean"]  # by clipped scaled score: 1.0, 0.917, ...
    for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
        frame = pd.read_csv(io.StringIO(leaderboard_cli(logged, "--format", fmt, *options)), sep=delimiter)
        assert list(frame["variant"]) == variants and frame["rmse.mean"].iloc[1] == pytest.approx(2.0)
        assert [c[: -len(".mean")] for c in frame.columns if c.endswith(".mean")] == [*expected, *COST_NAMES]
        # each metric's scaled value clipped to [0, 1] before the mean: 1.5 -> 1, 0.75, 1.29 -> 1
        assert frame["scaled_score"].iloc[1] == pytest.approx((1 + 0.75 + 1) / 3)
    payload = json.loads(leaderboard_cli(logged, "--format", "json", *options))
    assert [r["variant"] for r in payload["rows"]] == variants and list(payload["directions"]) == expected
    assert (
        payload["rows"][1]["rmse.se"] == pytest.approx(0.1 / math.sqrt(3)) and payload["rows"][3]["rmse.mean"] is None
    )
    assert pd.DataFrame(payload["rows"]).shape[0] == 4
    (table,) = parse_markdown_tables(leaderboard_cli(logged, "--format", "markdown", *options))
    assert list(table["method"]) == variants and [c.split(" ")[0] for c in table.columns[6:-4]] == expected
    assert table.loc[1, "rmse ↓"] == "**2 ± 0.058**"
    text = leaderboard_cli(logged, *options)
    assert all(f"{m} " in text for m in expected) and (("spearman" in text) == ("spearman" in expected))


COST_NAMES = ["fit_s", "infer_s", "peak_memory_mb", "n_parameters"]


def test_piped_table_keeps_each_row_on_one_line(logged, monkeypatch):
    """The real command with stdout a pipe and a narrow COLUMNS: one line per row, names whole."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    command = [sys.executable, "-m", "countsbench", "leaderboard", "--task", "pbmc_mcar", "--results-dir", str(logged)]
    done = subprocess.run(
        [*command, "--all"], capture_output=True, text=True, env=dict(os.environ, COLUMNS="30"), timeout=120
    )
    assert done.returncode == 0, done.stderr
    for variant, values in (("plugin_median", "*2 ± 0.058*"), ("conditional_mean", "│ 0        │ 1      │ 2       │")):
        (line,) = [line for line in done.stdout.splitlines() if f" {variant} " in line]  # what grep finds
        assert values in line and "spearman" not in line
    (header,) = [line for line in done.stdout.splitlines() if " method " in line]
    assert "spearman ↑" in header and "params" in header


def test_terminal_table_splits_columns_and_keeps_names_whole(board, monkeypatch):
    from countsbench.commands.common import print_table

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    print_table("title", board.header(), board.table(), split=True, width=60)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue()).splitlines()
    assert max(len(line) for line in lines) <= 60
    blocks = [line for line in lines if " method " in line]
    assert len(blocks) > 1  # several column blocks, each repeating the method column
    for variant in ("plugin_median", "conditional_mean"):
        assert sum(f"│ {variant} " in line for line in lines) == len(blocks)
    columns = " ".join(lines)
    assert all(label in columns for label in ("spearman ↑", "scaled score", "sampling s", "params"))


def test_every_committed_page_keeps_its_notes_on_regeneration():
    from countsbench.leaderboards.export import NOTES_MARKER, kept_notes

    pages = sorted((Path(__file__).resolve().parents[1] / "leaderboards").glob("*.md"))
    assert len(pages) >= 9
    for page in pages:
        assert page.read_text().count(NOTES_MARKER) == 1, page.name
        assert len(kept_notes(page).strip()) > len(NOTES_MARKER), page.name  # a reading below it


def test_export_command_refuses_a_page_without_the_marker_before_writing(logged, monkeypatch, tmp_path, capsys):
    from countsbench.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "lb"
    out.mkdir()
    (out / "pbmc_mcar.md").write_text("# my page\n\n## Reading\n\nhand-written\n")
    assert main(["leaderboard", "--export", str(out), "--results-dir", str(logged)]) != 0
    err = capsys.readouterr().err
    assert "no notes marker" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["pbmc_mcar.md"]  # nothing written
    assert (out / "pbmc_mcar.md").read_text().endswith("hand-written\n")
