"""The guided rate function the CountsDiff reverse process calls once per step (SPEC section 4, step 1)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor

from countsbench.methods.countsdiff.denoiser import Denoiser
from countsbench.methods.diffusion.guidance import Guidance, guided_rates, tiled


class RateModel:
    """``rates(x_t, t, alpha_t) -> r`` for one batch of rows with fixed conditions and valid mask.

    Guidance (`Guidance`) interpolates the head's unit rates; the scaled head's factor ``1 - alpha_t`` is
    applied after it (it factors out of the geometric interpolation, and the 1e-12 floor must not bite
    on it near t = 0).
    """

    def __init__(
        self,
        denoiser: Denoiser,
        codes: Tensor | None,
        valid: Tensor | None,
        guidance: float | None,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.denoiser, self.codes, self.valid, self.autocast = denoiser, codes, valid, autocast
        self.guidance = Guidance(codes, guidance)

    @torch.no_grad()
    def __call__(self, x: Tensor, t: float, alpha: float) -> Tensor:
        batch, device = x.shape[0], x.device
        times = torch.full((batch,), t, device=device)
        alphas = torch.full((batch,), alpha, dtype=torch.float64, device=device)  # float64: see removed_survival
        codes = self.codes if self.codes is not None else torch.zeros(batch, 0, dtype=torch.long, device=device)

        def forward(keep: Tensor, repeats: int) -> Tensor:
            valid = None if self.valid is None else tiled(self.valid, repeats)
            with self.autocast():
                return self.denoiser.unit_rates(
                    tiled(x, repeats), tiled(times, repeats), tiled(alphas, repeats), tiled(codes, repeats), keep, valid
                )

        return self.denoiser.rate_scale(alphas) * self.guidance(forward, batch, guided_rates, device)
