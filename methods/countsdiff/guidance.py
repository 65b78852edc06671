"""Predictor-free guidance (SPEC section 4; paper section 3.4, after Nisonoff et al. 2025)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor

from methods.countsdiff.denoiser import Denoiser

RATE_FLOOR = 1e-12


def guided_rates(conditional: Tensor, unconditional: Tensor, w: float) -> Tensor:
    """``exp(w ln r_c + (1 - w) ln r_u)`` with rates floored at 1e-12 (finite for any w, even on underflow)."""
    log_c = torch.log(conditional.clamp_min(RATE_FLOOR))
    log_u = torch.log(unconditional.clamp_min(RATE_FLOOR))
    return torch.exp(w * log_c + (1.0 - w) * log_u)


class RateModel:
    """``rates(x_t, t, alpha_t) -> r`` for one batch of rows with fixed conditions and valid mask.

    ``guidance=None`` uses the conditions as they are (no guidance); ``w = 0`` is the unconditional model;
    otherwise the conditional and unconditional halves run in ONE batched forward pass. Without condition
    codes the model is asked unconditionally.
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
        conditional = codes is not None and codes.shape[1] > 0
        self.guidance = guidance if conditional else None
        self.conditional = conditional and guidance != 0

    def _forward(self, x: Tensor, t: float, alpha: float, codes: Tensor, keep: Tensor, valid: Tensor | None) -> Tensor:
        batch = x.shape[0]
        times = torch.full((batch,), t, device=x.device)
        alphas = torch.full((batch,), alpha, device=x.device)
        with self.autocast():
            return self.denoiser(x, times, alphas, codes, keep, valid)

    @torch.no_grad()
    def __call__(self, x: Tensor, t: float, alpha: float) -> Tensor:
        batch = x.shape[0]
        codes = self.codes if self.codes is not None else torch.zeros(batch, 0, dtype=torch.long, device=x.device)
        if self.guidance is None or self.guidance == 0:
            keep = torch.full((batch,), self.conditional, device=x.device)
            return self._forward(x, t, alpha, codes, keep, self.valid)
        keep = torch.cat([torch.ones(batch, dtype=torch.bool), torch.zeros(batch, dtype=torch.bool)]).to(x.device)
        valid = None if self.valid is None else torch.cat([self.valid, self.valid])
        rates = self._forward(torch.cat([x, x]), t, alpha, torch.cat([codes, codes]), keep, valid)
        conditional, unconditional = rates.chunk(2)
        return guided_rates(conditional, unconditional, self.guidance)
