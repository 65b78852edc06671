"""Models that metrics train once per task (scVI for scFID, XGBoost for the downstream classifier).

A model is identified by what it was trained on (a fingerprint of the task's training split and the
label key) plus its settings, and cached under ``<results>/cache/<kind>/<key>/`` so that every
method and seed of a task, and tasks sharing a training split (pbmc_mcar, pbmc_mnar), are scored by
the same model. Without a cache directory a model lives only as long as its `Evaluation`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from countsbench.evaluation import Evaluation
from countsbench.runner import data_fingerprint, digest

COMPLETE = "complete"


def model_key(ev: Evaluation, settings: Mapping[str, Any]) -> str:
    """Digest of the training split, the label key and the model's settings."""
    root = ev.root()
    train = root.cached("train_fingerprint", lambda: data_fingerprint(root.train))
    return digest({"train": train, "label_key": root.label_key, "settings": dict(settings)})[:16]


def cached_model(
    ev: Evaluation,
    kind: str,
    settings: Mapping[str, Any],
    train: Callable[[Path], None],
    load: Callable[[Path], Any],
) -> Any:
    """The model for this task: loaded from the cache, or trained by ``train(directory)`` (which
    saves it there) and then loaded. Kept on the root evaluation so resamples share it."""
    root = ev.root()
    key = model_key(ev, settings)

    def build() -> Any:
        if root.cache_dir is None:
            with tempfile.TemporaryDirectory(prefix=f"countsbench-{kind}-") as scratch:
                train(Path(scratch))
                return load(Path(scratch))
        target = Path(root.cache_dir) / kind / key
        if not (target / COMPLETE).exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{key}."))
            try:
                train(scratch)
                (scratch / COMPLETE).touch()
                shutil.rmtree(target, ignore_errors=True)
                scratch.rename(target)  # another process may have finished first: both are identical
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return load(target)

    return root.cached(f"model:{kind}:{key}", build)
