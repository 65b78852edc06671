"""The `cifar10` task: CIFAR-10 from the user's data directory, read without torchvision.

Expects the standard python-pickle release (cifar-10-python.tar.gz, extracted) at
``<data_dir>/cifar10/cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5`` (50,000 training images)
and ``test_batch`` (10,000), each a pickle with ``data`` (n x 3072 uint8, channel-major 3 x 32 x 32) and
``labels``; ``batches.meta`` (optional) names the classes. A seeded stratified 1,000 of the training
images form the validation split; the test split (10,000) is generated and scored (FID-10k against the
test images; the paper's 50k-sample FID used the training set). FID and IS use a user-supplied
Inception TorchScript (`countsbench.metrics.images.inception`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from countsbench.data import encode_categories
from countsbench.registry import register_task
from countsbench.safe_io import UnsafeFileError, load_numpy_pickle
from countsbench.task import TaskData, TaskDataMissing
from countsbench.tasks.images.base import LABEL_KEY, ImageGenerationTask, labelled_images
from countsbench.tasks.splits import stratified_split

CIFAR_SHAPE = (3, 32, 32)
CIFAR_MAX = 255
TRAIN_BATCHES = tuple(f"data_batch_{k}" for k in range(1, 6))
TEST_BATCH = "test_batch"
DEFAULT_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
VALID_IMAGES = 1_000
SPLIT_SEED = 0


def cifar_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "cifar10" / "cifar-10-batches-py"


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3072) uint8 pixels and (n,) labels of one pickled batch, read by an unpickler that rebuilds
    numpy arrays and plain containers only (a crafted batch cannot run code)."""
    batch = _read_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise TaskDataMissing(f"{path} is not a CIFAR-10 python batch (no data and labels)")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != int(np.prod(CIFAR_SHAPE)) or len(labels) != len(data):
        raise TaskDataMissing(f"{path} is not a CIFAR-10 python batch (data of shape {data.shape})")
    return data, labels


def class_names(directory: Path) -> tuple[str, ...]:
    meta = directory / "batches.meta"
    if not meta.is_file():
        return DEFAULT_CLASSES
    names = _read_pickle(meta)[b"label_names"]
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _read_pickle(path: Path):
    try:
        with open(path, "rb") as handle:
            return load_numpy_pickle(handle, encoding="bytes")
    except UnsafeFileError as error:
        raise TaskDataMissing(f"{path}: {error}") from None


def require_files(data_dir: Path) -> list[Path]:
    directory = cifar_dir(data_dir)
    files = [directory / name for name in (*TRAIN_BATCHES, TEST_BATCH)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise TaskDataMissing(
            f"cifar10 needs the CIFAR-10 python batches in {directory}/ (missing: {', '.join(missing)}). "
            "Download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
            f"into {Path(data_dir) / 'cifar10'}/ (set the data directory with --data-dir or COUNTSBENCH_DATA)."
        )
    return files


class Cifar10Task(ImageGenerationTask):
    """Class-conditional generation of 32x32 RGB images (values 0..255)."""

    def dataset_id(self) -> str:
        return "cifar10"

    def load(self, data_dir: Path) -> TaskData:
        from countsbench.metrics.images.inception import inception_path

        files = require_files(data_dir)
        options = {"image_features": "inception", "default_inception_path": str(Path(data_dir) / "inception.pt")}
        inception_path(options)  # fail before any work when FID/IS could not be computed
        batches = [read_batch(path) for path in files]
        pixels = np.concatenate([b[0] for b in batches[:-1]])
        labels = np.concatenate([b[1] for b in batches[:-1]])
        vocabulary = class_names(cifar_dir(data_dir))
        (train_codes, test_codes), vocabulary = encode_categories(
            [[vocabulary[k] for k in labels], [vocabulary[k] for k in batches[-1][1]]], vocabulary
        )
        valid_share = min(VALID_IMAGES, len(labels) // 10) / len(labels)  # a tenth of smaller (test) data
        train_rows, valid_rows, _ = stratified_split(train_codes, (1 - valid_share, valid_share, 0.0), SPLIT_SEED)

        def split(values: np.ndarray, codes: np.ndarray):
            return labelled_images(values, {LABEL_KEY: codes}, {LABEL_KEY: vocabulary}, CIFAR_SHAPE, CIFAR_MAX)

        return TaskData(
            train=split(pixels[train_rows], train_codes[train_rows]),
            valid=split(pixels[valid_rows], train_codes[valid_rows]),
            test=split(batches[-1][0], test_codes),
            data_files=tuple(files),
            description={
                "dataset": "CIFAR-10 python batches",
                "split": f"training batches minus a stratified {VALID_IMAGES} (valid); test_batch scored",
                "split_seed": SPLIT_SEED,
                "split_stratified_by": LABEL_KEY,
            },
            metric_options=options,
        )

    def sample_dataset(self) -> TaskData:
        raise TaskDataMissing("cifar10 has no embedded sample; tests write fake batches (tests/test_images_data.py)")


@register_task(
    "cifar10",
    kind="generation",
    summary="CIFAR-10 32x32x3 (values 0..255), class-conditional; user data + Inception TorchScript.",
    paper="CountsDiff section 4.2 (CIFAR-10)",
)
def cifar10() -> Cifar10Task:
    return Cifar10Task()
