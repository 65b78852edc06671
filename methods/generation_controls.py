"""The generation controls: the naive samplers that scale a generation task's scores
(`countsbench.leaderboards.scaling`).

- ``memorise`` returns training examples: a perfect sampler of the training split, which no model
  can beat on distances to held-out data except by chance (an upper control).
- ``independent_nb`` draws each feature independently from a negative binomial fitted by moments:
  right marginal means and variances, no dependence between features (a lower control).

Both work per condition: a requested sample with condition codes c is drawn from the training rows
with the same combination of codes (all of the task's condition keys, as the conditional-mean
imputation control does), or from all training rows for a combination that never occurs in training
and for unconditional tasks. Images are rows of pixels like any other counts; the NB samples are
clamped to the data's ``max_value`` (16 for digits) where it declares one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from countsbench.context import RunContext
from countsbench.data import CountData
from countsbench.method import Method
from countsbench.registry import register_method

GENERATION = ("generation",)
#: The group index of "every training row" (unconditional tasks, unseen combinations).
POOLED = 0


@dataclass(frozen=True)
class ConditionGroups:
    """Training rows grouped by their combination of condition codes; group 0 is every row."""

    keys: tuple[str, ...]
    combos: dict[tuple[int, ...], int]  # combination of codes -> group index (from 1)
    groups: np.ndarray  # (n_train,) group index of each training row

    @classmethod
    def of(cls, data: CountData) -> ConditionGroups:
        keys = data.condition_keys
        if not keys:
            return cls((), {}, np.full(data.n_samples, POOLED))
        combos, inverse = np.unique(data.condition_matrix(), axis=0, return_inverse=True)
        return cls(keys, {tuple(c): g + 1 for g, c in enumerate(combos.tolist())}, inverse.ravel() + 1)

    @property
    def n_groups(self) -> int:
        return len(self.combos) + 1

    def lookup(self, conditions: Mapping[str, np.ndarray] | None, n: int) -> np.ndarray:
        """(n,) group of each requested sample: its combination's, or `POOLED`."""
        if not self.keys or conditions is None:
            return np.full(n, POOLED)
        missing = [k for k in self.keys if k not in conditions]
        if missing:
            raise ValueError(f"sampling needs codes for every condition key; missing {missing}")
        codes = np.stack([np.asarray(conditions[k], dtype=np.int64) for k in self.keys], axis=1)
        if codes.shape[0] != n:
            raise ValueError(f"{codes.shape[0]} condition rows for {n} samples")
        return np.array([self.combos.get(tuple(c), POOLED) for c in codes.tolist()], dtype=np.int64)

    def rows(self, group: int) -> np.ndarray:
        return np.arange(len(self.groups)) if group == POOLED else np.flatnonzero(self.groups == group)

    def state(self) -> dict:
        """Arrays and JSON values (`Method.state`)."""
        return {"keys": self.keys, "combos": dict(self.combos), "groups": self.groups}


