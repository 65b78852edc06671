"""Provenance recorded with every result: versions, device, threads, git commit, data checksums."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from countsbench.context import cpu_threads
from countsbench.safe_io import sha256_file

SCHEMA_VERSION = 1
TRACKED_PACKAGES = (
    "countsbench",
    "numpy",
    "scipy",
    "torch",
    "mlflow",
    "anndata",
    "scanpy",
    "scikit-learn",
    "pot",
    "diffusers",
    "xgboost",
    "scvi-tools",
    "torchmetrics",
)


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str:
    """The commit of the countsbench source tree, or "unknown" outside a git checkout."""
    source = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def file_checksum(path: Path, cache_file: Path | None = None) -> str:
    """sha256 of a file; cached by (path, size, mtime) in ``cache_file`` so atlases hash once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = {}
    if cache_file is not None and cache_file.exists():
        try:
            cache = json.loads(cache_file.read_text())
        except json.JSONDecodeError:
            cache = {}  # a damaged cache is only a cache: recompute
    if key in cache:
        return cache[key]
    checksum = "sha256:" + sha256_file(path)
    if cache_file is not None:
        from countsbench.results import write_json_atomic

        cache[key] = checksum
        write_json_atomic(cache_file, cache)
    return checksum


def collect(device: str, data_files: Iterable[Path], cache_file: Path | None) -> dict:
    threads = None
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        pass
    gpu = None
    if device == "cuda":
        import torch

        gpu = torch.cuda.get_device_name()
    return {
        "schema_version": SCHEMA_VERSION,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_commit": git_commit(),
        "device": device,
        "gpu": gpu,
        "cpu_threads": cpu_threads(),
        "torch_threads": threads,
        "data_checksums": {str(p): file_checksum(p, cache_file) for p in data_files},
    }
