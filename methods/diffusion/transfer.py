"""Host-to-device copies that do not stall the device queue, and the sampler's chunk size per device.

On CUDA a NumPy array (or CPU tensor) is staged in pinned (page-locked) memory and copied with
``non_blocking=True``, so the copy is queued behind the running kernels instead of waiting for them (a
copy from pageable memory synchronises); elsewhere it is a plain ``torch.as_tensor``. The values are the
same either way.
"""

from __future__ import annotations

import numpy as np
import torch

#: On CUDA the reverse process runs chunks of this many times ``sample_batch_size`` rows (a GPU is
#: starved by the CPU-sized chunks: 256 // K = 51 cells at K = 5 imputations).
GPU_CHUNK_SCALE = 8


def is_cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def to_device(array: np.ndarray | torch.Tensor, dtype: torch.dtype | None, device: str | torch.device) -> torch.Tensor:
    """``array`` (a NumPy array or a CPU tensor) as a tensor of ``dtype`` on ``device``; through pinned
    memory, non-blocking, on CUDA."""
    contiguous = array.contiguous() if isinstance(array, torch.Tensor) else np.ascontiguousarray(array)
    tensor = torch.as_tensor(contiguous, dtype=dtype)
    if not is_cuda(device):
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def sampling_chunk_rows(batch_size: int, device: str | torch.device) -> int:
    """Rows per reverse-process chunk: ``batch_size``, times `GPU_CHUNK_SCALE` on CUDA."""
    return batch_size * GPU_CHUNK_SCALE if is_cuda(device) else batch_size
