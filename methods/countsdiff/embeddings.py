"""Time and condition embeddings shared by every backbone (SPEC section 3)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def sinusoidal_embedding(t: Tensor, dim: int, scale: float = 1000.0) -> Tensor:
    """Sinusoidal embedding of ``scale * t`` (t in [0, 1]; a raw t would give a nearly constant code)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = scale * t.float()[:, None] * freqs[None, :]
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return nn.functional.pad(embedding, (0, dim - 2 * half))


class TimeEmbedding(nn.Module):
    """``MLP(sinusoidal(1000 t))`` -> (B, dim)."""

    def __init__(self, dim: int, frequency_dim: int | None = None) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim or dim
        self.mlp = nn.Sequential(nn.Linear(self.frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(sinusoidal_embedding(t, self.frequency_dim))


class ConditionEmbedding(nn.Module):
    """One learned table per condition key; a dropped sample gets the null condition (zeros).

    ``forward(codes (B, n_keys), keep (B,))`` -> (B, n_keys, dim). Classifier-free training and guidance
    both switch conditions off through ``keep`` (SPEC section 3).
    """

    def __init__(self, vocabulary_sizes: Sequence[int], dim: int) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(size, dim) for size in vocabulary_sizes)
        self.dim = dim

    @property
    def n_keys(self) -> int:
        return len(self.tables)

    def forward(self, codes: Tensor, keep: Tensor) -> Tensor:
        if not self.tables:
            return torch.zeros(codes.shape[0], 0, self.dim, device=codes.device)
        embedded = torch.stack([table(codes[:, i]) for i, table in enumerate(self.tables)], dim=1)
        return embedded * keep.to(embedded.dtype)[:, None, None]
