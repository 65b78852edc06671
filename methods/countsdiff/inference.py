"""Generation and RePaint imputation in row chunks with a trained denoiser (SPEC sections 4-5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from countsbench.context import RunContext
from countsbench.data import CountData
from methods.countsdiff.attrition import Attrition
from methods.countsdiff.denoiser import Denoiser
from methods.countsdiff.guidance import RateModel
from methods.countsdiff.sampler import n_evaluations, reverse_process
from methods.countsdiff.schedules import SamplingGrid
from methods.countsdiff.trainer import STREAM_SAMPLING


@dataclass(frozen=True)
class SamplerSettings:
    grid: SamplingGrid
    attrition: Attrition
    guidance: float | None = None
    max_value: int | None = None
    tau_leaping: bool = False
    repeats: int = 1
    jump: int = 0
    batch_size: int = 256


def _chunks(n: int, size: int) -> list[np.ndarray]:
    return [np.arange(start, min(start + size, n)) for start in range(0, n, max(1, size))]


def _run(
    denoiser: Denoiser,
    settings: SamplerSettings,
    ctx: RunContext,
    generator: torch.Generator,
    codes: torch.Tensor | None,
    shape: tuple[int, int],
    keep: torch.Tensor | None = None,
    observed: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
    on_step=None,
) -> torch.Tensor:
    rates = RateModel(denoiser, codes, keep, settings.guidance, ctx.autocast)
    return reverse_process(
        rates,
        shape,
        settings.grid,
        settings.attrition,
        generator,
        device=ctx.device,
        keep=keep,
        observed=observed,
        target=target,
        max_value=settings.max_value,
        tau_leaping=settings.tau_leaping,
        repeats=settings.repeats,
        jump=settings.jump,
        on_step=on_step,
    )


@torch.inference_mode()
def generate(
    denoiser: Denoiser, n: int, codes: np.ndarray | None, settings: SamplerSettings, ctx: RunContext
) -> np.ndarray:
    """(n, d) int64 samples; ``codes`` (n, n_keys) condition codes or None (unconditional)."""
    denoiser.eval()
    generator = ctx.torch_generator(STREAM_SAMPLING)
    d = denoiser.config.n_features
    out = np.zeros((n, d), dtype=np.int64)
    chunks = _chunks(n, settings.batch_size)
    per_chunk = n_evaluations(settings.grid.n_steps, settings.repeats, settings.jump)
    with ctx.progress(total=len(chunks) * per_chunk, desc="sample") as bar:
        for rows in chunks:
            chunk_codes = None if codes is None else torch.as_tensor(codes[rows], device=ctx.device)
            x = _run(denoiser, settings, ctx, generator, chunk_codes, (len(rows), d), on_step=lambda: bar.update(1))
            out[rows] = x.round().long().cpu().numpy()
    return out


@torch.inference_mode()
def impute(
    denoiser: Denoiser,
    data: CountData,
    target_mask: np.ndarray,
    settings: SamplerSettings,
    ctx: RunContext,
    n_imputations: int = 1,
    use_conditions: bool = True,
) -> np.ndarray:
    """(K, n, d) int64 RePaint imputations; non-target entries equal ``data`` exactly (SPEC section 5).

    Entries that are neither valid nor targets are forced to 0 and hidden from the network.
    """
    denoiser.eval()
    generator = ctx.torch_generator(STREAM_SAMPLING)
    k = n_imputations
    n, d = data.counts.shape
    out = np.zeros((k, n, d), dtype=np.int64)
    chunks = _chunks(n, max(1, settings.batch_size // k))
    per_chunk = n_evaluations(settings.grid.n_steps, settings.repeats, settings.jump)
    all_codes = data.condition_matrix() if use_conditions else None
    with ctx.progress(total=len(chunks) * per_chunk, desc="impute") as bar:
        for rows in chunks:
            observed = data.dense(rows)
            target = np.asarray(target_mask[rows], dtype=bool)
            keep = data.valid_mask(rows) | target

            def tiled(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
                return torch.as_tensor(np.tile(array, (k, 1)), dtype=dtype, device=ctx.device)

            codes = None if all_codes is None else tiled(all_codes[rows], torch.long)
            target_t = tiled(target, torch.bool)
            x = _run(
                denoiser,
                settings,
                ctx,
                generator,
                codes,
                (k * len(rows), d),
                keep=tiled(keep, torch.bool),
                observed=tiled(observed, torch.float32),
                target=target_t,
                on_step=lambda: bar.update(1),
            )
            imputed = x.round().long().cpu().numpy().reshape(k, len(rows), d)
            out[:, rows] = np.where(target[None], imputed, observed[None])
    return out


def condition_codes(conditions: Mapping[str, np.ndarray] | None, keys: tuple[str, ...], n: int) -> np.ndarray | None:
    """(n, n_keys) codes in the model's key order, or None for unconditional sampling."""
    if not keys or conditions is None:
        return None
    missing = [key for key in keys if key not in conditions]
    if missing:
        raise ValueError(f"sampling needs codes for every condition key; missing {missing}")
    codes = np.stack([np.asarray(conditions[key], dtype=np.int64) for key in keys], axis=1)
    if codes.shape[0] != n:
        raise ValueError(f"{codes.shape[0]} condition rows for {n} samples")
    return codes
