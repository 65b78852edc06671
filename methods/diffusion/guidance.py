"""The ONE guidance pass of every diffusion method (SPEC section 4; paper section 3.4).

Classifier-free training teaches one network both the conditional and the unconditional model (``keep``
False = the null condition). At sampling time a guidance weight ``w`` mixes them: ``w = 1`` is the
conditional model and ``w = 0`` the unconditional one (one forward each); any other ``w`` evaluates both
halves in ONE batched forward pass and combines them with the family's rule (geometric interpolation of
rates for CountsDiff, renormalised log-probabilities for masked diffusion).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

RATE_FLOOR = 1e-12

#: ``forward(keep, repeats)``: the network on the batch tiled ``repeats`` times, with ``keep`` (B * repeats,).
Forward = Callable[[Tensor, int], Tensor]
#: ``combine(conditional, unconditional, w)``.
Combine = Callable[[Tensor, Tensor, float], Tensor]


def tiled(tensor: Tensor, repeats: int) -> Tensor:
    """``tensor`` stacked ``repeats`` times along the batch dimension (itself when repeats = 1): the inputs
    of a `Forward` that evaluates both halves at once."""
    return tensor if repeats == 1 else tensor.repeat(repeats, *([1] * (tensor.dim() - 1)))


def guided_rates(conditional: Tensor, unconditional: Tensor, w: float) -> Tensor:
    """``exp(w ln r_c + (1 - w) ln r_u)`` with rates floored at 1e-12 (finite for any w, even on underflow).

    A positive factor common to both halves (the scaled head's ``1 - alpha_t``) factors out of this
    geometric interpolation, so it is applied to the head's unit rates and multiplied in afterwards.
    """
    log_c = torch.log(conditional.clamp_min(RATE_FLOOR))
    log_u = torch.log(unconditional.clamp_min(RATE_FLOOR))
    return torch.exp(w * log_c + (1.0 - w) * log_u)


class Guidance:
    """How a batch with condition ``codes`` (B, n_keys) or None is evaluated under guidance ``w``.

    ``w = None`` uses the conditions as they are; without condition codes the model is asked
    unconditionally whatever ``w``.
    """

    def __init__(self, codes: Tensor | None, w: float | None) -> None:
        conditional = codes is not None and codes.shape[1] > 0
        self.w = w if conditional and w is not None and w not in (0, 1) else None
        self.conditional = conditional and w != 0
        self._keep: dict[tuple[int, str], Tensor] = {}

    @property
    def passes(self) -> int:
        """Rows per input row in one evaluation: 1, or 2 when both halves are needed."""
        return 1 if self.w is None else 2

    def keep(self, batch: int, device: torch.device | str) -> Tensor:
        """The ``keep`` flags of one evaluation of ``batch`` rows (``passes * batch``), built once per size:
        all ``conditional``, or the conditional half then the unconditional half."""
        key = (batch, str(device))
        if key not in self._keep:
            if self.w is None:
                self._keep[key] = torch.full((batch,), self.conditional, device=device)
            else:
                self._keep[key] = torch.arange(2 * batch, device=device) < batch
        return self._keep[key]

    def __call__(self, forward: Forward, batch: int, combine: Combine, device: torch.device | str) -> Tensor:
        keep = self.keep(batch, device)
        if self.w is None:
            return forward(keep, 1)
        return combine(*forward(keep, 2).chunk(2), self.w)
