"""The PCA space in which sample-quality metrics compare cells (CFGen, Palma et al. 2025, section 5).

Counts are mapped to ``log1p(x)`` and projected on the leading principal components of the TRAINING
split (at most ``PCA_MAX_FIT_CELLS`` training rows, a seeded subsample, fit the PCA), so that the real
(held-out) and the generated cells are embedded by the same map, which neither of them chose.
Distances there are Euclidean. Components kept: ``min(PCA_COMPONENTS, n_fit // CELLS_PER_COMPONENT,
n_features)``, at least 2. With fewer than ~50 fitting cells per component the trailing components fit
the training cells' own noise, and the training cells project much farther out on them than held-out
cells do (pbmc, 490 training cells: at 50 components the held-out variance on components 20-50 is a
third of the training cells'); returning training cells would then look unfaithful to held-out cells.
pbmc gets 9 components, an atlas subsample of 20,000 cells 50. The projections are cached on the evaluation: PRDC, the
classifier two-sample test and the memorisation rate share them.

The compared rows are the distance metrics' comparison sets (`countsbench.metrics.generation.comparison_sets`:
all rows, or the toy task's first 4,000).
"""

from __future__ import annotations

import numpy as np
import torch

from countsbench.data import CountData
from countsbench.evaluation import Evaluation
from countsbench.metrics.generation import comparison_sets

#: Principal components kept at most, and fitting cells per component at least.
PCA_COMPONENTS, CELLS_PER_COMPONENT = 50, 50
#: Training rows that fit the PCA at most (a seeded subsample of an atlas' training split).
PCA_MAX_FIT_CELLS = 20_000
#: Rows per block when projecting a large split or searching neighbours.
BLOCK_ROWS = 4096
#: Nearest distances below this are equal rows (rounding of projections made in separate blocks).
TIE_TOLERANCE = 1e-9


class PcaSpace:
    """``z = (log1p(x) - mean) @ components.T``, fitted on the training rows (SVD of the centred log counts)."""

    def __init__(self, train: CountData, n_components: int = PCA_COMPONENTS, seed: int = 0) -> None:
        rows = np.arange(train.n_samples)
        if len(rows) > PCA_MAX_FIT_CELLS:
            rows = np.sort(np.random.default_rng([seed, 0x9CA]).choice(rows, PCA_MAX_FIT_CELLS, replace=False))
        logs = np.log1p(train.dense(rows).astype(np.float64))
        self.mean = logs.mean(axis=0)
        k = max(2, min(n_components, logs.shape[0] // CELLS_PER_COMPONENT, logs.shape[1]))
        _, _, vt = np.linalg.svd(logs - self.mean, full_matrices=False)
        self.components = vt[:k]

    @property
    def n_components(self) -> int:
        return self.components.shape[0]

    def embed(self, counts: np.ndarray) -> np.ndarray:
        return (np.log1p(np.asarray(counts, dtype=np.float64)) - self.mean) @ self.components.T

    def embed_data(self, data: CountData) -> np.ndarray:
        """Every row of ``data`` (CSR densified one block at a time)."""
        parts = [self.embed(data.dense(np.arange(s, min(s + BLOCK_ROWS, data.n_samples)))) for s in
                 range(0, data.n_samples, BLOCK_ROWS)]  # fmt: skip
        return np.concatenate(parts) if parts else np.zeros((0, self.n_components))


def pca_space(ev: Evaluation) -> PcaSpace:
    root = ev.root()
    return root.cached("pca_space", lambda: PcaSpace(root.train, seed=root.metric_seed))


def embedded_sets(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """(real, generated) comparison rows in the training PCA space."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        space = pca_space(ev)
        real, generated = comparison_sets(ev)
        return space.embed(real), space.embed(generated)

    return ev.cached("pca_sets", compute)


def embedded_train(ev: Evaluation) -> np.ndarray:
    root = ev.root()
    return root.cached("pca_train", lambda: pca_space(root).embed_data(root.train))


def cdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances computed directly, not through ``|x|^2 + |y|^2 - 2 x.y``: equal rows are at
    exactly 0 (the matrix-product form leaves rounding noise, which would break ties at 0)."""
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


def nearest_distances(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(n,) distance from each query row to its nearest reference row, in blocks of both."""
    reference_t = torch.as_tensor(reference, dtype=torch.float64)
    out = np.empty(len(queries))
    for start in range(0, len(queries), BLOCK_ROWS):
        q = torch.as_tensor(queries[start : start + BLOCK_ROWS], dtype=torch.float64)
        best = torch.full((len(q),), float("inf"), dtype=torch.float64)
        for r in range(0, len(reference_t), BLOCK_ROWS * 4):
            best = torch.minimum(best, cdist(q, reference_t[r : r + BLOCK_ROWS * 4]).min(dim=1).values)
        out[start : start + len(q)] = best.numpy()
    out[out < TIE_TOLERANCE] = 0.0  # equal count rows, embedded in different calls, at exactly 0
    return out


def kth_neighbour_radii(x: np.ndarray, k: int) -> np.ndarray:
    """(n,) distance from each row of ``x`` to its k-th nearest OTHER row of ``x`` (Naeem et al.'s radius:
    the (k + 1)-th smallest distance, the row itself being the first), in blocks of rows."""
    if len(x) <= k:
        raise ValueError(f"k-NN radii need more than k = {k} rows, got {len(x)}")
    xt = torch.as_tensor(x, dtype=torch.float64)
    radii = [cdist(xt[s : s + BLOCK_ROWS], xt).kthvalue(k + 1, dim=1).values for s in range(0, len(xt), BLOCK_ROWS)]
    return torch.cat(radii).numpy()
