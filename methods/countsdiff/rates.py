"""The guided rate function the CountsDiff reverse process calls once per step (SPEC section 4, step 1)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from countsbench.methods.countsdiff.denoiser import Denoiser
from countsbench.methods.diffusion.buckets import BucketSetting, bucket_count, length_buckets
from countsbench.methods.diffusion.guidance import Guidance, guided_rates, tiled


@dataclass(frozen=True)
class _Part:
    """A bucket of rows and its inputs that do not change over the reverse process, tiled for guidance."""

    rows: Tensor | None  # None: every row, in order
    codes: Tensor
    valid: object  # the backbone's layout of the tiled valid mask, the tiled mask, or None


class RateModel:
    """``rates(x_t, t, alpha_t) -> r`` for one batch of rows with fixed conditions and valid mask.

    Guidance (`Guidance`) interpolates the head's unit rates; the scaled head's factor ``1 - alpha_t`` is
    applied after it (it factors out of the geometric interpolation, and the 1e-12 floor must not bite
    on it near t = 0). Both halves of a guided step are one batched forward. What is fixed over the
    reverse process (tiled codes and valid mask, the backbone's token layout, guidance's ``keep``) is
    built on the first call, so a step tiles only ``x`` and the time and does not sync with the device.
    ``buckets = K > 1`` (an option) evaluates the rows as K length buckets (`length_buckets`), each padded
    only to its own longest row: the same rates up to floating-point rounding (``"auto"``: `bucket_count`).
    """

    def __init__(
        self,
        denoiser: Denoiser,
        codes: Tensor | None,
        valid: Tensor | None,
        guidance: float | None,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        buckets: BucketSetting = 1,
    ) -> None:
        self.denoiser, self.codes, self.valid, self.autocast = denoiser, codes, valid, autocast
        self.guidance = Guidance(codes, guidance)
        self.buckets = buckets
        self._parts: list[_Part] | None = None

    def _build_parts(self, batch: int, device: torch.device) -> list[_Part]:
        repeats = self.guidance.passes
        codes = self.codes if self.codes is not None else torch.zeros(batch, 0, dtype=torch.long, device=device)
        n_buckets = bucket_count(self.buckets, batch, device, "sample_buckets")
        groups = [None] if n_buckets == 1 else length_buckets(self.valid, batch, n_buckets, device)
        layout = getattr(getattr(self.denoiser, "backbone", None), "layout", None)
        parts = []
        for rows in groups:
            part_codes = codes if rows is None else codes[rows]
            part_valid = None
            if self.valid is not None:
                part_valid = tiled(self.valid if rows is None else self.valid[rows], repeats)
                if layout is not None:
                    part_valid = layout(part_valid, part_valid.shape[0], part_valid.shape[1], device)
            parts.append(_Part(rows, tiled(part_codes, repeats), part_valid))
        return parts

    @torch.no_grad()
    def __call__(self, x: Tensor, t: float, alpha: float) -> Tensor:
        batch, device = x.shape[0], x.device
        if self._parts is None:
            self._parts = self._build_parts(batch, device)
        out = None if self._parts[0].rows is None else torch.empty_like(x)
        for part in self._parts:
            rates = self._rates(part, x if part.rows is None else x[part.rows], t, alpha)
            if out is None:
                return rates
            out[part.rows] = rates.to(out.dtype)
        return out

    def _rates(self, part: _Part, x: Tensor, t: float, alpha: float) -> Tensor:
        batch, device = x.shape[0], x.device
        times = torch.full((batch,), t, device=device)
        alphas = torch.full((batch,), alpha, dtype=torch.float64, device=device)  # float64: see removed_survival

        def forward(keep: Tensor, repeats: int) -> Tensor:
            with self.autocast():
                return self.denoiser.unit_rates(
                    tiled(x, repeats), tiled(times, repeats), tiled(alphas, repeats), part.codes, keep, part.valid
                )

        return self.denoiser.rate_scale(alphas) * self.guidance(forward, batch, guided_rates, device)
