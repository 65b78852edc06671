"""`countsbench ui` serves the MLflow UI whose REST API lists the recorded runs."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from countsbench.runner import CellRequest, run_cell


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@contextlib.contextmanager
def ui_server(results_dir: Path) -> Iterator[str]:
    """`countsbench ui` on a free port, yielding its base URL once /health answers; stopped after."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "countsbench", "ui", "--results-dir", str(results_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert server.poll() is None, "the UI process exited"
            assert time.monotonic() < deadline, "the UI did not start within 90 s"
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_ui_serves_the_runs(results_dir):
    for seed in (0, 1):
        run_cell(CellRequest("mean", "pbmc_mcar", seed=seed), results_dir)
    with ui_server(results_dir) as base:
        experiments = post(base + "/api/2.0/mlflow/experiments/search", {"max_results": 10})["experiments"]
        (experiment,) = [e for e in experiments if e["name"] == "pbmc_mcar"]
        runs = post(base + "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        seeds = sorted({t["key"]: t["value"] for t in r["data"]["tags"]}["seed"] for r in runs)
        assert seeds == ["0", "1"]
        with urllib.request.urlopen(base + "/", timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
