"""The embedded image task `digits`: scikit-learn's bundled 8x8 handwritten digits (DESIGN.md).

1,797 images, pixel values 0..16 (counts), 10 classes. Split 70/10/20 stratified by class with a fixed
seed (1,257 / 180 / 360 images); generation is conditioned on the class (condition key ``label``). The
metrics use a small CNN classifier trained once on the training split (`countsbench.metrics.images.digits_classifier`)
in place of Inception.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from countsbench.data import encode_categories
from countsbench.registry import register_task
from countsbench.task import TaskData
from countsbench.tasks.images.base import IMAGE_METRICS, LABEL_KEY, ImageGenerationTask, labelled_images
from countsbench.tasks.splits import stratified_split

DIGITS_SHAPE = (1, 8, 8)
DIGITS_MAX = 16
DIGITS_FRACTIONS = (0.7, 0.1, 0.2)
DIGITS_SPLIT_SEED = 0
CLASS_NAMES = tuple(str(k) for k in range(10))


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 64) int64 pixel counts and (1797,) int labels from scikit-learn's bundled copy."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.round(bunch.data).astype(np.int64), bunch.target.astype(np.int64)


class DigitsTask(ImageGenerationTask):
    """Class-conditional generation of 8x8 digits; FID, IS and class accuracy from a digits CNN."""

    default_metrics: ClassVar[tuple[str, ...]] = (*IMAGE_METRICS, "class_accuracy")
    headline_metrics: ClassVar[tuple[str, ...]] = default_metrics

    def __init__(self, rows: int | None = None) -> None:
        self.rows = rows  # a stratified subset (tests); None = all 1,797 images

    def dataset_id(self) -> str:
        return "digits" if self.rows is None else f"digits_{self.rows}"

    def load(self, data_dir: Path | None = None) -> TaskData:
        pixels, labels = read_digits()
        if self.rows is not None:
            keep, _, _ = stratified_split(labels, (self.rows / len(labels), 0.0, 1 - self.rows / len(labels)), seed=1)
            pixels, labels = pixels[keep], labels[keep]
        (codes,), vocabulary = encode_categories([labels], CLASS_NAMES)
        splits = stratified_split(codes, DIGITS_FRACTIONS, DIGITS_SPLIT_SEED)
        train, valid, test = (
            labelled_images(pixels[rows], {LABEL_KEY: codes[rows]}, {LABEL_KEY: vocabulary}, DIGITS_SHAPE, DIGITS_MAX)
            for rows in splits
        )
        return TaskData(
            train=train,
            valid=valid,
            test=test,
            description={
                "dataset": "sklearn load_digits" + ("" if self.rows is None else f" (stratified {self.rows})"),
                "split": "70/10/20 stratified by label",
                "split_seed": DIGITS_SPLIT_SEED,
                "split_stratified_by": LABEL_KEY,
            },
            metric_options={"image_features": "digits_classifier"},
        )

    def sample_dataset(self) -> TaskData:
        """300 images (a stratified subset): 210 / 30 / 60."""
        return DigitsTask(rows=300).load()


@register_task(
    "digits",
    kind="generation",
    summary="8x8 digits (values 0..16), class-conditional; FID/IS/class accuracy from a digits CNN.",
    paper="CountsDiff section 4.2 (image generation), on the embedded scikit-learn digits",
)
def digits() -> DigitsTask:
    return DigitsTask()
