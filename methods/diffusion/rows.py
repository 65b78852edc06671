"""Training rows of a `CountData` as tensors on the device."""

from __future__ import annotations

import numpy as np
import torch

from countsbench.data import CountData
from countsbench.methods.diffusion.transfer import to_device


class TrainingRows:
    """Rows of a `CountData` as tensors on the device: ``batch(rows) -> (x0, valid, codes)``.

    Small dense data (and its valid mask) is moved once; CSR data is densified one batch at a time,
    its validity evaluated per batch (an atlas' `ExpressedValidity` rule is never materialised whole).
    Per-batch copies go through pinned memory without blocking on CUDA (`to_device`).
    """

    def __init__(self, data: CountData, device: str) -> None:
        self.data, self.device = data, device
        self.counts = None if data.is_sparse else torch.as_tensor(data.counts, dtype=torch.float32, device=device)
        dense_valid = data.valid is not None and not data.is_sparse
        self.valid = torch.as_tensor(data.valid_mask(), device=device) if dense_valid else None
        self.codes = torch.as_tensor(data.condition_matrix(), dtype=torch.long, device=device)

    def __len__(self) -> int:
        return self.data.n_samples

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        index = to_device(rows, None, self.device)
        if self.counts is not None:
            return self.counts[index], None if self.valid is None else self.valid[index], self.codes[index]
        x0 = to_device(self.data.dense(rows), torch.float32, self.device)
        valid = None if self.data.valid is None else to_device(self.data.valid_mask(rows), None, self.device)
        return x0, valid, self.codes[index]
