"""`CountData`: the one container every method and task exchanges.

Counts are non-negative integers, held as a dense ndarray or a scipy CSR matrix (never silently
densified). Rows are samples (cells, images, toy draws); columns are features (genes, pixels).
Images keep a ``sample_shape`` such as ``(1, 8, 8)`` so a method can reshape rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

Matrix = np.ndarray | sp.csr_matrix


class CountDataError(ValueError):
    """Raised when counts, masks or conditions are not what `CountData` promises."""


def expressed_table(counts: Matrix, groups: np.ndarray, n_groups: int, chunk: int = 65_536) -> np.ndarray:
    """(n_groups, d) boolean: is gene j non-zero in some cell of group g?

    Sparse-aware and processed ``chunk`` rows at a time, so an atlas needs no full-size temporary.
    """
    groups = np.asarray(groups)
    table = np.zeros((n_groups, counts.shape[1]), dtype=bool)
    for start in range(0, counts.shape[0], chunk):
        block, block_groups = counts[start : start + chunk], groups[start : start + chunk]
        nonzero = sp.csr_matrix(block > 0, dtype=np.float32)
        n = block.shape[0]
        indicator = sp.csr_matrix((np.ones(n, np.float32), (block_groups, np.arange(n))), shape=(n_groups, n))
        table |= (indicator @ nonzero).toarray() > 0
    return table


@dataclass(frozen=True)
class ExpressedValidity:
    """The scIDPMs valid mask stored as a rule instead of an (n, d) array (SPEC section 8).

    ``valid[i, j] = counts[i, j] > 0 or not expressed[groups[i], j]``: within each cell type, a zero
    of a gene expressed somewhere in that type is a dropout. At atlas scale this never stores the
    invalid set: only the non-zero pattern (already in the counts) and a (types x genes) table.
    """

    expressed: np.ndarray  # (n_groups, d) bool
    groups: np.ndarray  # (n,) integer group (cell type) codes

    @classmethod
    def from_counts(cls, counts: Matrix, groups: np.ndarray, n_groups: int) -> ExpressedValidity:
        """The rule whose table marks the genes with a non-zero in some cell of each group."""
        return cls(expressed_table(counts, groups, n_groups), np.asarray(groups))

    def mask(self, counts: Matrix, rows: slice | np.ndarray | None = None) -> np.ndarray:
        block = counts if rows is None else counts[rows]
        groups = self.groups if rows is None else self.groups[rows]
        nonzero = (block > 0).toarray() if sp.issparse(block) else np.asarray(block) > 0
        return nonzero | ~self.expressed[groups]

    def subset(self, rows: np.ndarray) -> ExpressedValidity:
        return ExpressedValidity(self.expressed, self.groups[rows])


def _check_counts(counts: Matrix) -> Matrix:
    if sp.issparse(counts):
        counts = sp.csr_matrix(counts)
        values = counts.data
    else:
        counts = np.asarray(counts)
        values = counts
    if counts.ndim != 2:
        raise CountDataError(f"counts must be a 2-D matrix (samples x features), got shape {counts.shape}")
    if values.dtype.kind not in "biuf":
        raise CountDataError(f"counts must be numeric, got dtype {values.dtype}")
    if values.size:
        if values.dtype.kind == "f":
            if not np.all(np.isfinite(values)):
                raise CountDataError("counts contain NaN or infinite values")
            if not np.all(values == np.round(values)):
                raise CountDataError("counts must be integer-valued; found non-integer values")
        if values.min() < 0:
            raise CountDataError(f"counts must be non-negative; found minimum {values.min()}")
    if values.dtype.kind in "iu":
        return counts  # integer dtypes are kept (int32 halves an atlas' memory)
    if sp.issparse(counts):
        return sp.csr_matrix((counts.data.astype(np.int64), counts.indices, counts.indptr), shape=counts.shape)
    return counts.astype(np.int64)


@dataclass(frozen=True)
class CountData:
    """Integer counts with their valid mask, conditions and feature names.

    Attributes:
        counts: (n, d) non-negative integer matrix, dense or CSR.
        valid: which entries are real measurements (scRNA dropout positions are False, SPEC
            section 8): an (n, d) boolean array, an `ExpressedValidity` rule (atlas scale), or None
            when every entry is valid. Read it through `valid_mask(rows)`.
        conditions: condition key -> (n,) integer codes into ``vocabularies[key]``.
        vocabularies: condition key -> category labels, shared by every split of a task.
        feature_names: (d,) names (genes, pixels, dimensions).
        sample_shape: shape of one row, e.g. ``(d,)`` or ``(C, H, W)``.
        max_value: the data's known upper bound (16 for digits, 255 for images) or None.
    """

    counts: Matrix
    valid: np.ndarray | ExpressedValidity | None = None
    conditions: Mapping[str, np.ndarray] = field(default_factory=dict)
    vocabularies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    feature_names: tuple[str, ...] = ()
    sample_shape: tuple[int, ...] = ()
    max_value: int | None = None

    def __post_init__(self) -> None:
        counts = _check_counts(self.counts)
        object.__setattr__(self, "counts", counts)
        n, d = counts.shape
        if isinstance(self.valid, ExpressedValidity):
            if self.valid.groups.shape != (n,) or self.valid.expressed.shape[1:] != (d,):
                raise CountDataError(f"validity rule does not fit ({n}, {d}) counts")
        elif self.valid is not None:
            valid = np.asarray(self.valid)
            if valid.shape != (n, d) or valid.dtype != bool:
                raise CountDataError(f"valid mask must be a boolean ({n}, {d}) array, got {valid.dtype} {valid.shape}")
            object.__setattr__(self, "valid", valid)
        conditions = {}
        for key, codes in self.conditions.items():
            codes = np.asarray(codes)
            if codes.shape != (n,) or codes.dtype.kind not in "iu":
                raise CountDataError(f"condition {key!r} must be ({n},) integer codes, got {codes.dtype} {codes.shape}")
            if key not in self.vocabularies:
                raise CountDataError(f"condition {key!r} has no vocabulary")
            size = len(self.vocabularies[key])
            if codes.size and (codes.min() < 0 or codes.max() >= size):
                raise CountDataError(f"condition {key!r} has codes outside its vocabulary of {size} labels")
            conditions[key] = codes.astype(np.int64, copy=False)
        object.__setattr__(self, "conditions", conditions)
        object.__setattr__(self, "vocabularies", {k: tuple(map(str, v)) for k, v in self.vocabularies.items()})
        names = tuple(self.feature_names) or tuple(str(j) for j in range(d))
        if len(names) != d:
            raise CountDataError(f"{len(names)} feature names for {d} features")
        object.__setattr__(self, "feature_names", names)
        shape = tuple(self.sample_shape) or (d,)
        if int(np.prod(shape)) != d:
            raise CountDataError(f"sample_shape {shape} does not hold {d} features")
        object.__setattr__(self, "sample_shape", shape)
        if self.max_value is not None and self.n_samples and self.max_count() > self.max_value:
            raise CountDataError(f"counts exceed the declared maximum {self.max_value}")

    # --- shape and access -------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return self.counts.shape[0]

    @property
    def n_features(self) -> int:
        return self.counts.shape[1]

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.counts)

    @property
    def condition_keys(self) -> tuple[str, ...]:
        return tuple(self.conditions)

    def max_count(self) -> int:
        return int(self.counts.max()) if self.counts.size else 0

    def dense(self, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Dense int64 counts of the given rows (all rows by default)."""
        block = self.counts if rows is None else self.counts[rows]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        return block.astype(np.int64, copy=False)

    def valid_mask(self, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Dense boolean valid mask of the given rows (all True when the data has no mask)."""
        if isinstance(self.valid, ExpressedValidity):
            return self.valid.mask(self.counts, rows)
        if self.valid is None:
            n = self.n_samples if rows is None else len(np.arange(self.n_samples)[rows])
            return np.ones((n, self.n_features), dtype=bool)
        return self.valid if rows is None else self.valid[rows]

    def blocks(self, block_rows: int = 16_384) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """(rows, dense int64 counts, valid mask) for consecutive blocks of rows: a pass over a large
        sparse dataset that never densifies it whole."""
        for start in range(0, self.n_samples, block_rows):
            rows = slice(start, min(start + block_rows, self.n_samples))
            yield rows, self.dense(rows), self.valid_mask(rows)

    def condition_matrix(self) -> np.ndarray:
        """(n, n_keys) integer codes in `condition_keys` order."""
        if not self.conditions:
            return np.zeros((self.n_samples, 0), dtype=np.int64)
        return np.stack([self.conditions[k] for k in self.condition_keys], axis=1)

    def subset(self, rows: np.ndarray) -> CountData:
        """The given rows, with the same vocabularies."""
        return replace(
            self,
            counts=self.counts[rows],
            valid=self.valid if self.valid is None else self._valid_subset(rows),
            conditions={k: v[rows] for k, v in self.conditions.items()},
        )

    def _valid_subset(self, rows: np.ndarray) -> np.ndarray | ExpressedValidity:
        return self.valid.subset(rows) if isinstance(self.valid, ExpressedValidity) else self.valid[rows]

    def with_hidden(self, target_mask: np.ndarray) -> CountData:
        """A copy whose target entries are set to 0, so a method cannot read held-out values.

        A validity rule is evaluated on the original counts first (hiding a non-zero must not turn
        it into a dropout), so the copy carries a dense valid mask.
        """
        target_mask = np.asarray(target_mask, dtype=bool)
        if target_mask.shape != self.counts.shape:
            raise CountDataError(f"target mask shape {target_mask.shape} != counts shape {self.counts.shape}")
        if sp.issparse(self.counts):
            hidden = self.counts.multiply(sp.csr_matrix(~target_mask)).tocsr()
        else:
            hidden = np.where(target_mask, 0, self.counts)
        valid = self.valid_mask() if isinstance(self.valid, ExpressedValidity) else self.valid
        return replace(self, counts=hidden, valid=valid)


def encode_categories(
    splits: Sequence[Sequence[object]], vocabulary: Sequence[str] | None = None
) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Integer codes for several splits against ONE vocabulary (SPEC section 9, bug 4).

    The vocabulary defaults to the sorted labels of the first (training) split; a label in a later
    split that the vocabulary lacks is an error rather than a silent new code.
    """
    if vocabulary is None:
        vocabulary = sorted({str(v) for v in splits[0]})
    vocabulary = tuple(str(v) for v in vocabulary)
    index = {label: code for code, label in enumerate(vocabulary)}
    encoded = []
    for labels in splits:
        labels = [str(v) for v in labels]
        unknown = sorted(set(labels) - index.keys())
        if unknown:
            raise CountDataError(f"labels {unknown[:5]} are not in the training vocabulary")
        encoded.append(np.array([index[v] for v in labels], dtype=np.int64))
    return encoded, vocabulary
