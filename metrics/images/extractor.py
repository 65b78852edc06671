"""The pluggable image feature extractor behind FID, IS and class accuracy (SPEC section 8, images).

An extractor maps integer images in the data's range to (features, logits): penultimate features for
FID, class logits for IS and, when its classes are the task's labels, class accuracy. Which one a task
uses is named by its ``metric_options["image_features"]``:
- ``digits_classifier``: a small CNN trained once on the task's training split
  (`countsbench.metrics.images.digits_classifier`);
- ``inception``: an Inception network from a user-supplied TorchScript file
  (`countsbench.metrics.images.inception`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from countsbench.config import ConfigError
from countsbench.evaluation import Evaluation

#: Images are pushed through an extractor in batches of this many.
BATCH = 256


@dataclass
class FeatureExtractor:
    """``network(images float (B, C, H, W) in [0, max_value]) -> (features (B, d), logits (B, k))``.

    ``identity``: what makes two extractors the same (cache key of real-image features);
    ``label_key``: the condition whose classes the logits index, or None (Inception's ImageNet classes).
    """

    network: nn.Module
    identity: Mapping[str, Any]
    label_key: str | None = None
    preprocess: Any = field(default=None, repr=False)

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features, logits) as float64 arrays for (n, C, H, W) integer images."""
        self.network.eval()
        features, logits = [], []
        for start in range(0, len(images), BATCH):
            batch = torch.as_tensor(np.asarray(images[start : start + BATCH], dtype=np.float32))
            if self.preprocess is not None:
                batch = self.preprocess(batch)
            f, z = self.network(batch)
            features.append(f.double().numpy())
            logits.append(z.double().numpy())
        return np.concatenate(features), np.concatenate(logits)


def extractor_for(ev: Evaluation) -> FeatureExtractor:
    """The task's extractor (built or loaded once per evaluation)."""
    name = ev.options.get("image_features")
    root = ev.root()
    if name == "digits_classifier":
        from countsbench.metrics.images.digits_classifier import digits_extractor

        return root.cached("image_extractor", lambda: digits_extractor(ev))
    if name == "inception":
        from countsbench.metrics.images.inception import inception_extractor

        return root.cached("image_extractor", lambda: inception_extractor(ev.options))
    raise ConfigError(
        f"image metrics need the task's metric option image_features (digits_classifier or inception), got {name!r}"
    )
