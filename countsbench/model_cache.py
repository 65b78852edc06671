"""The cache of fitted models, ``<results>/models/<fit_id>/``: written whole or not at all, checked on read.

A model is saved into a temporary sibling directory, its files' sha256 written to ``complete`` (the
manifest, last), and the directory renamed into place. Reading verifies every checksum first: a cache
cut short, changed, or from an older format (no manifest) is reported in one warning naming it, removed
and refitted, never loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from countsbench.method import Method
from countsbench.safe_io import tree_checksums, verify_checksums, warn, write_atomic

MANIFEST = "complete"


class ModelCache:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def load(self, cls: type[Method]) -> Method | None:
        """The cached model, or None (nothing cached, or a damaged cache, which is removed)."""
        manifest = self.directory / MANIFEST
        if not self.directory.exists():
            return None
        try:
            expected = json.loads(manifest.read_text())["sha256"]
            verify_checksums(self.directory, expected, exclude=(MANIFEST,))
            return cls.load(self.directory)
        except Exception as error:  # a cache: anything unusable is refitted, never half-trusted
            reason = "no checksum manifest" if not manifest.exists() else f"{type(error).__name__}: {error}"
            warn(f"cached model {self.directory} is unusable ({reason}); refitting")
            shutil.rmtree(self.directory, ignore_errors=True)
            return None

    def save(self, method: Method) -> None:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.directory.parent, prefix=f".{self.directory.name}."))
        try:
            method.save(staging)
            checksums = tree_checksums(staging, exclude=(MANIFEST,))
            write_atomic(staging / MANIFEST, lambda path: path.write_text(json.dumps({"sha256": checksums})))
            shutil.rmtree(self.directory, ignore_errors=True)
            try:
                os.replace(staging, self.directory)
            except OSError:
                if not (self.directory / MANIFEST).exists():  # not cached meanwhile by another run
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
