"""The denoiser: input encoding, a backbone, and ``r = softplus(f)`` (SPEC section 3)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from countsbench.data import CountData
from methods.countsdiff.networks import NetworkConfig, build_backbone
from methods.naive import valid_gene_means


class Denoiser(nn.Module):
    """Predicts the remaining births ``r ~ E[x0 - x_t | x_t]`` on flat (B, d) rows.

    Inputs are ``ln(1 + x_t)`` for vectors, and ``(x_t - alpha c / 2) / c`` for images with maximum ``c``.
    Softplus is applied exactly once, here (SPEC section 9, bug 1). ``output_scale`` (a fixed per-feature
    buffer, ones by default) multiplies the backbone's output before the softplus, so a small network need
    not grow large weights to predict large counts (an option, see `feature_scales`).
    """

    def __init__(self, config: NetworkConfig, max_value: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.image_scale = float(max_value) if config.kind == "unet" and max_value else None
        self.backbone = build_backbone(config)
        self.register_buffer("output_scale", torch.ones(config.n_features))

    def encode(self, x_t: Tensor, alpha_t: Tensor) -> Tensor:
        if self.image_scale is None:
            return x_t.log1p()
        return (x_t - alpha_t[:, None] * self.image_scale / 2) / self.image_scale

    def forward(
        self, x_t: Tensor, t: Tensor, alpha_t: Tensor, codes: Tensor, keep: Tensor, valid: Tensor | None = None
    ) -> Tensor:
        f = self.backbone(self.encode(x_t.float(), alpha_t.float()), t.float(), codes, keep, valid)
        return F.softplus(f.float() * self.output_scale)


def feature_scales(data: CountData) -> torch.Tensor:
    """Per-feature mean of the valid training counts, at least 1 (the ``output_scale`` option).
    Streamed in row blocks: an atlas is never densified whole."""
    return torch.as_tensor(np.maximum(valid_gene_means(data), 1.0), dtype=torch.float32)
