"""A small CNN digit classifier: the feature extractor of the `digits` task's FID, IS and class accuracy.

Inception cannot be downloaded here and would see 8x8 digits as noise, so the digits task is scored by a
classifier trained on its own TRAINING split (SPEC section 8, images): three 3x3 convolutions, a
64-unit penultimate layer (FID features) and 10 logits (IS and class accuracy). Training is seeded and
single-threaded (bit-for-bit reproducible), takes seconds, and the model is cached once per task under
``<results>/cache/digits_classifier/`` through `countsbench.metrics.model_cache`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from countsbench.data import CountData
from countsbench.evaluation import Evaluation
from countsbench.metrics.images.extractor import FeatureExtractor
from countsbench.metrics.model_cache import cached_model, model_key

MODEL_FILE = "digits_classifier.pt"


@dataclass(frozen=True)
class ClassifierSettings:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    feature_dim: int = 64
    seed: int = 0


class DigitsCNN(nn.Module):
    """``forward(images (B, 1, H, W) counts) -> (penultimate features (B, feature_dim), logits (B, k))``."""

    def __init__(self, n_classes: int, max_value: int, in_channels: int = 1, feature_dim: int = 64) -> None:
        super().__init__()
        self.max_value = float(max_value)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(256, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, n_classes)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body(images.float() / self.max_value)
        return features, self.head(features)


def train_classifier(data: CountData, label_key: str, settings: ClassifierSettings = ClassifierSettings()) -> DigitsCNN:
    """Fit the CNN on ``data`` (the training split) to predict ``label_key``; seeded and deterministic."""
    if data.max_value is None or len(data.sample_shape) != 3:
        raise ValueError("the digits classifier needs (C, H, W) images with a known max_value")
    images = torch.as_tensor(data.dense().reshape(-1, *data.sample_shape), dtype=torch.float32)
    labels = torch.as_tensor(data.conditions[label_key])
    n_classes = len(data.vocabularies[label_key])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same weights on every machine with this torch build
    try:
        generator = torch.Generator().manual_seed(settings.seed)
        with torch.random.fork_rng():
            torch.manual_seed(settings.seed)
            model = DigitsCNN(n_classes, data.max_value, data.sample_shape[0], settings.feature_dim)
        optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.epochs)
        model.train()
        for _ in range(settings.epochs):
            order = torch.randperm(len(images), generator=generator)
            for start in range(0, len(images), settings.batch_size):
                rows = order[start : start + settings.batch_size]
                _, logits = model(images[rows])
                loss = nn.functional.cross_entropy(logits, labels[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            schedule.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def accuracy(model: DigitsCNN, data: CountData, label_key: str) -> float:
    """Share of ``data``'s images the classifier assigns to their own label."""
    with torch.no_grad():
        images = torch.as_tensor(data.dense().reshape(-1, *data.sample_shape), dtype=torch.float32)
        predicted = model(images)[1].argmax(dim=1).numpy()
    return float(np.mean(predicted == data.conditions[label_key]))


def digits_extractor(ev: Evaluation, settings: ClassifierSettings = ClassifierSettings()) -> FeatureExtractor:
    """The classifier of ``ev``'s training split (cached), as a feature extractor."""
    root = ev.root()
    label_key, _ = root.labels(root.train)
    train = root.train

    def fit(directory: Path) -> None:
        model = train_classifier(train, label_key, settings)
        n_classes = len(train.vocabularies[label_key])
        torch.save({"state": model.state_dict(), "n_classes": n_classes}, directory / MODEL_FILE)

    def load(directory: Path) -> DigitsCNN:
        stored = torch.load(Path(directory) / MODEL_FILE, map_location="cpu")
        model = DigitsCNN(stored["n_classes"], train.max_value, train.sample_shape[0], settings.feature_dim)
        model.load_state_dict(stored["state"])
        return model.eval()

    model = cached_model(ev, "digits_classifier", asdict(settings), fit, load)
    identity = {"kind": "digits_classifier", "settings": asdict(settings), "key": model_key(ev, asdict(settings))}
    return FeatureExtractor(model, identity, label_key=label_key)
