"""`RunContext`: what a method is told about the run it is part of (seed, device, profile, output)."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(RuntimeError):
    """Raised when the requested device is not available."""


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without a GPU is an error."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise DeviceError("--device cuda was asked for but no CUDA GPU is visible to torch")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (when installed) torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    with contextlib.suppress(ImportError):
        import torch

        torch.manual_seed(seed)


def cpu_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass
class RunContext:
    """Seed, device, profile, output directory and progress reporting for one run.

    Methods draw their randomness from `rng` / `torch_generator` so that a seed fixes the run.
    ``mixed_precision`` is True on CUDA, where methods train and sample under bf16 autocast.
    """

    seed: int = 0
    device: str = "cpu"
    profile: str = "quick"
    output_dir: Path | None = None
    #: Report progress: a bar on a terminal, plain lines with an ETA in a log or pipe (`countsbench.progress`).
    show_progress: bool = True

    @property
    def mixed_precision(self) -> bool:
        return self.device == "cuda"

    def rng(self, stream: int = 0) -> np.random.Generator:
        """A NumPy generator fixed by (seed, stream); different streams are independent."""
        return np.random.default_rng([self.seed, stream])

    def torch_generator(self, stream: int = 0) -> Any:
        import torch

        generator = torch.Generator(device=self.device)
        generator.manual_seed(int(np.random.SeedSequence([self.seed, stream]).generate_state(1)[0]))
        return generator

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA, a no-op elsewhere."""
        if not self.mixed_precision:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)

    def progress(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "") -> Iterator:
        """Progress on stderr: a tqdm bar on a terminal, plain lines with an ETA otherwise."""
        from countsbench.progress import progress

        return progress(iterable, total, desc, enabled=self.show_progress)
