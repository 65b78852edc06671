"""MLP backbone for small count vectors (SPEC section 6, toy: hidden 48, time embedding 64, SiLU)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from countsbench.methods.countsdiff.embeddings import ConditionEmbedding, TimeEmbedding


class MLPBackbone(nn.Module):
    """``f = MLP([h, time embedding, sum of condition embeddings])`` for (B, d) vectors."""

    def __init__(
        self,
        n_features: int,
        vocabulary_sizes: Sequence[int],
        hidden: int = 48,
        n_layers: int = 3,
        time_dim: int = 64,
        input_skip: bool = False,
    ) -> None:
        super().__init__()
        #: ``input_skip``: add ``w * h`` (w learned per feature, from 0) to the output, an identity path that a
        #: hidden layer narrower than the input cannot otherwise represent.
        self.skip = nn.Parameter(torch.zeros(n_features)) if input_skip else None
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
        out = self.net(torch.cat([h, context], dim=1))
        return out if self.skip is None else out + self.skip * h
