"""`ImageGenerationTask`: class-conditional generation of count-valued images (paper section 4.2).

Images are rows of a `CountData` with ``sample_shape = (C, H, W)`` and a known ``max_value`` (16 for
digits, 255 for CIFAR-10 and CelebA), so CountsDiff picks its U-Net. The runner generates one sample
per row of the scored split, asking for that row's conditions; the metrics compare the samples with
that split (FID, IS) and with the conditions asked for (class accuracy).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from countsbench.data import CountData
from countsbench.task import Task

IMAGE_METRICS = ("fid", "inception_score")
LABEL_KEY = "label"


def labelled_images(
    pixels: np.ndarray, labels: dict[str, np.ndarray], vocabularies: dict[str, tuple[str, ...]], shape, max_value: int
) -> CountData:
    """A `CountData` of flattened images with their condition codes."""
    names = tuple(f"c{c}_y{y}_x{x}" for c in range(shape[0]) for y in range(shape[1]) for x in range(shape[2]))
    return CountData(
        pixels,
        conditions=labels,
        vocabularies=vocabularies,
        feature_names=names,
        sample_shape=tuple(shape),
        max_value=max_value,
    )


class ImageGenerationTask(Task):
    """Base of the image tasks; subclasses implement `load` and `sample_dataset`.

    ``grid_key``: the condition whose classes are the rows of the sample grid (None: one plain grid).
    """

    kind: ClassVar[str] = "generation"
    default_metrics: ClassVar[tuple[str, ...]] = IMAGE_METRICS
    headline_metrics: ClassVar[tuple[str, ...]] = IMAGE_METRICS
    grid_key: ClassVar[str | None] = "label"

    def write_artifacts(self, truth: CountData, prediction: np.ndarray, output_dir: Path) -> list[Path]:
        """``samples_by_class.png``: generated samples, one row per class, beside real test images."""
        from countsbench.tasks.images.grid import save_sample_grid

        path = Path(output_dir) / "samples_by_class.png"
        return [save_sample_grid(truth, np.asarray(prediction), path, self.grid_key)]
