"""Image task loaders on tiny fake CIFAR-10 batches and CelebA JPEGs, and their missing-data errors."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from countsbench.metrics.images.inception import INCEPTION_ENV, inception_extractor
from countsbench.registry import REGISTRY
from countsbench.task import TaskDataMissing
from countsbench.tasks.images.celeba import load_face
from countsbench.tasks.images.cifar10 import DEFAULT_CLASSES, TEST_BATCH, TRAIN_BATCHES


class TupleInception(nn.Module):
    """A stand-in Inception with the generic convention: uint8 images -> (features, logits)."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.float().mean(dim=(2, 3))
        return torch.cat([x, x.square()], dim=1), x


class StyleGanInception(nn.Module):
    """A stand-in with StyleGAN2-ADA's convention: features, or class probabilities."""

    def forward(self, images: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = images.float().mean(dim=(2, 3))
        return x if return_features else torch.softmax(x, dim=1)


pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def script(module: nn.Module, path: Path) -> Path:
    torch.jit.script(module).save(str(path))
    return path


@pytest.fixture()
def inception(tmp_path, monkeypatch) -> Path:
    path = script(TupleInception(), tmp_path / "tuple_inception.pt")
    monkeypatch.setenv(INCEPTION_ENV, str(path))
    return path


def write_cifar(root: Path, per_batch: int = 40) -> np.ndarray:
    """Fake batches whose pixel (c, y, x) of image i encodes (i, c) so the layout can be checked."""
    directory = root / "cifar10" / "cifar-10-batches-py"
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    everything = []
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(k) for k in np.arange(per_batch) % 10]
        with open(directory / name, "wb") as handle:
            pickle.dump({b"data": data, b"labels": labels}, handle)
        everything.append(data)
    return np.concatenate(everything)


def test_cifar10_reads_python_batches(tmp_path, inception):
    pixels = write_cifar(tmp_path)
    data = REGISTRY.tasks.get("cifar10").factory().load(tmp_path)
    assert data.test.sample_shape == (3, 32, 32) and data.test.max_value == 255
    assert np.array_equal(data.test.dense(), pixels[-40:].astype(np.int64))  # test_batch, channel-major rows
    assert data.train.n_samples + data.valid.n_samples == 200
    assert data.test.vocabularies["label"] == DEFAULT_CLASSES  # no batches.meta: the standard names
    assert np.array_equal(data.test.conditions["label"], np.arange(40) % 10)


def test_cifar10_without_data_says_which_files(tmp_path, inception):
    with pytest.raises(TaskDataMissing, match=r"cifar-10-batches-py.*data_batch_1.*test_batch"):
        REGISTRY.tasks.get("cifar10").factory().load(tmp_path)


def test_cifar10_without_inception_says_how_to_supply_it(tmp_path, monkeypatch):
    write_cifar(tmp_path)
    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    with pytest.raises(TaskDataMissing, match="COUNTSBENCH_INCEPTION"):
        REGISTRY.tasks.get("cifar10").factory().load(tmp_path)


def write_celeba(root: Path) -> None:
    directory = root / "celeba"
    (directory / "img_align_celeba").mkdir(parents=True)
    names = [f"{k:06d}.jpg" for k in range(1, 7)]
    for k, name in enumerate(names):
        picture = np.zeros((218, 178, 3), dtype=np.uint8)
        picture[20:198] = 40 * k  # the centre 178x178 square is flat, the 20-pixel bands black
        Image.fromarray(picture).save(directory / "img_align_celeba" / name, quality=100)
    attributes = [f"A{j}" for j in range(40)]
    lines = [str(len(names)), " ".join(attributes)]
    for k, name in enumerate(names):
        lines.append(name + " " + " ".join("1" if (j + k) % 3 == 0 else "-1" for j in range(40)))
    (directory / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    partition = [f"{name} {0 if k < 3 else (1 if k == 3 else 2)}" for k, name in enumerate(names)]
    (directory / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")


def test_celeba_crops_resizes_and_reads_attributes(tmp_path, inception):
    write_celeba(tmp_path)
    data = REGISTRY.tasks.get("celeba").factory().load(tmp_path)
    assert (data.train.n_samples, data.valid.n_samples, data.test.n_samples) == (3, 1, 2)
    assert data.test.sample_shape == (3, 64, 64) and len(data.test.condition_keys) == 40
    images = data.train.dense().reshape(3, 3, 64, 64)
    for k in range(3):  # the crop removed the black bands: every pixel is the flat value (JPEG tolerance)
        assert np.abs(images[k] - 40 * k).max() <= 2
    assert data.train.conditions["A0"].tolist() == [1, 0, 0] and data.train.conditions["A2"].tolist() == [0, 1, 0]


def test_load_face_centre_crop_geometry(tmp_path):
    picture = np.zeros((218, 178, 3), dtype=np.uint8)
    picture[20:109] = 255  # top half of the centre square white, bottom half black
    Image.fromarray(picture).save(tmp_path / "face.png")
    face = load_face(tmp_path / "face.png")
    assert face.shape == (3, 64, 64)
    assert face[:, :30].min() >= 250 and face[:, 34:].max() <= 5


def test_celeba_without_data_says_which_files(tmp_path, inception):
    with pytest.raises(TaskDataMissing, match=r"img_align_celeba.*list_attr_celeba.txt.*list_eval_partition.txt"):
        REGISTRY.tasks.get("celeba").factory().load(tmp_path)


@pytest.mark.parametrize("module", [TupleInception(), StyleGanInception()], ids=["tuple", "stylegan"])
def test_inception_torchscript_conventions(tmp_path, module):
    path = script(module, tmp_path / "net.pt")
    extractor = inception_extractor({"inception_path": str(path), "max_value": 255})
    images = np.stack([np.full((3, 8, 8), v) for v in (0, 100, 255)])
    features, logits = extractor(images)
    assert features.shape[0] == 3 and logits.shape[0] == 3
    assert np.allclose(features[:, 0], [0, 100, 255])
    if isinstance(module, StyleGanInception):  # probabilities come back as log-probabilities
        assert np.allclose(np.exp(logits).sum(axis=1), 1.0)


def test_broken_inception_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not torchscript")
    with pytest.raises(TaskDataMissing, match="not a loadable TorchScript"):
        inception_extractor({"inception_path": str(bad)})
