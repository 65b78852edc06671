"""Run results as JSON files in the results directory, written atomically.

Layout::

    <results>/cells/<cell_id>/result.json        the latest successful run of a cell
    <results>/cells/<cell_id>/failed-<time>.json  each failed attempt (never overwrites a success)
    <results>/outputs/<cell_id>.npz               the method's outputs (imputations or samples)
    <results>/models/<fit_id>/                    fitted models, shared by cells that train alike
    <results>/mlflow.db, <results>/mlartifacts/   the default MLflow store
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_RESULTS_DIR = Path("countsbench-results")


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
            json.dump(payload, handle, indent=2, sort_keys=True, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

    def cell_dir(self, cell_id: str) -> Path:
        return self.root / "cells" / cell_id

    def result_path(self, cell_id: str) -> Path:
        return self.cell_dir(cell_id) / "result.json"

    def outputs_path(self, cell_id: str) -> Path:
        return self.root / "outputs" / f"{cell_id}.npz"

    def model_dir(self, fit_id: str) -> Path:
        return self.root / "models" / fit_id

    def checksum_cache(self) -> Path:
        return self.root / "checksums.json"

    def load_success(self, cell_id: str) -> dict | None:
        path = self.result_path(cell_id)
        if not path.exists():
            return None
        result = json.loads(path.read_text())
        return result if result.get("status") == "ok" else None

    def load_failures(self, cell_id: str) -> list[dict]:
        """The failed attempts of a cell, oldest first."""
        return [json.loads(p.read_text()) for p in sorted(self.cell_dir(cell_id).glob("failed-*.json"))]

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
            yield json.loads(path.read_text())
