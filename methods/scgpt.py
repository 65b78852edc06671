"""scGPT (Cui et al. 2024) trained from scratch as an imputation baseline (masked value prediction).

One token per gene: a gene embedding plus an embedding of the gene's value binned per cell, as scGPT
does (``n_bins`` bins: 0 for an observed zero, 1 .. n_bins - 1 for the cell's observed non-zero values
by their quantile within the cell, equal-frequency bins, ties sharing a bin; one more token for an
unknown value). Each condition key adds one token (its learned embedding) in front of the genes. A
post-norm transformer encoder over all tokens, and scGPT's expression decoder (an MLP per gene token),
predict the log-normalised value of every gene; the training objective and imputation are those of
`countsbench.methods.masked_values`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from countsbench.methods.countsdiff.embeddings import ConditionEmbedding
from countsbench.methods.masked_values import MaskedValueImputation
from countsbench.registry import register_method


def per_cell_bins(values: Tensor, known: Tensor, n_bins: int) -> Tensor:
    """(B, d) bin indices: 0 for a known zero, 1 .. n_bins - 1 for a known non-zero value by the share of
    the cell's known non-zero values strictly below it, ``n_bins`` for an unknown value."""
    nonzero = known & (values > 0)
    ordered = torch.where(nonzero, values, torch.full_like(values, float("inf"))).sort(dim=1).values
    below = torch.searchsorted(ordered, values.contiguous())
    n_nonzero = nonzero.sum(dim=1, keepdim=True).clamp(min=1)
    bins = (1 + torch.div(below * (n_bins - 1), n_nonzero, rounding_mode="floor")).clamp(max=n_bins - 1)
    return torch.where(known, torch.where(nonzero, bins, 0), n_bins)


class ScgptNetwork(nn.Module):
    """Gene tokens (gene + binned value embeddings) and condition tokens -> a transformer -> (B, d) values."""

    def __init__(
        self,
        n_genes: int,
        vocabulary_sizes: Sequence[int],
        embed_dim: int,
        layers: int,
        heads: int,
        ff_dim: int,
        dropout: float,
        n_bins: int,
    ) -> None:
        super().__init__()
        self.n_bins = n_bins
        self.gene_embedding = nn.Embedding(n_genes, embed_dim)
        self.gene_norm = nn.LayerNorm(embed_dim)
        self.value_embedding = nn.Embedding(n_bins + 1, embed_dim)
        self.value_norm = nn.LayerNorm(embed_dim)
        self.conditions = ConditionEmbedding(vocabulary_sizes, embed_dim)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(embed_dim, heads, ff_dim, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.decoder = nn.Sequential(
            nn.Linear(embed_dim, embed_dim),
            nn.LeakyReLU(),
            nn.Linear(embed_dim, embed_dim),
            nn.LeakyReLU(),
            nn.Linear(embed_dim, 1),
        )

    def forward(self, values: Tensor, known: Tensor, codes: Tensor, genes: Tensor) -> Tensor:
        bins = per_cell_bins(values, known, self.n_bins)
        tokens = self.gene_norm(self.gene_embedding(genes)) + self.value_norm(self.value_embedding(bins))
        conditions = self.conditions(codes, torch.ones(codes.shape[0], dtype=torch.bool, device=codes.device))
        hidden = self.encoder(self.dropout(torch.cat([conditions, tokens], dim=1)))
        return self.decoder(hidden[:, conditions.shape[1] :])[..., 0]


@register_method(
    "scgpt",
    kinds=("imputation",),
    role="baseline",
    summary="scGPT from scratch: gene tokens with per-cell binned values and condition tokens, masked value "
    "prediction; random rounding.",
    paper="Cui et al. 2024, scGPT: toward building a foundation model for "
    "single-cell multi-omics using generative AI, Nature Methods",
)
class ScgptImputation(MaskedValueImputation):
    profiles = {
        "quick": {
            "steps": 1000,
            "batch_size": 32,
            "learning_rate": 1e-3,
            "warmup_steps": 50,
            "embed_dim": 32,
            "layers": 2,
            "heads": 2,
            "ff_dim": 64,
            "dropout": 0.0,
            "max_genes": 128,
        },
        "paper": {"epochs": 10},
    }

    def __init__(
        self,
        embed_dim: int = 128,
        layers: int = 4,
        heads: int = 4,
        ff_dim: int = 256,
        dropout: float = 0.2,
        n_bins: int = 51,
        use_conditions: bool = True,
        **config: Any,
    ) -> None:
        """The defaults are the research code's from-scratch scGPT (embedding 128, 4 layers, 4 heads,
        feed-forward 256, dropout 0.2; 51 bins as scGPT), batch 64, learning rate 1e-4, 40% masking."""
        super().__init__(**config)

    def uses_conditions(self) -> bool:
        return self.use_conditions

    def build_network(self, spec: dict[str, Any]) -> nn.Module:
        return ScgptNetwork(
            spec["n_genes"],
            spec["vocabulary_sizes"],
            self.embed_dim,
            self.layers,
            self.heads,
            self.ff_dim,
            self.dropout,
            self.n_bins,
        )
