"""``torch.compile`` of a denoiser's backbone, an option (``compile_model``; default off).

The backbone (``model.backbone``, else the model) is compiled in place with `nn.Module.compile`, which
leaves the module tree and the state dict unchanged (checkpoints and saved weights do not see it).
Packed transformer batches change length from batch to batch, so shapes are marked dynamic. On CUDA the
sampler's backbone is compiled with ``mode="reduce-overhead"``, which captures each shape's call as a
CUDA graph (a reverse step is ~4,000 small kernels at the paper network's size); training uses the
default mode (graphs and autograd's saved tensors do not mix well with a changing batch).
"""

from __future__ import annotations

import shutil

import torch
from torch import nn


class CompileUnavailable(RuntimeError):
    """``compile_model`` was asked for but this build of torch cannot compile here."""


def compile_unavailable_reason(device: str | torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here, or None when it can."""
    if not hasattr(torch, "compile") or not hasattr(nn.Module, "compile"):
        return f"torch {torch.__version__} has no torch.compile / nn.Module.compile"
    if torch.device(device).type == "cpu" and shutil.which("g++") is None and shutil.which("c++") is None:
        return "the inductor CPU backend needs a C++ compiler (g++ or c++) on PATH"
    return None


def compile_mode(device: str | torch.device, training: bool) -> str:
    """``reduce-overhead`` (CUDA graphs) for sampling on CUDA, ``default`` otherwise."""
    return "reduce-overhead" if torch.device(device).type == "cuda" and not training else "default"


def compile_backbone(
    model: nn.Module, device: str | torch.device, training: bool, backend: str = "inductor"
) -> nn.Module:
    """Compile ``model``'s backbone in place (once) and return the module that was compiled."""
    reason = compile_unavailable_reason(device)
    if reason is not None:
        raise CompileUnavailable(f"compile_model=True: {reason}")
    target = getattr(model, "backbone", model)
    if getattr(target, "_compiled_call_impl", None) is None:
        mode = compile_mode(device, training) if backend == "inductor" else None
        target.compile(backend=backend, mode=mode, dynamic=True)
    return target
