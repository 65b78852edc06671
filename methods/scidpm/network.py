"""The CSDI denoiser specialised to genes (scIDPMs): residual layers with attention over genes.

Input per cell: two channels per gene, [conditioning values, noisy targets]; side information per
gene: a learned gene embedding and the conditioning mask. Each residual layer adds the projected
diffusion-step embedding, mixes genes with one transformer encoder layer, adds the side
information and applies a gated activation (Tashiro et al. 2021, CSDI section 5 / figure 6).
One addition: tokens carry their gene embedding from the start (``gene_input``). In CSDI the side
information enters only after each layer's attention, so the first layer attends over tokens that
do not know their gene; with one or two layers that left the model nearly blind to gene identity.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def step_embedding(steps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer diffusion steps (CSDI: 128 dims, frequencies 10^(4k/63))."""
    half = dim // 2
    frequencies = 10.0 ** (torch.arange(half, device=steps.device, dtype=torch.float32) / (half - 1) * 4.0)
    angles = steps.float()[:, None] * frequencies[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResidualLayer(nn.Module):
    def __init__(self, channels: int, side_dim: int, step_dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.step_projection = nn.Linear(step_dim, channels)
        self.gene_attention = nn.TransformerEncoderLayer(
            channels, heads, dim_feedforward=channels, dropout=dropout, activation="gelu", batch_first=True
        )
        self.mid_projection = nn.Linear(channels, 2 * channels)
        self.side_projection = nn.Linear(side_dim, 2 * channels)
        self.output_projection = nn.Linear(channels, 2 * channels)

    def forward(self, x: torch.Tensor, side: torch.Tensor, step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, G, C), side (B, G, S), step (B, E) -> (x_next, skip), both (B, G, C)."""
        y = x + self.step_projection(step)[:, None, :]
        y = self.gene_attention(y)
        y = self.mid_projection(y) + self.side_projection(side)
        gate, value = y.chunk(2, dim=-1)
        y = self.output_projection(torch.sigmoid(gate) * torch.tanh(value))
        residual, skip = y.chunk(2, dim=-1)
        return (x + residual) / math.sqrt(2.0), skip


class GeneDenoiser(nn.Module):
    """Predicts the noise of the target entries: (B, G) inputs -> (B, G) epsilon."""

    def __init__(
        self, n_genes: int, channels: int, layers: int, heads: int, gene_dim: int, step_dim: int, dropout: float
    ) -> None:
        super().__init__()
        self.step_dim = step_dim
        self.gene_embedding = nn.Embedding(n_genes, gene_dim)
        self.input_projection = nn.Linear(2, channels)
        self.gene_input = nn.Linear(gene_dim, channels)
        self.step_mlp = nn.Sequential(
            nn.Linear(step_dim, step_dim), nn.SiLU(), nn.Linear(step_dim, step_dim), nn.SiLU()
        )
        self.layers = nn.ModuleList(
            ResidualLayer(channels, gene_dim + 1, step_dim, heads, dropout) for _ in range(layers)
        )
        self.skip_projection = nn.Linear(channels, channels)
        self.output = nn.Linear(channels, 1)
        nn.init.zeros_(self.output.weight)

    def forward(
        self, conditioning: torch.Tensor, noisy: torch.Tensor, cond_mask: torch.Tensor, steps: torch.Tensor
    ) -> torch.Tensor:
        b, g = conditioning.shape
        genes = self.gene_embedding.weight[None].expand(b, g, -1)
        x = torch.relu(self.input_projection(torch.stack([conditioning, noisy], dim=-1))) + self.gene_input(genes)
        side = torch.cat([genes, cond_mask[..., None]], dim=-1)
        step = self.step_mlp(step_embedding(steps, self.step_dim))
        skips = 0.0
        for layer in self.layers:
            x, skip = layer(x, side, step)
            skips = skips + skip
        hidden = torch.relu(self.skip_projection(skips / math.sqrt(len(self.layers))))
        return self.output(hidden)[..., 0]
