"""The ONE chunked generation and imputation driver of every diffusion method (SPEC sections 4-5).

A family's reverse process runs on a `Rows` chunk: for generation only its condition codes; for RePaint
imputation also the observed counts, the target mask and ``keep`` (valid OR target: the rest is hidden
and forced to 0, SPEC section 4 step 5). K imputations of a chunk run as K tiled copies of its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.methods.diffusion.transfer import to_device


@dataclass(frozen=True)
class Rows:
    """One chunk of rows for the reverse process (``observed`` / ``target`` / ``keep`` for imputation)."""

    n: int
    codes: Tensor | None
    observed: Tensor | None = None  # (n, d) float counts
    target: Tensor | None = None  # (n, d) bool: entries to impute
    keep: Tensor | None = None  # (n, d) bool: valid OR target


#: ``reverse(rows, generator, on_step) -> (n, d)`` integer-valued float counts; ``on_step()`` after each step.
Reverse = Callable[[Rows, torch.Generator, Callable[[], object]], Tensor]


def chunks(n: int, size: int) -> list[np.ndarray]:
    """Row indices ``0..n-1`` in chunks of at most ``size`` (at least 1)."""
    size = max(1, size)
    return [np.arange(start, min(start + size, n)) for start in range(0, n, size)]


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


def generate(
    reverse: Reverse,
    n: int,
    n_features: int,
    codes: np.ndarray | None,
    ctx: RunContext,
    generator: torch.Generator,
    batch_size: int,
    steps_per_chunk: int,
    desc: str = "sample",
) -> np.ndarray:
    """(n, d) int64 samples; ``codes`` (n, n_keys) condition codes or None (unconditional)."""
    out = np.zeros((n, n_features), dtype=np.int64)
    row_chunks = chunks(n, batch_size)
    with ctx.progress(total=len(row_chunks) * steps_per_chunk, desc=desc) as bar:
        for rows in row_chunks:
            chunk_codes = None if codes is None else to_device(codes[rows], None, ctx.device)
            x = reverse(Rows(len(rows), chunk_codes), generator, lambda: bar.update(1))
            out[rows] = x.round().long().cpu().numpy()
    return out


def impute(
    reverse: Reverse,
    data: CountData,
    target_mask: np.ndarray,
    n_imputations: int,
    codes: np.ndarray | None,
    ctx: RunContext,
    generator: torch.Generator,
    batch_size: int,
    steps_per_chunk: int,
    desc: str = "impute",
) -> np.ndarray:
    """(K, n, d) int64 RePaint imputations; non-target entries equal ``data`` exactly (SPEC section 5).
    ``batch_size`` counts rows of the tiled chunk (K copies of each cell)."""
    k = n_imputations
    n, d = data.counts.shape
    out = np.zeros((k, n, d), dtype=np.int64)
    row_chunks = chunks(n, batch_size // k)
    with ctx.progress(total=len(row_chunks) * steps_per_chunk, desc=desc) as bar:
        for rows in row_chunks:
            observed = data.dense(rows)
            target = np.asarray(target_mask[rows], dtype=bool)

            def tiled(array: np.ndarray, dtype: torch.dtype) -> Tensor:
                return to_device(np.tile(array, (k, 1)), dtype, ctx.device)

            chunk = Rows(
                k * len(rows),
                None if codes is None else tiled(codes[rows], torch.long),
                observed=tiled(observed, torch.float32),
                target=tiled(target, torch.bool),
                keep=tiled(data.valid_mask(rows) | target, torch.bool),
            )
            x = reverse(chunk, generator, lambda: bar.update(1))
            imputed = x.round().long().cpu().numpy().reshape(k, len(rows), d)
            out[:, rows] = np.where(target[None], imputed, observed[None])
    return out
