"""Exponential moving average of the weights (SPEC section 3; updated AFTER the optimiser step, bug 3)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """EMA copy of a model with warm-up ``decay_n = min(decay, (1 + n) / (10 + n))``."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.n_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Call after ``optimizer.step()`` so that the average includes the step just taken."""
        decay = min(self.decay, (1 + self.n_updates) / (10 + self.n_updates))
        for average, current in zip(self.model.parameters(), model.parameters(), strict=True):
            average.lerp_(current.detach(), 1.0 - decay)
        for average, current in zip(self.model.buffers(), model.buffers(), strict=True):
            average.copy_(current)
        self.n_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "n_updates": self.n_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.n_updates = state["n_updates"]
