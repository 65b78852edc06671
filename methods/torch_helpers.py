"""Small PyTorch helpers shared by the learned baselines (GAIN, HI-VAE, scIDPMs).

Parameters are initialised from the run's own generator (`RunContext.torch_generator`), not from
torch's global state, so a seed fixes a run whatever ran before it in the same process.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from countsbench.context import RunContext


def seeded_init_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Xavier-uniform weights (GAIN's and HI-VAE's initialiser) and zero biases, from ``generator``.

    Parameters other than Linear weights and biases (embeddings, per-feature tables) get N(0, 0.05^2).
    """
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith("bias") or "norm" in name:
                continue
            if parameter.ndim == 2 and _is_linear_weight(module, name):
                fan_out, fan_in = parameter.shape
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                parameter.copy_(torch.rand(parameter.shape, generator=generator, device="cpu") * 2 * bound - bound)
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator, device="cpu") * 0.05)
        for name, parameter in module.named_parameters():
            if name.endswith("bias") and "norm" not in name:
                parameter.zero_()
    return module


def _is_linear_weight(module: nn.Module, name: str) -> bool:
    owner = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
    return isinstance(owner, nn.Linear) and name.endswith("weight")


def as_tensor(array: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32, device=device)


def init_generator(ctx: RunContext, stream: int) -> torch.Generator:
    """A CPU generator for parameter initialisation (models are built on the CPU, then moved)."""
    generator = torch.Generator()
    generator.manual_seed(int(ctx.rng(stream).integers(2**62)))
    return generator


def minibatches(n: int, batch_size: int, rng: np.random.Generator, drop_last: bool = False) -> list[np.ndarray]:
    """One epoch of shuffled row indices in batches of ``batch_size``."""
    order = rng.permutation(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]
