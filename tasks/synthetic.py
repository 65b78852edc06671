"""`synthetic_atlas`: a seeded simulator of atlas-like scRNA-seq counts with known structure.

Cells belong to cell types and batches. Each type has its own gene programme (a sparse set of
up-regulated genes on top of shared baseline expression), each batch a mild multiplicative effect
per gene, each cell a log-normal library size. Counts are negative-binomial (gamma-Poisson) with a
per-gene dispersion. Baseline expression is low, so most entries are zero (about 90%, like the
fetal and heart atlases after gene selection). Generated in chunks straight into CSR, so a million
cells never exist as a dense matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from countsbench.tasks.preprocess import SPLIT_FRACTIONS
from countsbench.tasks.scrna import SPLITS, LabelledCounts
from countsbench.tasks.splits import stratified_split

CELL_TYPE_KEY = "cell_type"
BATCH_KEY = "batch"


@dataclass(frozen=True)
class AtlasSimulator:
    n_cell_types: int = 10
    n_batches: int = 4
    programme_share: float = 0.08  # share of genes up-regulated by each cell type
    programme_fold: float = 8.0
    baseline_log_mean: float = -2.8  # exp(-2.8) ~ 0.06 expected counts per gene at unit library size
    baseline_log_sd: float = 1.2
    batch_log_sd: float = 0.2
    library_log_sd: float = 0.5
    dispersion_mean: float = 0.5  # NB dispersion a: Var = mu + a mu^2

    def parameters(self, n_genes: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        baseline = np.exp(rng.normal(self.baseline_log_mean, self.baseline_log_sd, n_genes))
        programmes = rng.random((self.n_cell_types, n_genes)) < self.programme_share
        type_means = baseline * np.where(programmes, self.programme_fold, 1.0)
        batch_effects = np.exp(rng.normal(0.0, self.batch_log_sd, (self.n_batches, n_genes)))
        dispersion = rng.gamma(2.0, self.dispersion_mean / 2.0, n_genes)
        type_weights = rng.dirichlet(np.full(self.n_cell_types, 2.0))
        return {
            "type_means": type_means,
            "batch_effects": batch_effects,
            "dispersion": dispersion,
            "type_weights": type_weights,
        }

    def simulate(self, n_cells: int, n_genes: int, seed: int = 0, chunk: int = 20_000) -> LabelledCounts:
        rng = np.random.default_rng(seed)
        params = self.parameters(n_genes, rng)
        types = rng.choice(self.n_cell_types, size=n_cells, p=params["type_weights"])
        batches = rng.integers(0, self.n_batches, size=n_cells)
        libraries = np.exp(rng.normal(0.0, self.library_log_sd, n_cells))
        shape = 1.0 / params["dispersion"]
        blocks = []
        for start in range(0, n_cells, chunk):
            rows = slice(start, min(start + chunk, n_cells))
            mu = params["type_means"][types[rows]] * params["batch_effects"][batches[rows]]
            mu = (mu * libraries[rows, None]).astype(np.float32)
            rate = rng.gamma(shape, mu / shape).astype(np.float32)  # gamma mixing -> negative binomial
            blocks.append(sp.csr_matrix(rng.poisson(rate).astype(np.int32)))
        type_labels = np.array([f"type{t}" for t in range(self.n_cell_types)])[types]
        rows = stratified_split(type_labels, SPLIT_FRACTIONS, seed)
        split = np.empty(n_cells, dtype=object)
        for name, index in zip(SPLITS, rows, strict=True):
            split[index] = name
        return LabelledCounts(
            counts=sp.vstack(blocks, format="csr"),
            labels={
                CELL_TYPE_KEY: type_labels,
                BATCH_KEY: np.array([f"batch{b}" for b in range(self.n_batches)])[batches],
            },
            feature_names=tuple(f"gene{j}" for j in range(n_genes)),
            cell_type_key=CELL_TYPE_KEY,
            split=split.astype(str),
        )
