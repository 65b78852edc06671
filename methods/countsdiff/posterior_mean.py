"""CountsDiff as an MCV denoiser: the posterior mean intensity read off the rate head (docs/denoising.md).

For mixed-Poisson counts, ``x0 ~ Poisson(lam)`` with any distribution of ``lam``, binomial thinning
``x_t ~ Binomial(x0, alpha_t)`` splits x0 into independent ``Poisson(alpha_t lam)`` (kept) and
``Poisson((1 - alpha_t) lam)`` (removed) parts given lam, so the quantity the loss trains the rate
head on (paper eq. 6) is

    E[x0 - x_t | x_t] = (1 - alpha_t) E[lam | x_t].

The scaled head writes ``r = (1 - alpha_t) softplus(f)`` (`Denoiser`), so its unit rate ``softplus(f)``
IS the posterior mean intensity ``E[lam | x_t]`` at the model's training depth. A model fitted on the
MCV training counts y (x0 := y) and asked at ``alpha = 1`` (t = 0, where x_t = x0 = y) returns
``E[lam_y | y]``: the expected count of an independent replicate of y, on y's scale, which is the
MCV-optimal denoiser (the test part is ``Poisson((1 - p) / p lam_y)`` independent of y given lam_y).
At ``alpha < 1`` the input is read as a thinned draw and the estimate is ``alpha E[lam | x_t = y]``
(back on y's scale). The direct head's ``r`` is divided by ``1 - alpha`` (it needs ``alpha < 1``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from countsbench.methods.countsdiff.denoiser import Denoiser
from countsbench.methods.diffusion.sampling import chunks


@torch.no_grad()
def posterior_mean_intensity(
    denoiser: Denoiser,
    counts: np.ndarray,
    codes: np.ndarray | None,
    t: float,
    alpha: float,
    device: str,
    batch_size: int = 256,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> np.ndarray:
    """(n, d) float64 ``alpha * E[lam | x_t = counts]`` from the conditional rate head at time t."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"the denoising survival probability must lie in (0, 1], got {alpha}")
    if denoiser.rate_head == "direct" and alpha >= 1.0:
        raise ValueError("the direct rate head vanishes at alpha = 1; denoise at some alpha < 1")
    out = np.empty(counts.shape, dtype=np.float64)
    n_keys = 0 if codes is None else codes.shape[1]
    for rows in chunks(counts.shape[0], batch_size):
        n = len(rows)
        x = torch.as_tensor(counts[rows], dtype=torch.float32, device=device)
        times = torch.full((n,), t, device=device)
        alphas = torch.full((n,), alpha, dtype=torch.float64, device=device)
        chunk_codes = torch.zeros(n, 0, dtype=torch.long, device=device) if codes is None else None
        if codes is not None:
            chunk_codes = torch.as_tensor(codes[rows], dtype=torch.long, device=device)
        keep = torch.full((n,), n_keys > 0, device=device)  # the conditional model, unguided
        with autocast():
            unit = denoiser.unit_rates(x, times, alphas, chunk_codes, keep, None).double()
        if denoiser.rate_head == "direct":
            unit = unit / (1.0 - alpha)
        out[rows] = (alpha * unit).cpu().numpy()
    return out
