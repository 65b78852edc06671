"""Features of the real and generated images, computed once per evaluation (real ones cached on disk).

Samples are scored as integers in the data's range: generated rows are clipped to
``[0, max_value]`` (the declared maximum of the task, 16 or 255) and reshaped to (C, H, W).
Real-image features depend only on the scored split and the extractor, so they are cached under
``<results>/cache/image_features/<key>.npz`` and shared by every method and seed of a task.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from countsbench.data import CountData
from countsbench.evaluation import Evaluation
from countsbench.metrics.images.extractor import FeatureExtractor, extractor_for
from countsbench.runner import data_fingerprint, digest


def as_images(rows: np.ndarray, data: CountData) -> np.ndarray:
    """(n, C, H, W) int64 images from flat rows, clipped to the data's range."""
    if len(data.sample_shape) != 3:
        raise ValueError(f"image metrics need (C, H, W) samples, got sample shape {data.sample_shape}")
    images = np.asarray(rows).reshape(-1, *data.sample_shape)
    upper = data.max_value if data.max_value is not None else None
    return np.clip(np.round(images), 0, upper).astype(np.int64)


def _cache_path(ev: Evaluation, extractor: FeatureExtractor) -> Path | None:
    root = ev.root()
    if root.cache_dir is None:
        return None
    truth = root.cached("truth_fingerprint", lambda: data_fingerprint(root.truth))
    key = digest({"truth": truth, "extractor": dict(extractor.identity)})[:16]
    return Path(root.cache_dir) / "image_features" / f"{key}.npz"


def real_features(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """(features, logits) of the scored split's real images."""
    extractor = extractor_for(ev)

    def compute() -> tuple[np.ndarray, np.ndarray]:
        path = _cache_path(ev, extractor)
        if path is not None and path.exists():
            with np.load(path) as stored:
                return stored["features"], stored["logits"]
        features, logits = extractor(as_images(ev.truth.dense(), ev.truth))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            scratch = path.with_suffix(f".{np.random.default_rng().integers(2**32)}.tmp.npz")
            np.savez(scratch, features=features, logits=logits)
            scratch.replace(path)  # atomic: concurrent writers store identical values
        return features, logits

    return ev.cached("image_features:real", compute)


def generated_features(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """(features, logits) of the generated images."""
    extractor = extractor_for(ev)
    return ev.cached("image_features:generated", lambda: extractor(as_images(ev.predicted(), ev.truth)))
