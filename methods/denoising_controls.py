"""The denoising controls of openproblems' task_denoising, which bound an MCV leaderboard.

- ``no_denoising`` returns the training counts unchanged (the lower control).
- ``perfect_denoising`` returns the held-out test counts, which openproblems hands its control
  methods alongside the training counts. They are rescaled to the training depth,
  ``test * sum(train) / sum(test)``, so that ``mcv_poisson``'s rescaling by ``sum(test) / sum(train)``
  gives back the test counts exactly (the loss' minimiser); ``mcv_mse`` normalises per cell and scores
  it 0 either way. openproblems returns the test counts unscaled, which its own Poisson rescaling
  shrinks by a further (1 - p) / p: their perfect control is not the best Poisson score it could be.
"""

from __future__ import annotations

import numpy as np

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.registry import register_method

DENOISING = ("denoising",)


@register_method("no_denoising", kinds=DENOISING, role="control", summary="Return the training counts unchanged.")
class NoDenoising(Method):
    def denoise(self, data: CountData, ctx: RunContext) -> np.ndarray:
        return data.dense().astype(np.float64)


@register_method(
    "perfect_denoising",
    kinds=DENOISING,
    role="control",
    summary="Return the held-out test counts rescaled to the training depth (an oracle).",
    paper="openproblems v2 task_denoising, control method perfect_denoising",
)
class PerfectDenoising(Method):
    reads_held_out = True

    def __init__(self) -> None:
        self.held_out: CountData | None = None

    def see_held_out(self, held_out: CountData) -> None:
        self.held_out = held_out

    def denoise(self, data: CountData, ctx: RunContext) -> np.ndarray:
        if self.held_out is None or self.held_out.counts.shape != data.counts.shape:
            raise ValueError("perfect_denoising needs the held-out counts of the same cells and genes")
        test = self.held_out.dense().astype(np.float64)
        return test * data.dense().sum() / max(test.sum(), 1.0)
