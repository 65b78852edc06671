"""The command line end to end on the real embedded pbmc task, as a user would type it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from countsbench.cli import main


def run_cli(*args: str) -> int:
    return main(list(args))


def test_run_then_leaderboard(results_dir, capsys):
    for method in ("zero", "mean", "conditional_mean"):
        for seed in ("0", "1"):
            code = run_cli(
                "run", "--method", method, "--task", "pbmc_mcar", "--seed", seed, "--results-dir", str(results_dir)
            )
            assert code == 0
    out = capsys.readouterr().out
    assert "energy_distance" in out and "result:" in out
    assert len(list((results_dir / "cells").glob("*/result.json"))) == 6
    assert run_cli("leaderboard", "--task", "pbmc_mcar", "--results-dir", str(results_dir), "--format", "markdown") == 0
    table = capsys.readouterr().out
    header, *rows = [
        [cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("| ")
    ]
    assert header[0] == "method" and "rmse ↓" in header
    by_method = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert list(by_method) == ["conditional_mean", "mean", "zero"]  # ranked by RMSE, lower first
    assert all(row["seeds ok"] == "2" for row in by_method.values())
    rmse = {m: float(row["rmse ↓"].split()[0].strip("*")) for m, row in by_method.items()}
    assert rmse["conditional_mean"] < rmse["mean"] < rmse["zero"]


def test_run_prints_a_start_line_with_the_data_and_device(results_dir, capsys):
    argv = ["run", "--method", "mean", "--task", "pbmc_mcar", "--device", "cpu", "--results-dir", str(results_dir)]
    assert run_cli(*argv) == 0
    err = capsys.readouterr().err
    line = "countsbench: fitting mean on pbmc_mcar (quick profile, seed 0, device cpu): 490 training samples x 765 "
    line += "features"
    assert line in err.splitlines()


def test_plugin_method_runs_through_the_cli(results_dir, test_plugin, capsys):
    code = run_cli(
        "--plugin",
        test_plugin,
        "run",
        "--method",
        "plugin_median",
        "--task",
        "pbmc_mnar",
        "--set",
        "offset=1",
        "--results-dir",
        str(results_dir),
    )
    assert code == 0
    (result,) = [json.loads(p.read_text()) for p in (results_dir / "cells").glob("*/result.json")]
    assert result["method"] == "plugin_median" and result["config"] == {"offset": 1}


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "--method", "magic_wand", "--task", "pbmc_mcar"], "unknown method 'magic_wand'; known methods:"),
        (["run", "--method", "mean", "--task", "nowhere"], "unknown task 'nowhere'; known tasks:"),
        (["run", "--method", "mean", "--task", "pbmc_mcar", "--set", "k=1"], "unknown hyperparameter"),
        (["run", "--method", "conditional_mean", "--task", "pbmc_mcar", "--set", "condition_keys"], "key=value"),
    ],
)
def test_bad_input_is_a_one_line_error(results_dir, capsys, args, message):
    assert run_cli(*args, "--results-dir", str(results_dir)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("countsbench: error:")


def test_plugin_task_errors(results_dir, test_plugin, capsys):
    assert (
        run_cli(
            "--plugin",
            test_plugin,
            "run",
            "--method",
            "mean",
            "--task",
            "plugin_generation",
            "--results-dir",
            str(results_dir),
        )
        == 2
    )
    assert "does not support generation tasks" in capsys.readouterr().err
    assert (
        run_cli(
            "--plugin",
            test_plugin,
            "run",
            "--method",
            "mean",
            "--task",
            "plugin_negative_counts",
            "--results-dir",
            str(results_dir),
        )
        == 2
    )
    assert "non-negative" in capsys.readouterr().err


def test_unwritable_results_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run_cli("run", "--method", "mean", "--task", "pbmc_mcar", "--results-dir", str(blocker / "r")) == 2
    assert "not writable" in capsys.readouterr().err


def test_failing_method_exits_non_zero_and_keeps_earlier_results(results_dir, test_plugin, capsys):
    argv = ["run", "--method", "mean", "--task", "pbmc_mcar", "--device", "cpu", "--results-dir", str(results_dir)]
    assert run_cli(*argv) == 0
    (good,) = list((results_dir / "cells").glob("*/result.json"))
    before = good.read_text()
    assert (
        run_cli(
            "--plugin",
            test_plugin,
            "run",
            "--method",
            "plugin_crashes",
            "--task",
            "pbmc_mcar",
            "--results-dir",
            str(results_dir),
        )
        == 1
    )
    assert "run failed: RuntimeError: deliberate failure in fit" in capsys.readouterr().err
    assert good.read_text() == before
    assert len(list((results_dir / "cells").glob("*/failed-*.json"))) == 1


def test_console_entry_point_lists_the_registry():
    out = subprocess.run(
        [sys.executable, "-m", "countsbench", "list", "methods"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, COLUMNS="200"),
    ).stdout
    assert "conditional_mean" in out and "control" in out


def test_list_shows_metadata(capsys):
    assert run_cli("list", "metrics") == 0
    out = capsys.readouterr().out
    assert "sliced_wasserstein" in out and "target 0.0" in out


def test_no_runs_gives_a_message(tmp_path, capsys):
    missing = Path(tmp_path) / "empty"
    assert run_cli("leaderboard", "--task", "pbmc_mcar", "--results-dir", str(missing)) == 2
    assert "does not exist" in capsys.readouterr().err and not missing.exists()  # a read-only command creates nothing
