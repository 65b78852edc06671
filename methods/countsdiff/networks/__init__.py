"""Backbones (MLP, gene transformer, U-Net) and the choice among them by data shape (SPEC section 6).

Every backbone maps ``(h, t, codes, keep, valid) -> f`` on flat (B, d) rows, so the diffusion code does
not know which one it drives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

NetworkKind = Literal["mlp", "transformer", "unet"]
#: Vectors with more features than this get the gene transformer, smaller ones the MLP.
MLP_MAX_FEATURES = 64


def choose_network(sample_shape: tuple[int, ...]) -> NetworkKind:
    """U-Net for (C, H, W) images, gene transformer for long vectors (scRNA), MLP for small vectors."""
    if len(sample_shape) == 3:
        return "unet"
    n_features = 1
    for size in sample_shape:
        n_features *= size
    return "transformer" if n_features > MLP_MAX_FEATURES else "mlp"


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild a backbone (saved with a fitted model)."""

    kind: NetworkKind
    sample_shape: tuple[int, ...]
    vocabulary_sizes: tuple[int, ...]
    mlp_hidden: int = 48
    mlp_layers: int = 3
    time_dim: int = 64
    dim: int = 64
    n_heads: int = 4
    n_layers: int = 3
    ff_mult: int = 4
    dropout: float = 0.1
    attention_dropout: float = 0.1
    pack: bool = True
    unet_channels: tuple[int, ...] = (128, 256, 256, 256)
    unet_layers_per_block: int = 2
    unet_attention_resolutions: tuple[int, ...] = (16,)

    @property
    def n_features(self) -> int:
        n = 1
        for size in self.sample_shape:
            n *= size
        return n


def build_backbone(config: NetworkConfig) -> nn.Module:
    if config.kind == "mlp":
        from countsbench.methods.countsdiff.networks.mlp import MLPBackbone

        return MLPBackbone(
            config.n_features, config.vocabulary_sizes, config.mlp_hidden, config.mlp_layers, config.time_dim
        )
    if config.kind == "transformer":
        from countsbench.methods.countsdiff.networks.transformer import GeneTransformer

        return GeneTransformer(
            config.n_features,
            config.vocabulary_sizes,
            config.dim,
            config.n_heads,
            config.n_layers,
            config.ff_mult,
            config.dropout,
            config.attention_dropout,
            config.pack,
        )
    if config.kind == "unet":
        if len(config.sample_shape) != 3:
            raise ValueError(f"the U-Net needs (C, H, W) samples, got shape {config.sample_shape}")
        from countsbench.methods.countsdiff.networks.unet import UNetBackbone

        return UNetBackbone(
            config.sample_shape,
            config.vocabulary_sizes,
            config.unet_channels,
            config.unet_layers_per_block,
            config.unet_attention_resolutions,
            config.dropout,
        )
    raise ValueError(f"unknown network {config.kind!r}; choose mlp, transformer or unet")
