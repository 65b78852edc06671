"""CountsDiff, the reference implementation, and Blackout diffusion (SPEC sections 1-7).

Files, one concept each: `schedules` (alpha(t), w(t), grids), `loss`, `embeddings`, `networks`
(MLP, gene transformer, U-Net), `denoiser`, `ema`, `trainer`, `rounding`, `attrition`, `guidance`,
`sampler` (reverse step, reverse process, RePaint), `inference` (chunked generation and imputation)
and `method` (the registered ``countsdiff`` and ``blackout`` methods).
"""

from methods.countsdiff.method import Blackout, CountsDiff

__all__ = ["Blackout", "CountsDiff"]
