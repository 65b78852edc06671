"""PNG grids of generated images, one row per class, beside real images of the same class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from countsbench.data import CountData

#: Images per class row, and the most rows of a plain (class-free) grid.
GRID_COLUMNS = 10
PLAIN_ROWS = 8
#: Small images (8x8 digits) are enlarged to at least this many pixels per side.
MIN_TILE = 32


def to_uint8(images: np.ndarray, max_value: int) -> np.ndarray:
    """(n, C, H, W) counts in [0, max_value] -> (n, H, W, C) uint8 in [0, 255]."""
    scaled = np.clip(images, 0, max_value).astype(np.float64) * (255.0 / max_value)
    return np.round(scaled).astype(np.uint8).transpose(0, 2, 3, 1)


def tile(images: np.ndarray, rows: list[np.ndarray], columns: int) -> np.ndarray:
    """A (rows x columns) mosaic of (H, W, C) uint8 images with a 1-pixel gap (missing tiles grey)."""
    _, h, w, c = images.shape
    mosaic = np.full((len(rows) * (h + 1) + 1, columns * (w + 1) + 1, c), 128, dtype=np.uint8)
    for r, indices in enumerate(rows):
        for k, index in enumerate(indices[:columns]):
            mosaic[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + k * (w + 1) : 1 + k * (w + 1) + w] = images[index]
    return mosaic


def grid_rows(truth: CountData, n: int, key: str | None) -> tuple[list[np.ndarray], list[str]]:
    """Row indices per class of ``key`` (the conditions each sample was asked for), or plain rows."""
    if key is None or key not in truth.conditions:
        count = min(n, GRID_COLUMNS * PLAIN_ROWS)
        return [np.arange(s, min(s + GRID_COLUMNS, count)) for s in range(0, count, GRID_COLUMNS)], []
    codes = np.asarray(truth.conditions[key])[:n]
    labels = truth.vocabularies[key]
    return [np.flatnonzero(codes == code) for code in range(len(labels))], list(labels)


def save_sample_grid(truth: CountData, generated: np.ndarray, path: Path, key: str | None = "label") -> Path:
    """Left: generated samples of each class (as asked for); right: real test images of that class."""
    from PIL import Image

    shape = truth.sample_shape
    max_value = truth.max_value or max(int(generated.max(initial=1)), 1)
    fake = to_uint8(np.asarray(generated).reshape(-1, *shape), max_value)
    real = to_uint8(truth.dense().reshape(-1, *shape), max_value)
    rows, _ = grid_rows(truth, len(fake), key)
    gap = np.full((len(rows) * (shape[1] + 1) + 1, shape[2], fake.shape[-1]), 255, dtype=np.uint8)
    mosaic = np.concatenate([tile(fake, rows, GRID_COLUMNS), gap, tile(real, rows, GRID_COLUMNS)], axis=1)
    scale = max(1, -(-MIN_TILE // shape[1]))
    picture = Image.fromarray(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic)
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path
