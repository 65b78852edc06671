"""A reference gene transformer with the CountsDiff research code's architectural choices (speed baseline).

Written from the published description of the authors' scRNA model (rsoatto/countsdiff, the
``attention1d`` network), not copied: every one of the G genes is a token (Linear(1 -> E) of its value
plus a learned gene embedding) after a time token (sinusoidal features of ``1000 t`` through a two-layer
SiLU MLP) and one token per condition key (a learned table, zeroed for the unconditional model); invalid
genes are hidden by a key-padding mask, so the sequence is always ``G + 1 + n_keys`` long. The layers are
PyTorch's stock ``nn.TransformerEncoderLayer`` as the research code uses them: post-norm, ReLU,
feed-forward ``4 E``, sequence-first (a transpose around every layer), and its dropout placement (on the
attention weights, after attention, inside the feed-forward and after it). A Linear(E -> 1) head reads
the gene tokens. It implements countsbench's backbone contract ``(h, t, codes, keep, valid) -> f``, so
both sides of the benchmark share the loss, optimiser, EMA and sampler and differ only in the network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from countsbench.methods.countsdiff.embeddings import sinusoidal_embedding


class ResearchTransformer(nn.Module):
    """Full-length, post-norm gene transformer (the research code's design) as a countsbench backbone."""

    def __init__(
        self,
        n_genes: int,
        vocabulary_sizes: Sequence[int],
        dim: int = 64,
        n_heads: int = 4,
        n_layers: int = 3,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.value = nn.Linear(1, dim)
        self.genes = nn.Embedding(n_genes, dim)
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.labels = nn.ModuleList(nn.Embedding(size, dim) for size in vocabulary_sizes)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, n_heads, 4 * dim, dropout, batch_first=False) for _ in range(n_layers)
        )
        for layer in self.layers:  # the stock layer has one dropout rate; the attention weights get their own
            layer.self_attn.dropout = attention_dropout
        self.head = nn.Linear(dim, 1)
        self.register_buffer("gene_index", torch.arange(n_genes), persistent=False)

    def forward(self, h: Tensor, t: Tensor, codes: Tensor, keep: Tensor, valid: Tensor | None = None) -> Tensor:
        batch = h.shape[0]
        extra = [self.time(sinusoidal_embedding(t, self.dim))[:, None, :]]
        for i, table in enumerate(self.labels):
            extra.append((table(codes[:, i]) * keep.to(h.dtype)[:, None])[:, None, :])
        tokens = self.value(h[..., None]) + self.genes(self.gene_index)[None]
        x = torch.cat([*extra, tokens], dim=1)
        ignore = None
        if valid is not None:
            ignore = torch.cat([valid.new_zeros(batch, len(extra)), ~valid], dim=1)
        for layer in self.layers:
            x = layer(x.transpose(0, 1), src_key_padding_mask=ignore).transpose(0, 1)
        return self.head(x[:, len(extra) :]).squeeze(-1)
