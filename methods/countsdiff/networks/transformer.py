"""Gene-token transformer for scRNA-seq (SPEC section 6).

Token = Linear(ln(1 + x_t)) + learned gene embedding; one extra token for time and one per condition key;
pre-norm encoder layers on PyTorch's fused ``scaled_dot_product_attention`` (batch first); Linear(E -> 1)
head. Invalid genes are hidden by a key-padding mask. With ``pack=True`` each batch's sequence holds only
its valid genes (valid first, per row, padded to the batch's longest row), which cuts the attention cost
by the share of invalid entries (SPEC section 6); outputs of unpacked positions are 0.

The packing of a batch (`TokenLayout`: gene per position, padding, attention mask) is one host sync (the
longest row sets the sequence length); a caller whose valid mask is fixed over many calls (the reverse
process: one chunk, every step) builds it once with `GeneTransformer.layout` and passes it as ``valid``.
A batch without padding gets no attention mask, which keeps flash attention eligible on CUDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from countsbench.methods.countsdiff.embeddings import ConditionEmbedding, TimeEmbedding
from countsbench.methods.countsdiff.networks.lane_dropout import LaneDropout


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + feed-forward block with a boolean attention mask (True = attend)."""

    def __init__(self, dim: int, n_heads: int, ff_mult: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"embedding dim {dim} is not divisible by {n_heads} heads")
        self.n_heads, self.attention_dropout = n_heads, attention_dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim), nn.GELU(), LaneDropout(dropout), nn.Linear(ff_mult * dim, dim)
        )
        self.dropout = LaneDropout(dropout)

    def forward(self, x: Tensor, attend: Tensor | None) -> Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, self.n_heads, dim // self.n_heads).unbind(2)
        attention = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=attend,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        x = x + self.dropout(self.proj(attention.transpose(1, 2).reshape(batch, length, dim)))
        return x + self.dropout(self.ff(self.norm2(x)))


@dataclass(frozen=True)
class TokenLayout:
    """How a batch's genes sit in the sequence: ``genes`` (B, L) gene index per position, ``padding``
    (B, L) True at padded positions and ``attend`` (B, 1, 1, n_extra + L) the attention mask (True =
    attend), both None when no row is padded."""

    genes: Tensor
    padding: Tensor | None
    attend: Tensor | None


class GeneTransformer(nn.Module):
    """Backbone over gene tokens; ``forward(h, t, codes, keep, valid) -> f`` of shape (B, G)."""

    def __init__(
        self,
        n_genes: int,
        vocabulary_sizes: Sequence[int],
        dim: int = 64,
        n_heads: int = 4,
        n_layers: int = 3,
        ff_mult: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        pack: bool = True,
    ) -> None:
        super().__init__()
        self.pack = pack
        self.value = nn.Linear(1, dim)
        self.genes = nn.Embedding(n_genes, dim)
        self.time = TimeEmbedding(dim)
        self.conditions = ConditionEmbedding(vocabulary_sizes, dim)
        self.layers = nn.ModuleList(
            EncoderLayer(dim, n_heads, ff_mult, dropout, attention_dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def layout(self, valid: Tensor | None, batch: int, n_genes: int, device) -> TokenLayout:
        """The `TokenLayout` of a batch with valid mask ``valid`` (B, G) or None (every gene valid)."""
        if valid is None:
            return TokenLayout(torch.arange(n_genes, device=device).expand(batch, n_genes), None, None)
        if not self.pack:
            genes, padding = torch.arange(n_genes, device=device).expand(batch, n_genes), ~valid
        else:
            counts = valid.sum(dim=1)
            longest, shortest = torch.stack([counts.max(), counts.min()]).tolist()  # the one host sync
            length = max(longest, 1)
            genes = torch.argsort((~valid).to(torch.uint8), dim=1, stable=True)[:, :length]
            padding = torch.arange(length, device=device)[None, :] >= counts[:, None] if shortest < length else None
        if padding is None:
            return TokenLayout(genes, None, None)
        keys = torch.cat([padding.new_zeros(batch, 1 + self.conditions.n_keys), padding], dim=1)
        return TokenLayout(genes, padding, ~keys[:, None, None, :])

    def forward(
        self, h: Tensor, t: Tensor, codes: Tensor, keep: Tensor, valid: Tensor | TokenLayout | None = None
    ) -> Tensor:
        batch, n_genes = h.shape
        layout = valid if isinstance(valid, TokenLayout) else self.layout(valid, batch, n_genes, h.device)
        genes, padding = layout.genes, layout.padding
        tokens = self.value(h.gather(1, genes)[..., None]) + self.genes(genes)
        extra = torch.cat([self.time(t)[:, None, :], self.conditions(codes, keep)], dim=1)
        x = torch.cat([extra.to(tokens.dtype), tokens], dim=1)
        for layer in self.layers:
            x = layer(x, layout.attend)
        out = self.head(self.norm(x[:, extra.shape[1] :])).squeeze(-1)
        if padding is not None:
            out = out.masked_fill(padding, 0.0)
        return torch.zeros_like(h, dtype=out.dtype).scatter(1, genes, out)
