"""Length buckets: the rows of a batch sorted by their number of valid entries, in K groups.

A packed gene transformer pads every row of a batch to the batch's longest one; run as K groups of
rows with similar lengths, each group pads only to its own longest row, and at most ``B / K`` rows'
activations are alive at once when the groups are trained one after another with gradient
accumulation. Both uses are options (default off): they change which rows share a forward pass, hence
the order of floating-point sums, and for training which random draws (times, noise, dropout) a row
gets; the expected gradient is unchanged (`Trainer`, tested against the unbucketed one).

``"auto"`` (`bucket_count`) picks buckets of `CPU_BUCKET_ROWS` rows on a CPU, where activations of a few
rows stay in cache (the fastest of 4-32 rows for the paper network, docs/performance.md), and one bucket
on a GPU, which small buckets would leave idle.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Rows per bucket of ``"auto"`` on a CPU.
CPU_BUCKET_ROWS = 8

BucketSetting = int | str  # a number of buckets, or "auto"


def bucket_count(setting: BucketSetting, rows: int, device: torch.device | str, name: str = "buckets") -> int:
    """The number of buckets for ``rows`` rows: ``setting`` itself, or for ``"auto"`` ``ceil(rows / 8)``
    on a CPU and 1 elsewhere (``name``: the option, for the error on an invalid setting)."""
    if setting == "auto":
        return max(1, -(-rows // CPU_BUCKET_ROWS)) if torch.device(device).type == "cpu" else 1
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"{name} must be an integer >= 1 or 'auto', got {setting!r}")
    return setting


def length_buckets(valid: Tensor | None, batch: int, n_buckets: int, device: torch.device | str) -> list[Tensor]:
    """Row indices of ``n_buckets`` groups of (nearly) equal size, by ascending valid count (stable).

    Without a valid mask every row is as long as the others and the groups are contiguous slices.
    """
    if n_buckets < 1:
        raise ValueError(f"the number of length buckets must be >= 1, got {n_buckets}")
    order = torch.arange(batch, device=device) if valid is None else torch.argsort(valid.sum(dim=1), stable=True)
    return [group for group in order.tensor_split(min(n_buckets, max(batch, 1))) if group.numel()]
