"""The denoiser: input encoding, a backbone, and the rate head ``r`` (SPEC section 3).

Rate heads (``rate_head``):
- ``scaled`` (default): ``r = (1 - alpha_t) softplus(f)``. The truth ``E[x0 - x_t | x_t]`` vanishes as
  ``alpha_t -> 1`` (about ``x0 (1 - alpha_t)``), and this head vanishes with it by construction; the
  network learns the births per unit of removed survival probability, which stays O(1) over all t. The
  loss keeps its minimiser: for every t > 0 the factor is a positive constant, so any non-negative
  ``E[x0 - x_t | x_t]`` is still representable and the pointwise minimiser of the Poisson loss is unchanged.
- ``direct``: the paper's ``r = softplus(f)`` (kept for ablation). A softplus never reaches 0 and the loss
  weight w(t) -> 0 near t = 0, so nothing trains the rate to vanish there; summed over a grid's many
  low-noise steps, that floor becomes spurious births, more with every added step (docs/diffusion.md).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from countsbench.data import CountData
from countsbench.methods.countsdiff.networks import NetworkConfig, build_backbone
from countsbench.methods.naive import valid_gene_means

RateHead = Literal["scaled", "direct"]
RATE_HEADS = ("scaled", "direct")


def removed_survival(alpha_t: Tensor) -> Tensor:
    """``1 - alpha_t`` computed in float64, returned as float32 (float32 ``alpha`` near 1 quantises it
    at 6e-8, the size of the whole quantity on the ``fi_discrete`` grid's first steps)."""
    return (1.0 - alpha_t.double()).float()


class Denoiser(nn.Module):
    """Predicts the remaining births ``r ~ E[x0 - x_t | x_t]`` on flat (B, d) rows.

    Inputs are ``ln(1 + x_t)`` for vectors, and ``(x_t - alpha c / 2) / c`` for images with maximum ``c``.
    Softplus is applied exactly once, here (SPEC section 9, bug 1). ``output_scale`` (a fixed per-feature
    buffer, ones by default) multiplies the backbone's output before the softplus, so a small network need
    not grow large weights to predict large counts (an option, see `feature_scales`). Pass ``alpha_t`` in
    float64 so that ``1 - alpha_t`` keeps its precision (`removed_survival`).
    """

    def __init__(self, config: NetworkConfig, max_value: int | None = None, rate_head: RateHead = "scaled") -> None:
        super().__init__()
        if rate_head not in RATE_HEADS:
            raise ValueError(f"unknown rate head {rate_head!r}; choose one of {', '.join(RATE_HEADS)}")
        self.config, self.rate_head = config, rate_head
        self.image_scale = float(max_value) if config.kind == "unet" and max_value else None
        self.backbone = build_backbone(config)
        self.register_buffer("output_scale", torch.ones(config.n_features))

    def encode(self, x_t: Tensor, alpha_t: Tensor) -> Tensor:
        if self.image_scale is None:
            return x_t.log1p()
        return (x_t - alpha_t[:, None] * self.image_scale / 2) / self.image_scale

    def rate_scale(self, alpha_t: Tensor) -> Tensor:
        """(B, 1) factor between the head's output and ``r``: ``1 - alpha_t`` (scaled) or 1 (direct)."""
        if self.rate_head == "direct":
            return torch.ones(alpha_t.shape[0], 1, device=alpha_t.device)
        return removed_survival(alpha_t)[:, None]

    def unit_rates(
        self, x_t: Tensor, t: Tensor, alpha_t: Tensor, codes: Tensor, keep: Tensor, valid: Tensor | None = None
    ) -> Tensor:
        """``softplus(f)``, the rate before `rate_scale` (guidance interpolates these, SPEC section 4)."""
        f = self.backbone(self.encode(x_t.float(), alpha_t.float()), t.float(), codes, keep, valid)
        return F.softplus(f.float() * self.output_scale)

    def forward(
        self, x_t: Tensor, t: Tensor, alpha_t: Tensor, codes: Tensor, keep: Tensor, valid: Tensor | None = None
    ) -> Tensor:
        return self.rate_scale(alpha_t) * self.unit_rates(x_t, t, alpha_t, codes, keep, valid)


def feature_scales(data: CountData) -> torch.Tensor:
    """Per-feature mean of the valid training counts, at least 1 (the ``output_scale`` option).
    Streamed in row blocks: an atlas is never densified whole."""
    return torch.as_tensor(np.maximum(valid_gene_means(data), 1.0), dtype=torch.float32)
