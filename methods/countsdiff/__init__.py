"""CountsDiff, the reference implementation, and Blackout diffusion (SPEC sections 1-7).

Only this family's mathematics lives here; training, guidance, chunked sampling and persistence are the
shared diffusion core (`countsbench.methods.diffusion`). Files, one concept each: `schedules` (alpha(t), w(t),
grids, the binomial thinning), `loss` (the weighted Poisson loss as a callable), `embeddings`,
`networks` (MLP, gene transformer, U-Net), `denoiser` (the rate head), `rates` (the guided rate of one
step), `rounding`, `attrition`, `sampler` (reverse step, reverse process, RePaint) and `method` (the
registered ``countsdiff`` and ``blackout`` methods).
"""

from countsbench.methods.countsdiff.method import Blackout, CountsDiff

__all__ = ["Blackout", "CountsDiff"]
