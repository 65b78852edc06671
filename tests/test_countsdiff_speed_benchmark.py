"""The CountsDiff speed benchmark's smoke mode runs and writes its full schema (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "countsdiff_speed.py"
VARIANT_KEYS = {
    "variant",
    "options",
    "step_s",
    "step_s_all",
    "wall_s",
    "cells_per_s",
    "useful_gflops",
    "executed_gflops",
    "speedup_vs_research",
    "flop_bound_multiple",
    "executed_flop_multiple",
    "kernel_bound_multiple",
    "memory",
}


@pytest.mark.slow
def test_smoke_mode_writes_every_case_with_both_ratios_and_memory(tmp_path):
    pytest.importorskip("scanpy")  # the benchmark runs on the embedded pbmc68k data
    out = tmp_path / "speed.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SCRIPT.parents[1])}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--repeats", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["time_basis"] == "process_cpu" and report["threads"] == 1
    assert report["smoke"] and "load average" in report["machine_load"]["before"]["uptime"]
    assert report["data"]["genes"] == 64 and report["data"]["valid_genes_per_cell"]["max"] <= 64
    assert report["matmul"]["flops_per_cpu_s"] > 0
    assert report["attention"]["train"]["flops_per_cpu_s"] > 0 and report["attention"]["inference"]["shape"]
    for check in report["flop_counter_check"].values():  # the formula agrees with torch's counter
        assert abs(check["counter_over_formula"] - 1) < 0.05
    assert {"train_b64_shipped/countsbench", "train_b64_shipped/countsbench+buckets"} <= set(report["profiles"])
    cases = {case["case"]: case for case in report["results"]}
    assert set(cases) == {
        "train_b64_shipped",
        "train_b64_attention_dropout0",
        "train_b512_attention_dropout0",
        "train_b512_shipped",
        "impute_b512",
    }
    for case in cases.values():
        names = [row["variant"] for row in case["variants"]]
        assert "countsbench+buckets" in names
        for row in case["variants"]:
            assert set(row) >= VARIANT_KEYS, f"{case['case']}/{row['variant']} lacks {VARIANT_KEYS - set(row)}"
            assert row["step_s"] >= 0 and row["useful_gflops"] > 0 and row["kernel_bound_multiple"] > 0
            assert row["executed_gflops"] >= row["useful_gflops"] * (1 - 1e-9)  # padding only adds work
            assert row["memory"]["peak_rss_mb"] >= row["memory"]["rss_before_step_mb"] > 0
            research = "research" in names
            assert (row["speedup_vs_research"] is not None) == research
        if "research" in names:
            row = case["variants"][names.index("research")]
            assert row["speedup_vs_research"] == 1.0
    assert "reverse_over_forward" in cases["impute_b512"]["variants"][1]
    assert cases["train_b512_shipped"]["skipped"]  # the ~27 GB variants are named, not silently dropped
