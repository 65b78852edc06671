"""``countsbench ui``: the MLflow UI for the results, on 127.0.0.1, light enough for 2 cores."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from countsbench.commands.common import add_results_dir
from countsbench.safe_io import warn
from countsbench.tracking import tracking_uri


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ui", help="serve the MLflow UI for the results on 127.0.0.1")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1: this machine only; warns otherwise)",
    )
    parser.add_argument("--port", type=int, default=5000, help="port of the MLflow UI (default 5000)")
    add_results_dir(parser)
    parser.set_defaults(func=main)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only serves this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(args: argparse.Namespace) -> int:
    results_dir = Path(args.results_dir).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(results_dir)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    command += ["--host", args.host, "--port", str(args.port), "--workers", "1"]
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    if not is_loopback(args.host):
        warn(
            f"--host {args.host} serves the UI beyond this machine: anyone who can reach port {args.port} can "
            "read and change the results (there is no login); use the default 127.0.0.1 unless you mean it"
        )
    print(f"countsbench: MLflow UI for {uri} at http://{args.host}:{args.port} (Ctrl-C to stop)", file=sys.stderr)
    os.execve(sys.executable, command, env)  # replaces this process; Ctrl-C reaches MLflow directly
    return 0  # pragma: no cover