def group_moments(data: CountData, groups: ConditionGroups) -> tuple[np.ndarray, np.ndarray]:
    """(n_groups, d) per-feature means and variances (ddof 1; NaN for a group of one row) of the
    rows of each group, group 0 pooling every row. One streamed pass in row blocks."""
    n_groups, d = groups.n_groups, data.n_features
    totals, squares, sizes = np.zeros((n_groups, d)), np.zeros((n_groups, d)), np.zeros((n_groups, 1))
    for rows, block, _ in data.blocks():
        members = groups.groups[rows]
        indicator = sp.csr_matrix((np.ones(len(members)), (members, np.arange(len(members)))), (n_groups, len(members)))
        block = block.astype(np.float64)
        totals += indicator @ block
        squares += indicator @ block**2
        sizes[:, 0] += np.bincount(members, minlength=n_groups)
    if groups.keys:  # every row is in a combination's group: the pooled group is their sum
        totals[POOLED], squares[POOLED], sizes[POOLED] = totals[1:].sum(0), squares[1:].sum(0), sizes[1:].sum(0)
    means = totals / np.maximum(sizes, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        variances = np.where(sizes > 1, np.maximum(squares - sizes * means**2, 0.0) / (sizes - 1), np.nan)
    return means, variances


def draw_without_replacement(pool: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` elements of ``pool``: a random permutation, then further ones when ``k`` exceeds it."""
    rounds = -(-k // len(pool))
    return np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:k]


@register_method(
    "memorise",
    kinds=GENERATION,
    role="control",
    summary="Return training examples, drawn per condition without replacement until a group is used up.",
)
class MemorisingSampler(Method):
    def __init__(self) -> None:
        self.train: CountData | None = None
        self.groups: ConditionGroups | None = None

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        self.train, self.groups = train, ConditionGroups.of(train)

    def state(self) -> dict:
        """The training counts (a CSR matrix as its three arrays) and the condition groups."""
        if self.train is None:
            return {}
        counts = self.train.counts
        stored = (counts.data, counts.indices, counts.indptr, counts.shape) if sp.issparse(counts) else counts
        return {"counts": stored, "groups": self.groups.state()}

    def restore(self, state) -> None:
        if not state:
            return
        counts = state["counts"]
        if isinstance(counts, tuple):
            counts = sp.csr_matrix(counts[:3], shape=counts[3])
        self.train, self.groups = CountData(counts), ConditionGroups(**state["groups"])

    def sample(self, n: int, conditions: Mapping[str, np.ndarray] | None, ctx: RunContext) -> np.ndarray:
        rng = ctx.rng(0)
        wanted = self.groups.lookup(conditions, n)
        chosen = np.empty(n, dtype=np.int64)
        for group in np.unique(wanted):
            at = np.flatnonzero(wanted == group)
            chosen[at] = draw_without_replacement(self.groups.rows(int(group)), len(at), rng)
        return self.train.dense(chosen)


@register_method(
    "independent_nb",
    kinds=GENERATION,
    role="control",
    summary="Independent per-feature negative binomial fitted by moments per condition (Poisson where "
    "variance <= mean), clamped to the data's maximum.",
    paper="moment estimates of the negative binomial: Anscombe (1950), Biometrika 37, 358-382",
)
class IndependentNegativeBinomial(Method):
    """Per group and feature, mean m and variance v of the training counts. Where v > m: NB with
    ``size r = m^2 / (v - m)`` and ``p = m / v`` (numpy's failures-before-r-successes form, whose mean is
    m and variance v); elsewhere Poisson(m), the NB's limit as r grows."""

    def __init__(self) -> None:
        self.groups: ConditionGroups | None = None
        self.means: np.ndarray | None = None
        self.variances: np.ndarray | None = None
        self.max_value: int | None = None

    def fit(self, train: CountData, valid: CountData | None, ctx: RunContext) -> None:
        self.groups = ConditionGroups.of(train)
        self.means, self.variances = group_moments(train, self.groups)
        self.max_value = train.max_value

    def n_parameters(self) -> int:
        return int(self.means.size + self.variances.size)

    def state(self) -> dict:
        if self.groups is None:
            return {}
        return {"groups": self.groups.state(), "means": self.means, "variances": self.variances, "max": self.max_value}

    def restore(self, state) -> None:
        if state:
            self.groups = ConditionGroups(**state["groups"])
            self.means, self.variances, self.max_value = state["means"], state["variances"], state["max"]

    def sample(self, n: int, conditions: Mapping[str, np.ndarray] | None, ctx: RunContext) -> np.ndarray:
        rng = ctx.rng(0)
        wanted = self.groups.lookup(conditions, n)
        m, v = self.means[wanted], self.variances[wanted]
        overdispersed = np.isfinite(v) & (v > m) & (m > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            size = np.where(overdispersed, m**2 / (v - m), 1.0)
            p = np.where(overdispersed, m / v, 0.5)
        out = np.where(overdispersed, rng.negative_binomial(size, p), rng.poisson(m))
        return out if self.max_value is None else np.minimum(out, self.max_value)
