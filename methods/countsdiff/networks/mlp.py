"""MLP backbone for small count vectors (SPEC section 6, toy: hidden 48, time embedding 64, SiLU)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from countsbench.methods.countsdiff.embeddings import ConditionEmbedding, TimeEmbedding


class MLPBackbone(nn.Module):
    """``f = MLP([h, time embedding, sum of condition embeddings])`` for (B, d) vectors."""

    def __init__(
        self, n_features: int, vocabulary_sizes: Sequence[int], hidden: int = 48, n_layers: int = 3, time_dim: int = 64
    ) -> None:
        super().__init__()
        self.time = TimeEmbedding(time_dim)
        self.conditions = ConditionEmbedding(vocabulary_sizes, time_dim)
        layers: list[nn.Module] = []
        width = n_features + time_dim
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, n_features))
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor, t: Tensor, codes: Tensor, keep: Tensor, valid: Tensor | None = None) -> Tensor:
        context = self.time(t) + self.conditions(codes, keep).sum(dim=1)
        return self.net(torch.cat([h, context], dim=1))
