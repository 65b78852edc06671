"""Run results as JSON files in the results directory, written atomically.

Layout::

    <results>/cells/<cell_id>/result.json        the latest successful run of a cell
    <results>/cells/<cell_id>/failed-<time>.json  each failed attempt (never overwrites a success)
    <results>/outputs/<cell_id>.npz               the method's outputs (imputations or samples)
    <results>/models/<fit_id>/                    fitted models, shared by cells that train alike
    <results>/mlflow.db, <results>/mlartifacts/   the default MLflow store

The store cannot be poisoned by one bad file: a result JSON that is cut short or not a result is
reported once (a warning naming it) and treated as absent, so ``--resume`` reruns that cell; values that
JSON cannot hold (NaN, infinities) are written as strings, so a failure is always recorded; cell ids and
the ``outputs`` paths read from results are checked (`CELL_ID`, `countsbench.safe_io.inside`), so nothing
is read or written outside the results directory.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from countsbench.safe_io import UnsafeFileError, inside, warn

DEFAULT_RESULTS_DIR = Path("countsbench-results")
#: A cell id: the first 16 hex digits of a sha256 (`runner.PreparedCell.cell_id`).
CELL_ID = re.compile(r"[0-9a-f]{16}")
_WARNED: set[Path] = set()


class ResultsDirError(OSError):
    """The results directory cannot be created or written."""

    def __str__(self) -> str:
        return str(self.args[0])


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to a temporary file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(json_safe(payload), handle, indent=2, sort_keys=True, allow_nan=False, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as the strings ``"nan"``, ``"inf"``, ``"-inf"`` and numpy scalars
    as Python numbers, so that recording a result can never fail on its values."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return json_safe(value.item())
    return value


def read_result(path: Path, quiet: bool = False) -> dict | None:
    """The result in ``path``, or None with one warning (per file and process) when it is unreadable."""
    try:
        result = json.loads(Path(path).read_text())
        if not isinstance(result, dict) or not CELL_ID.fullmatch(str(result.get("cell_id"))):
            raise ValueError("not a countsbench result (no valid cell_id)")
        if result.get("status") not in ("ok", "failed"):
            raise ValueError(f"unknown status {result.get('status')!r}")
        return result
    except (OSError, UnicodeDecodeError, ValueError) as error:
        if not quiet and path not in _WARNED:
            _WARNED.add(path)
            warn(f"ignoring unreadable result {path} ({error}); its cell counts as not run")
        return None


class ResultStore:
    """The JSON results of one results directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def check_writable(self) -> None:
        """Fail early, before any work, when results could not be recorded."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-"):
                pass
        except OSError as error:
            raise ResultsDirError(f"results directory {self.root} is not writable: {error.strerror or error}") from None

    def require_existing(self, tracking: bool = True) -> None:
        """For read-only commands: a missing results directory (or, with the default tracking store, one
        without ``mlflow.db``) is an error; nothing is created."""
        if not self.root.is_dir():
            raise ResultsDirError(
                f"--results-dir {self.root} does not exist (give the directory your runs recorded into)"
            )
        if tracking and not os.environ.get("MLFLOW_TRACKING_URI") and not (self.root / "mlflow.db").is_file():
            raise ResultsDirError(f"--results-dir {self.root} holds no runs (no mlflow.db); nothing to read")

    def cell_dir(self, cell_id: str) -> Path:
        if not isinstance(cell_id, str) or not CELL_ID.fullmatch(cell_id):
            raise UnsafeFileError(f"cell id {cell_id!r} is not 16 hex digits")
        return self.root / "cells" / cell_id

    def result_path(self, cell_id: str) -> Path:
        return self.cell_dir(cell_id) / "result.json"

    def outputs_path(self, cell_id: str) -> Path:
        return self.root / "outputs" / f"{cell_id}.npz"

    def model_dir(self, fit_id: str) -> Path:
        return self.root / "models" / fit_id

    def checksum_cache(self) -> Path:
        return self.root / "checksums.json"

    def outputs_file(self, result: dict) -> Path:
        """The saved outputs a result names, which must lie inside the results directory."""
        return inside(self.root, result["outputs"], "outputs path")

    def load_success(self, cell_id: str) -> dict | None:
        path = self.result_path(cell_id)
        if not path.exists():
            return None
        result = read_result(path)
        return result if result is not None and result["status"] == "ok" else None

    def load_failures(self, cell_id: str) -> list[dict]:
        """The readable failed attempts of a cell, oldest first."""
        failures = (read_result(p) for p in sorted(self.cell_dir(cell_id).glob("failed-*.json")))
        return [f for f in failures if f is not None]

    def save(self, result: dict) -> Path:
        if result["status"] == "ok":
            path = self.result_path(result["cell_id"])
        else:
            stamp = result["started_at"].replace(":", "").replace("-", "")
            path = self.cell_dir(result["cell_id"]) / f"failed-{stamp}.json"
        write_json_atomic(path, result)
        return path

    def iter_results(self) -> Iterator[dict]:
        for path in sorted((self.root / "cells").glob("*/*.json")):
            result = read_result(path)
            if result is not None:
                yield result
