"""The count classes of the masked-diffusion output head: one set shared by every feature, or one per feature.

``shared``: counts ``0..C-1`` for every feature (C = the largest training count + 1), so the head has
``d * C`` outputs. On gene vectors this is mostly waste: pbmc's largest count is 259 while the median
gene never exceeds 4, so 765 x 260 = 198,900 logits per cell train what the data could fill with 7,493.
``per_feature``: feature j has the classes ``0..m_j`` (m_j its largest training count). Features are
grouped by the power of two at or above ``m_j + 1``, and each group is one dense ``(B, d_k, w_k)`` block
whose classes beyond a feature's own ``m_j`` are masked out (never predicted, never drawn); pbmc's head
shrinks to 10,380 outputs in 9 blocks. The model can no longer put mass above a gene's training maximum,
which the shared head learns to give ~0 probability anyway (no training target lies there).

Logits travel as one flat ``(B, T)`` tensor, block after block; the shared classes are the single
block ``(B, d, C)``, so its results are bit-identical to a head that reshapes to ``(B, d, C)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

#: The logit of a masked-out class: finite, so that a guidance mix ``w a + (1 - w) b`` with ``w > 1``
#: stays finite (``-inf`` would give ``inf - inf``), and ``exp`` of it is exactly 0 in float32.
MASKED_LOGIT = -1e30


@dataclass(frozen=True)
class Block:
    """Features ``features`` (their column indices), each with ``width`` output classes, of which the
    first ``sizes[i]`` are real for the i-th feature."""

    features: tuple[int, ...]
    width: int
    sizes: tuple[int, ...]


@dataclass(frozen=True)
class CountClasses:
    """How many classes each feature has (``sizes[j]``: the counts ``0..sizes[j] - 1``) and how the
    head's outputs are laid out (`blocks`)."""

    sizes: tuple[int, ...]
    shared: bool

    @classmethod
    def shared_by_all(cls, n_features: int, n_classes: int) -> CountClasses:
        return cls((int(n_classes),) * int(n_features), shared=True)

    @classmethod
    def per_feature(cls, max_counts: Sequence[int]) -> CountClasses:
        return cls(tuple(int(m) + 1 for m in max_counts), shared=False)

    @cached_property
    def blocks(self) -> tuple[Block, ...]:
        if self.shared:
            return (Block(tuple(range(len(self.sizes))), self.sizes[0] if self.sizes else 1, self.sizes),)
        sizes = np.asarray(self.sizes)
        widths = 2 ** np.ceil(np.log2(np.maximum(sizes, 2))).astype(int)
        blocks = []
        for width in np.unique(widths):
            features = np.flatnonzero(widths == width)
            blocks.append(Block(tuple(features.tolist()), int(width), tuple(sizes[features].tolist())))
        return tuple(blocks)

    @property
    def n_features(self) -> int:
        return len(self.sizes)

    @property
    def n_outputs(self) -> int:
        """Units of the output layer: ``sum over blocks of d_k * w_k``."""
        return sum(len(block.features) * block.width for block in self.blocks)

    def _views(self, flat: Tensor) -> list[Tensor]:
        """The flat ``(B, T)`` logits as one ``(B, d_k, w_k)`` view per block, masked classes filled."""
        views, start = [], 0
        for block, padding in zip(self.blocks, self._padding(flat.device), strict=True):
            stop = start + len(block.features) * block.width
            view = flat[:, start:stop].reshape(flat.shape[0], len(block.features), block.width)
            views.append(view if padding is None else view.masked_fill(padding, MASKED_LOGIT))
            start = stop
        return views

    def _padding(self, device: torch.device | str) -> list[Tensor | None]:
        """Per block, the ``(d_k, w_k)`` mask of classes beyond each feature's size (None: none)."""
        key = str(device)
        cache = self.__dict__.setdefault("_padding_cache", {})
        if key not in cache:
            masks: list[Tensor | None] = []
            for block in self.blocks:
                sizes = torch.tensor(block.sizes, device=device)
                mask = torch.arange(block.width, device=device)[None, :] >= sizes[:, None]
                masks.append(mask if bool(mask.any()) else None)
            cache[key] = masks
        return cache[key]

    def _index(self, device: torch.device | str) -> list[Tensor]:
        key = str(device)
        cache = self.__dict__.setdefault("_index_cache", {})
        if key not in cache:
            cache[key] = [torch.tensor(block.features, dtype=torch.long, device=device) for block in self.blocks]
        return cache[key]

    def log_softmax(self, flat: Tensor) -> Tensor:
        """Log-probabilities of each feature's classes, flat like the logits (masked classes ~ -1e30)."""
        return torch.cat([F.log_softmax(view, dim=-1).flatten(1) for view in self._views(flat)], dim=1)

    def cross_entropy(self, flat: Tensor, tokens: Tensor) -> Tensor:
        """``-log p(token)`` per feature, ``(B, d)``, for integer ``tokens`` within each feature's size."""
        out = torch.empty(tokens.shape, dtype=flat.dtype, device=flat.device)
        for view, index in zip(self._views(flat), self._index(flat.device), strict=True):
            target = tokens if self.shared else tokens[:, index]
            loss = F.cross_entropy(view.transpose(1, 2), target, reduction="none")
            if self.shared:
                return loss
            out[:, index] = loss
        return out

    def draw(self, flat_log_probs: Tensor, generator: torch.Generator) -> Tensor:
        """One class per feature, ``(B, d)`` int64, by the Gumbel-max trick; masked classes never win."""
        out = torch.empty((flat_log_probs.shape[0], self.n_features), dtype=torch.long, device=flat_log_probs.device)
        views = self._views(flat_log_probs)
        for view, index, padding in zip(views, self._index(out.device), self._padding(out.device), strict=True):
            u = torch.rand(view.shape, generator=generator, device=view.device).clamp(1e-20, 1.0 - 1e-7)
            scores = view - torch.log(-torch.log(u))
            if padding is not None:
                scores = scores.masked_fill(padding, float("-inf"))
            if self.shared:
                return scores.argmax(dim=-1)
            out[:, index] = scores.argmax(dim=-1)
        return out

    def clip(self, counts: Tensor) -> Tensor:
        """Counts as tokens: each feature's values clipped at its largest class."""
        if self.shared:
            return counts.long().clamp(max=self.sizes[0] - 1)
        top = self.__dict__.setdefault("_top", {})
        key = str(counts.device)
        if key not in top:
            top[key] = torch.tensor(self.sizes, dtype=torch.long, device=counts.device) - 1
        return torch.minimum(counts.long(), top[key])
