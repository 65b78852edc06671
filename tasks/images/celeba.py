"""The `celeba` task: CelebA aligned faces from the user's data directory, read with Pillow.

Expects ``<data_dir>/celeba/`` holding ``img_align_celeba/*.jpg`` (the aligned 178x218 JPEGs),
``list_attr_celeba.txt`` (40 binary attributes, -1/1) and ``list_eval_partition.txt`` (0 train,
1 valid, 2 test), as distributed by the CelebA authors. Each image is centre-cropped to 178x178 and
resized to 64x64 (Pillow, bilinear with antialiasing), as Blackout diffusion and the paper did; the 40
attributes are the conditions (one key each). The official partition gives the splits; the test split
(19,962 images) is generated and scored with a user-supplied Inception TorchScript.
Reading all 202,599 JPEGs takes minutes and about 2.5 GB of memory (uint8).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from countsbench.registry import register_task
from countsbench.task import TaskData, TaskDataMissing
from countsbench.tasks.images.base import ImageGenerationTask, labelled_images

CROP = 178
SIZE = 64
CELEBA_SHAPE = (3, SIZE, SIZE)
CELEBA_MAX = 255
ATTRIBUTE_VALUES = ("-1", "1")
PARTITIONS = {"train": 0, "valid": 1, "test": 2}


def celeba_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "celeba"


def require_files(data_dir: Path) -> tuple[Path, Path, Path]:
    directory = celeba_dir(data_dir)
    images, attributes, partition = (
        directory / "img_align_celeba",
        directory / "list_attr_celeba.txt",
        directory / "list_eval_partition.txt",
    )
    missing = [p.name for p in (attributes, partition) if not p.is_file()]
    if not images.is_dir():
        missing.insert(0, "img_align_celeba/")
    if missing:
        raise TaskDataMissing(
            f"celeba needs {directory}/img_align_celeba/*.jpg, {directory}/list_attr_celeba.txt and "
            f"{directory}/list_eval_partition.txt (missing: {', '.join(missing)}). Obtain them from the CelebA "
            "page (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html: img_align_celeba.zip and the Anno/Eval "
            "files); set the data directory with --data-dir or COUNTSBENCH_DATA."
        )
    return images, attributes, partition


def read_attributes(path: Path) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """(attribute names, file name -> (40,) array of -1/1)."""
    lines = path.read_text().splitlines()
    names = tuple(lines[1].split())
    table = {}
    for line in lines[2:]:
        parts = line.split()
        if parts:
            table[parts[0]] = np.array([int(v) for v in parts[1:]], dtype=np.int64)
            if len(parts) - 1 != len(names):
                raise TaskDataMissing(f"{path}: {parts[0]} has {len(parts) - 1} attributes, expected {len(names)}")
    return names, table


def read_partition(path: Path) -> dict[str, int]:
    return {parts[0]: int(parts[1]) for parts in (line.split() for line in path.read_text().splitlines()) if parts}


def load_face(path: Path) -> np.ndarray:
    """(3, 64, 64) uint8: centre crop to 178x178, then a bilinear (antialiased) resize to 64x64."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        left, top = (image.width - CROP) // 2, (image.height - CROP) // 2
        image = image.crop((left, top, left + CROP, top + CROP)).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


class CelebATask(ImageGenerationTask):
    """Generation of 64x64 faces conditioned on 40 binary attributes."""

    grid_key: ClassVar[str | None] = None

    def dataset_id(self) -> str:
        return "celeba"

    def load(self, data_dir: Path) -> TaskData:
        from countsbench.metrics.images.inception import inception_path

        image_dir, attribute_file, partition_file = require_files(data_dir)
        options = {"image_features": "inception", "default_inception_path": str(Path(data_dir) / "inception.pt")}
        inception_path(options)  # fail before any work when FID/IS could not be computed
        names, attributes = read_attributes(attribute_file)
        partition = read_partition(partition_file)
        vocabularies = {name: ATTRIBUTE_VALUES for name in names}
        splits = {}
        for split, code in PARTITIONS.items():
            files = sorted(f for f, p in partition.items() if p == code)
            missing = [f for f in files if f not in attributes or not (image_dir / f).is_file()]
            if missing:
                example = missing[0]
                raise TaskDataMissing(f"celeba: {len(missing)} {split} images lack a JPEG or attributes ({example})")
            pixels = np.stack([load_face(image_dir / f).reshape(-1) for f in files])
            values = np.stack([attributes[f] for f in files]) if files else np.zeros((0, len(names)), np.int64)
            conditions = {name: (values[:, j] > 0).astype(np.int64) for j, name in enumerate(names)}
            splits[split] = labelled_images(pixels, conditions, vocabularies, CELEBA_SHAPE, CELEBA_MAX)
        return TaskData(
            **splits,
            data_files=(attribute_file, partition_file),
            description={
                "dataset": "CelebA aligned, centre crop 178, resized to 64 (Pillow bilinear)",
                "split": "official list_eval_partition.txt",
            },
            metric_options=options,
        )

    def sample_dataset(self) -> TaskData:
        raise TaskDataMissing("celeba has no embedded sample; tests write fake JPEGs (tests/test_images_data.py)")


@register_task(
    "celeba",
    kind="generation",
    summary="CelebA 64x64x3 (values 0..255), conditioned on 40 attributes; user data + Inception TorchScript.",
    paper="CountsDiff section 4.2 and appendix E.3 (CelebA)",
)
def celeba() -> CelebATask:
    return CelebATask()
