"""Image U-Net: diffusers' ``UNet2DModel``, class-conditional (SPEC section 6; imported lazily).

The condition embedding (summed over keys, zeros for the null condition) is added to the time embedding
through ``class_embed_type="identity"``; the time input is ``1000 t``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from countsbench.methods.countsdiff.embeddings import ConditionEmbedding


class UNetBackbone(nn.Module):
    """``forward(h (B, C*H*W), t, codes, keep, valid) -> f (B, C*H*W)`` around a diffusers U-Net."""

    def __init__(
        self,
        sample_shape: Sequence[int],
        vocabulary_sizes: Sequence[int],
        channels: Sequence[int] = (128, 256, 256, 256),
        layers_per_block: int = 2,
        attention_resolutions: Sequence[int] = (16,),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        try:
            from diffusers import UNet2DModel
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("the image U-Net needs the 'diffusers' package: pip install diffusers") from error
        self.sample_shape = tuple(sample_shape)
        n_channels, height, _ = self.sample_shape
        resolutions = [height // 2**i for i in range(len(channels))]
        attention = [res in tuple(attention_resolutions) for res in resolutions]
        groups = min(32, math.gcd(*channels))
        self.unet = UNet2DModel(
            sample_size=height,
            in_channels=n_channels,
            out_channels=n_channels,
            block_out_channels=tuple(channels),
            layers_per_block=layers_per_block,
            down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
            up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
            dropout=dropout,
            norm_num_groups=groups,
            class_embed_type="identity" if vocabulary_sizes else None,
        )
        time_dim = channels[0] * 4
        self.conditions = ConditionEmbedding(vocabulary_sizes, time_dim) if vocabulary_sizes else None

    def forward(self, h: Tensor, t: Tensor, codes: Tensor, keep: Tensor, valid: Tensor | None = None) -> Tensor:
        image = h.view(h.shape[0], *self.sample_shape)
        class_embedding = None if self.conditions is None else self.conditions(codes, keep).sum(dim=1)
        out = self.unet(image, 1000 * t.float(), class_labels=class_embedding).sample
        return out.reshape(h.shape[0], -1)
