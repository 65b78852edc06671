"""Masked value prediction, the training objective of the gene-token foundation models (scGPT, xTrimoGene),
adapted to imputation as the research code does and trained from scratch on the task's training split.

Values: each cell's observed counts (valid, not hidden) normalised to ``norm_target_sum`` over the
cell's observed library and log1p-transformed; hidden entries are unknown to the network (a mask
token). Entries that are not valid measurements (scRNA dropouts) are never targets; with
``dropouts = "unknown"`` (the default, as the other baselines treat them) they enter as mask tokens,
with ``"zero"`` as observed zeros (the research code's choice).

Training: a random share of each cell's observed entries (``mask_ratio`` of the non-zero ones,
``zero_mask_ratio`` of the zeros) is hidden as well, the library recomputed without them, and the
network regresses their log-normalised values (MSE over the hidden entries), in the diffusion methods'
single training loop (`countsbench.methods.diffusion.training.Trainer`: Adam, linear warm-up, gradient
clipping; no EMA, no condition dropout). ``max_genes`` (scGPT's ``max_seq_len``): each training cell
shows the network a random subset of that many genes (normalised over all of them first, as scGPT's
data collator samples genes after normalisation); imputation always sees every gene.

Imputation: ``expm1`` of the prediction (clamped to [0, ln(1 + norm_target_sum)]: no gene above the
cell's observed library) times the observed library over ``norm_target_sum``, turned into counts by
``rounding`` (``random``: floor + Bernoulli of the fraction, unbiased; ``nearest``: half up); observed
entries are returned unchanged. The network is deterministic at imputation, so ``n_samples = K`` gives
K random roundings of one prediction.

A family supplies ``build_network(spec)``: a module ``(values, known, codes, genes) -> (B, L)``
predictions, where ``genes`` (B, L) are the gene indices of the L columns, ``values`` (B, L) their
log-normalised values (0 where unknown), ``known`` (B, L) True where a value is known, and ``codes``
(B, n_keys) the condition codes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from countsbench.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Range
from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.methods.countsdiff.rounding import random_round
from countsbench.methods.diffusion.rows import TrainingRows
from countsbench.methods.diffusion.training import Randomness, Streams, Trainer, TrainingBatch, TrainingConfig
from countsbench.methods.imputation_output import finish_imputation, observed_mask
from countsbench.methods.torch_helpers import init_generator, seeded_init_

OPEN_UNIT = Range(0, 1, low_open=True, high_open=True)


def log_normalise(counts: Tensor, known: Tensor, target_sum: float) -> tuple[Tensor, Tensor]:
    """(values, library): ``ln(1 + target_sum x / library)`` at known entries (0 elsewhere), where the
    library (B, 1) is the sum of the known counts (at least 1)."""
    known_counts = torch.where(known, counts, torch.zeros_like(counts))
    library = known_counts.sum(dim=1, keepdim=True).clamp(min=1.0)
    return torch.log1p(target_sum * known_counts / library), library


def training_mask(counts: Tensor, observed: Tensor, ratio: float, zero_ratio: float, noise: torch.Generator) -> Tensor:
    """Observed entries hidden for one training step: each non-zero with probability ``ratio``, each zero
    with ``zero_ratio``."""
    draw = torch.rand(counts.shape, generator=noise, device=counts.device)
    return observed & (draw < torch.where(counts > 0, ratio, zero_ratio))


class MaskedValueImputation(Method):
    """Shared masked-value imputation method; a family subclass builds the network."""

    #: Random streams of the family (initial weights, batches, loss masks).
    streams: ClassVar[Streams] = Streams(init=40, batches=41, times=42, noise=43, sampling=44)
    inference_only = frozenset({"rounding", "impute_batch_size"})
    hyperparameter_ranges = {
        **dict.fromkeys(["steps", "epochs", "batch_size", "max_genes", "impute_batch_size"], AT_LEAST_ONE),
        **dict.fromkeys(["learning_rate", "grad_clip", "norm_target_sum"], POSITIVE),
        **dict.fromkeys(["warmup_steps", "weight_decay"], NON_NEGATIVE),
        "mask_ratio": OPEN_UNIT,
        "zero_mask_ratio": Range(0, 1, high_open=True),
        **dict.fromkeys(
            ["embed_dim", "layers", "heads", "ff_dim", "encoder_layers", "decoder_dim", "decoder_layers"],
            AT_LEAST_ONE,
        ),
        **dict.fromkeys(["encoder_heads", "decoder_heads", "ff_mult"], AT_LEAST_ONE),
        "n_bins": Range(2),
        "dropout": Range(0, 1, high_open=True),
        "bin_alpha": NON_NEGATIVE,
    }

    def __init__(
        self,
        steps: int = 2000,
        epochs: int | None = None,
        batch_size: int = 64,
        learning_rate: float = 1e-4,
        warmup_steps: int = 0,
        weight_decay: float = 0.0,
        grad_clip: float = 1.0,
        mask_ratio: float = 0.4,
        zero_mask_ratio: float | None = None,
        norm_target_sum: float = 1e4,
        max_genes: int | None = None,
        dropouts: Literal["unknown", "zero"] = "unknown",
        rounding: Literal["random", "nearest"] = "random",
        impute_batch_size: int = 64,
    ) -> None:
        """``epochs`` None: train ``steps`` optimiser steps; a number: that many passes over the training
        split (``ceil(epochs n / batch_size)`` steps), as the research code counts. ``zero_mask_ratio``
        None: zeros are hidden as often as non-zeros (``mask_ratio``)."""
        self.network: nn.Module | None = None
        self.spec: dict[str, Any] = {}
        self.condition_keys: tuple[str, ...] = ()
        self.losses: list[float] = []

    # --- family hooks ----------------------------------------------------------------------------
    def build_network(self, spec: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def uses_conditions(self) -> bool:
        return False

    # --- fitting ---------------------------------------------------------------------------------
    def n_parameters(self) -> int | None:
        return None if self.network is None else sum(p.numel() for p in self.network.parameters())

    def _zero_ratio(self) -> float:
        return self.mask_ratio if self.zero_mask_ratio is None else self.zero_mask_ratio

    def network_inputs(self, counts: Tensor, valid: Tensor, unknown: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(values, known, library) of counts whose ``unknown`` entries are hidden (targets)."""
        readable = valid & ~unknown
        values, library = log_normalise(counts, readable, self.norm_target_sum)
        return values, readable if self.dropouts == "unknown" else ~unknown, library

    def loss(self, model: nn.Module, batch: TrainingBatch, randomness: Randomness) -> Tensor:
        counts = batch.x0
        observed = torch.ones_like(counts, dtype=torch.bool) if batch.valid is None else batch.valid
        hidden = training_mask(counts, observed, self.mask_ratio, self._zero_ratio(), randomness.noise)
        values, known, library = self.network_inputs(counts, observed, hidden)
        target = torch.log1p(self.norm_target_sum * counts / library)
        genes = torch.arange(counts.shape[1], device=counts.device).expand(counts.shape[0], -1)
        if self.max_genes is not None and self.max_genes < counts.shape[1]:
            draw = torch.rand(counts.shape, generator=randomness.noise, device=counts.device)
            genes = draw.argsort(dim=1)[:, : self.max_genes]
            values, known, hidden, target = (x.gather(1, genes) for x in (values, known, hidden, target))
        predicted = model(values, known, batch.codes, genes).float()
        weight = hidden.float()
        return (weight * (predicted - target) ** 2).sum() / weight.sum().clamp(min=1.0)

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        self.condition_keys = train.condition_keys if self.uses_conditions() else ()
        vocabulary = tuple(len(train.vocabularies[key]) for key in self.condition_keys)
        self.spec = {"n_genes": train.n_features, "vocabulary_sizes": vocabulary}
        torch.manual_seed(int(ctx.rng(self.streams.init).integers(2**62)))  # dropout
        network = seeded_init_(self.build_network(self.spec), init_generator(ctx, self.streams.init))
        steps = self.steps if self.epochs is None else math.ceil(self.epochs * train.n_samples / self.batch_size)
        config = TrainingConfig(
            steps=steps,
            batch_size=self.batch_size,
            lr=self.learning_rate,
            warmup_steps=self.warmup_steps,
            grad_clip=self.grad_clip,
            ema_decay=0.0,  # the EMA copy is the model itself
            weight_decay=self.weight_decay,
            cond_drop_prob=0.0,
        )
        trainer = Trainer(network, self.loss, config, ctx, self.streams, desc=f"train {self.name}")
        self.losses = trainer.fit(TrainingRows(self._keyed(train), ctx.device))
        self.network = trainer.model.cpu().eval()

    def _keyed(self, data: CountData) -> CountData:
        """``data`` with only the condition keys the network uses."""
        conditions = {key: data.conditions[key] for key in self.condition_keys}
        vocabularies = {key: data.vocabularies[key] for key in self.condition_keys}
        return dataclasses.replace(data, conditions=conditions, vocabularies=vocabularies)

    # --- imputation ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, data: CountData, target_mask: np.ndarray, ctx: RunContext) -> np.ndarray:
        """(n, d) real-valued count estimates of every entry from the observed (valid, non-target) ones."""
        if self.network is None:
            raise RuntimeError(f"{self.name} must be fitted (or loaded) before imputing")
        net = self.network.to(ctx.device).eval()
        valid_all, target_all = observed_mask(data), np.asarray(target_mask, dtype=bool)
        codes_all = self._keyed(data).condition_matrix()
        top = math.log1p(self.norm_target_sum)
        estimates = np.empty(target_all.shape)
        for start in range(0, data.n_samples, self.impute_batch_size):
            rows = np.arange(start, min(start + self.impute_batch_size, data.n_samples))
            counts = torch.as_tensor(data.dense(rows), dtype=torch.float32, device=ctx.device)
            valid = torch.as_tensor(valid_all[rows], device=ctx.device)
            target = torch.as_tensor(target_all[rows], device=ctx.device)
            codes = torch.as_tensor(codes_all[rows], dtype=torch.long, device=ctx.device)
            values, known, library = self.network_inputs(counts, valid, target)
            genes = torch.arange(data.n_features, device=ctx.device).expand(len(rows), -1)
            with ctx.autocast():
                predicted = net(values, known, codes, genes).float()
            scaled = torch.expm1(predicted.clamp(0.0, top)) * library / self.norm_target_sum
            estimates[rows] = scaled.cpu().numpy().astype(np.float64)
        self.network = net.cpu()
        return estimates

    def impute(self, data: CountData, target_mask: np.ndarray, ctx: RunContext, n_samples: int = 1) -> np.ndarray:
        estimates = self.predict(data, target_mask, ctx)
        if self.rounding == "random":
            generator = torch.Generator().manual_seed(int(ctx.rng(self.streams.sampling).integers(2**62)))
            rates = torch.as_tensor(estimates).expand(n_samples, *estimates.shape)
            estimates = random_round(rates, generator).numpy()
        else:
            estimates = np.broadcast_to(estimates, (n_samples, *estimates.shape))
        return finish_imputation(data, target_mask, estimates[0] if n_samples == 1 else estimates)

    # --- persistence -----------------------------------------------------------------------------
    def state(self) -> dict:
        if self.network is None:
            return {}
        return {
            "spec": self.spec,
            "condition_keys": self.condition_keys,
            "network": self.network.state_dict(),
            "losses": self.losses,
        }

    def restore(self, state) -> None:
        if not state:
            return
        self.spec = dict(state["spec"])
        self.condition_keys = tuple(state["condition_keys"])
        network = self.build_network(self.spec)
        network.load_state_dict(state["network"])
        self.network = network.eval()
        self.losses = list(state["losses"])
