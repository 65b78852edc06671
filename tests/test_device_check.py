"""benchmarks/device_check.sh, the one prepared command for a lent GPU machine, run here in its SMOKE
mode (CPU, toy sizes, no wheels): it installs countsbench into a target folder, imports it from there
(not from the checkout), collects the CUDA tests (skipped without a GPU) and runs both benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_device_check_runs_every_stage_in_smoke_mode(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "SMOKE": "1", "PY": sys.executable, "OUT": str(out), "SITE": str(tmp_path / "site")}
    env.pop("COUNTSBENCH_REQUIRE_CUDA", None)
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "every stage passed" in run.stdout
    tests_log = (out / "cuda_tests.log").read_text()
    assert "6 skipped" in tests_log and "CUDA TEST NOT RUN" in tests_log, tests_log[-2000:]
    imputation = json.loads((out / "imputation_throughput_cuda.json").read_text())
    assert imputation["device"] == "cpu" and imputation["cells"] == 24 and imputation["cells_per_s"] > 0
    speed = json.loads((out / "countsdiff_speed_cuda.json").read_text())
    assert speed["device"] == "cpu" and speed["smoke"] and speed["results"]


def test_device_check_refuses_a_machine_without_cuda(tmp_path):
    """Outside SMOKE mode the script stops at once, before installing anything, when no GPU is visible."""
    env = {**os.environ, "PY": sys.executable, "OUT": str(tmp_path / "out"), "SITE": str(tmp_path / "site")}
    env.pop("SMOKE", None)
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0 and "no CUDA device" in run.stderr
    assert not (tmp_path / "site").exists()
