"""Inception features for CIFAR-10 and CelebA from a user-supplied TorchScript file (SPEC section 8).

No weights may be downloaded at run time, so the network is a TorchScript file the user provides, found
at the metric option ``inception_path``, else the environment variable ``COUNTSBENCH_INCEPTION``, else
``<data dir>/inception.pt`` (the image tasks put that default into their metric options). Two calling
conventions are accepted, both given uint8 images (B, 3, H, W) in [0, 255] at the data's resolution
(the network resizes them itself, as torchmetrics' and torch-fidelity's Inception do):
- ``forward(images, return_features: bool)``: StyleGAN2-ADA's ``inception-2015-12-05.pt`` (the TF FID
  Inception as TorchScript): 2048 pool features with ``True``, class probabilities with ``False``;
- ``forward(images) -> (features, logits)``: any other network.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from countsbench.metrics.images.extractor import FeatureExtractor
from countsbench.safe_io import sha256_file
from countsbench.task import TaskDataMissing

INCEPTION_ENV = "COUNTSBENCH_INCEPTION"
HOW_TO_OBTAIN = (
    "Supply an Inception network as a TorchScript file, e.g. StyleGAN2-ADA's inception-2015-12-05.pt "
    "(https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pkl, "
    "a TorchScript archive despite its name), and point COUNTSBENCH_INCEPTION at it or save it as "
    "<data dir>/inception.pt"
)


def inception_path(options: Mapping[str, Any]) -> Path:
    """The TorchScript file to use, or `TaskDataMissing` saying how to supply one."""
    candidates = [options.get("inception_path"), os.environ.get(INCEPTION_ENV), options.get("default_inception_path")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    tried = ", ".join(str(c) for c in candidates if c) or "nothing"
    raise TaskDataMissing(f"FID/IS on this task need an Inception network (tried {tried}). {HOW_TO_OBTAIN}.")


class ScriptedInception(nn.Module):
    """Adapts either calling convention to ``forward(images) -> (features, logits)``."""

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.scripted = scripted
        names = [argument.name for argument in scripted.forward.schema.arguments]
        self.stylegan = "return_features" in names

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if self.stylegan:
            features = self.scripted(images, return_features=True)
            probabilities = self.scripted(images, return_features=False)
            return features, torch.log(probabilities.clamp_min(1e-12))
        features, logits = self.scripted(images)
        return features, logits


def inception_extractor(options: Mapping[str, Any]) -> FeatureExtractor:
    """The TorchScript Inception, fed uint8 RGB images (grey images repeated over 3 channels)."""
    path = inception_path(options)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit.load, still supported
            scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise TaskDataMissing(f"{path} is not a loadable TorchScript file ({error}). {HOW_TO_OBTAIN}.") from error
    max_value = float(options.get("max_value", 255))

    def to_uint8(images: Tensor) -> Tensor:
        images = torch.round(images * (255.0 / max_value)).clamp(0, 255).to(torch.uint8)
        return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images

    identity = {"kind": "inception", "sha256": sha256_file(path)}
    return FeatureExtractor(ScriptedInception(scripted).eval(), identity, label_key=None, preprocess=to_uint8)
