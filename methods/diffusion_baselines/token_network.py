"""The masked-diffusion MLP over count tokens (paper appendix D.1): tokens in, per-dimension class logits out.

Its output layer has ``d * C`` units with one class set shared by all features (C classes; fewer with
per-feature classes, `count_classes`), so its hidden width is smaller than CountsDiff's to match
parameter counts, as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from countsbench.methods.countsdiff.embeddings import ConditionEmbedding, TimeEmbedding


class TokenMLP(nn.Module):
    """``logits (B, n_outputs) = MLP([token embeddings (B, d * e), time + condition embedding])``, flat as
    `CountClasses` lays them out (``n_outputs = d * C`` for shared classes).

    Token ids are ``0..C-1`` (counts, C = the largest training count + 1) and ``C`` (the mask token).
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        vocabulary_sizes: Sequence[int],
        hidden: int = 12,
        n_layers: int = 3,
        token_dim: int = 4,
        time_dim: int = 64,
        n_outputs: int | None = None,
    ) -> None:
        super().__init__()
        self.n_features, self.n_classes = n_features, n_classes
        self.tokens = nn.Embedding(n_classes + 1, token_dim)
        self.time = TimeEmbedding(time_dim)
        self.conditions = ConditionEmbedding(vocabulary_sizes, time_dim)
        layers: list[nn.Module] = []
        width = n_features * token_dim + time_dim
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, n_features * n_classes if n_outputs is None else n_outputs))
        self.net = nn.Sequential(*layers)

    @property
    def mask_id(self) -> int:
        return self.n_classes

    def forward(self, tokens: Tensor, t: Tensor, codes: Tensor, keep: Tensor) -> Tensor:
        context = self.time(t) + self.conditions(codes, keep).sum(dim=1)
        h = torch.cat([self.tokens(tokens).flatten(1), context], dim=1)
        return self.net(h)
