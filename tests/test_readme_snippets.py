"""The README's "Adding a method" and "Scoring another tool's output" examples, run as written.

Only the placeholders a user fills in (``my_generator``, ``my_imputer``) are supplied here; everything
else is the README's own text, so an edit that breaks an example fails a test.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from countsbench.cli import main
from countsbench.results import ResultStore

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str, containing: str) -> list[str]:
    text = README.read_text()
    return [block for block in re.findall(rf"```{language}\n(.*?)```", text, re.S) if containing in block]


def command_line(containing: str) -> list[str]:
    """The README's shell line holding ``containing``, as argv (its trailing comment dropped)."""
    (line,) = [line for block in blocks("bash", containing) for line in block.splitlines() if containing in line]
    words = shlex.split(line, comments=True)
    assert words[0] == "countsbench", line
    return words[1:]


def test_the_adding_a_method_example_registers_and_runs_as_written(tmp_path, monkeypatch):
    (source,) = blocks("python", 'register_method("gene_median"')
    assert source.startswith("# my_methods.py\n")
    (tmp_path / "my_methods.py").write_text(source)
    argv = command_line("--plugin my_methods")
    env = {"PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "countsbench", *argv], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = (tmp_path / "countsbench-results" / "cells").glob("*/result.json")
    result = json.loads(path.read_text())
    assert result["status"] == "ok" and result["method"] == "gene_median" and result["config"]["offset"] == 1
    assert np.isfinite(result["metrics"]["rmse"])


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch, results_dir):
    monkeypatch.chdir(tmp_path)
    return results_dir


def test_the_generation_samples_example_is_scored_as_an_external_row(in_tmp):
    (source,) = blocks("python", "my_generator(")
    rng = np.random.default_rng(0)
    namespace = {"my_generator": lambda n: rng.negative_binomial(2, 0.3, size=(n, 10))}
    exec(compile(source, "README.md", "exec"), namespace)
    cheap = ["--metrics", "zero_share,max_count", "--no-track", "--results-dir", str(in_tmp)]
    assert main(["evaluate", "--task", "toy_nb", "--samples", "mytool.h5ad", "--name", "mytool", *cheap]) == 0
    (result,) = ResultStore(in_tmp).iter_results()
    assert result["role"] == "external" and result["provenance"]["external_file"]["genes"] == "by name"


def test_the_imputation_example_is_scored_and_appears_on_the_leaderboard(in_tmp, capsys):
    (source,) = blocks("python", "my_imputer(")

    def my_imputer(counts: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Targets filled with the gene's mean over the observed entries, rounded."""
        observed = np.where(target, np.nan, counts)
        fill = np.rint(np.nan_to_num(np.nanmean(observed, axis=0)))
        return np.where(target, fill, counts).astype(np.int64)

    namespace = {"my_imputer": my_imputer}
    exec(compile(source, "README.md", "exec"), namespace)
    evaluate = command_line("--samples mytool.h5ad --name mytool")
    leaderboard = command_line("mytool's row")
    assert evaluate[:2] == ["evaluate", "--task"]
    cheap = ["--metrics", "rmse,mae", "--results-dir", str(in_tmp)]  # tracked: the leaderboard reads MLflow
    assert main([*evaluate, *cheap]) == 0
    capsys.readouterr()
    assert main([*leaderboard, "--results-dir", str(in_tmp)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "mytool" in line)
    assert "external" in row
