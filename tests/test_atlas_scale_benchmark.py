"""The atlas-scale benchmark runs a tiny synthetic atlas end to end under the profile it is given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "atlas_scale.py"


@pytest.mark.slow
def test_tiny_atlas_under_the_paper_profile_writes_its_stages_and_costs(tmp_path):
    out = tmp_path / "atlas.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(SCRIPT), "--n-cells", "300", "--n-genes", "40", "--profile", "paper"]
    command += ["--set", "steps=2", "--set", "n_steps=2", "--set", "network=transformer", "--output", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["profile"] == figures["run_profile"] == "paper" and figures["device"] == "cpu"
    assert figures["run_config"]["micro_batches"] == "auto" and figures["run_config"]["batch_size"] == 512
    assert figures["n_cells"] == 300
    assert set(figures["stages"]) == {"prepare", "run"}
    assert all(stage["peak_rss_mb"] > 0 and stage["wall_s"] > 0 for stage in figures["stages"].values())
    assert figures["run_costs"]["fit_s"] > 0 and figures["run_costs"]["infer_s"] > 0
    assert figures["peak_rss_mb_max"] == max(stage["peak_rss_mb"] for stage in figures["stages"].values())
