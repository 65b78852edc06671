"""Turn a raw single-cell atlas into a processed dataset (SPEC section 8).

Raw counts (from ``X``, a named layer, or ``.raw``) -> keep genes expressed in at least
``min_cells`` cells -> the ``n_genes`` genes with the largest coefficient of variation -> a seeded
80/10/10 split stratified by cell type. Also reads the authors' research-code HDF5 layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from countsbench.data import CountDataError
from countsbench.tasks.scrna import SPLITS, LabelledCounts
from countsbench.tasks.splits import stratified_split

SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


def raw_counts(adata, layer: str | None = None, use_raw: bool = False) -> tuple[sp.csr_matrix, tuple[str, ...]]:
    """The raw count matrix as CSR with its gene names; non-integer or negative values are errors."""
    if use_raw:
        if adata.raw is None:
            raise CountDataError("--raw given but the file has no .raw")
        matrix, genes, where = adata.raw.X, adata.raw.var_names, ".raw.X"
    elif layer is not None:
        if layer not in adata.layers:
            raise CountDataError(f"layer {layer!r} not found; layers: {', '.join(adata.layers) or 'none'}")
        matrix, genes, where = adata.layers[layer], adata.var_names, f"layer {layer!r}"
    else:
        matrix, genes, where = adata.X, adata.var_names, "X"
    matrix = sp.csr_matrix(matrix)
    values = matrix.data
    if values.size and (values.min() < 0 or not np.all(np.isfinite(values)) or np.any(values != np.round(values))):
        raise CountDataError(
            f"{where} does not hold raw integer counts (found negative, non-finite or fractional values); "
            "point --layer or --raw at the raw UMI counts"
        )
    return matrix, tuple(map(str, genes))


def check_condition_keys(obs_columns: Sequence[str], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in obs_columns]
    if missing:
        raise CountDataError(f"condition keys {missing} not in obs; available columns: {', '.join(obs_columns)}")


def coefficient_of_variation(counts: sp.csr_matrix) -> np.ndarray:
    """Per-gene standard deviation / mean over cells (0 for a gene with mean 0)."""
    mean = np.asarray(counts.mean(axis=0)).ravel()
    mean_sq = np.asarray(counts.multiply(counts).mean(axis=0)).ravel()
    std = np.sqrt(np.maximum(mean_sq - mean**2, 0.0))
    return np.divide(std, mean, out=np.zeros_like(mean), where=mean > 0)


def select_genes(counts: sp.csr_matrix, n_genes: int, min_cells: int) -> np.ndarray:
    """Indices (sorted) of the ``n_genes`` most variable genes among those in >= ``min_cells`` cells."""
    cells_per_gene = np.asarray((counts > 0).sum(axis=0)).ravel()
    kept = np.flatnonzero(cells_per_gene >= min_cells)
    if kept.size < n_genes:
        raise CountDataError(
            f"only {kept.size} genes are expressed in at least {min_cells} cells; {n_genes} were asked for "
            "(lower --n-genes or --min-cells)"
        )
    cv = coefficient_of_variation(counts[:, kept])
    order = np.lexsort((kept, -cv))  # largest CV first, ties by gene index
    return np.sort(kept[order[:n_genes]])


def preprocess(
    adata,
    *,
    cell_type_key: str,
    condition_keys: Sequence[str],
    n_genes: int,
    min_cells: int = 10,
    seed: int = 0,
    layer: str | None = None,
    use_raw: bool = False,
) -> LabelledCounts:
    """Raw AnnData -> a `LabelledCounts` with the selected genes and a stratified split."""
    keys = list(dict.fromkeys([cell_type_key, *condition_keys]))
    check_condition_keys(list(adata.obs.columns), keys)
    counts, genes = raw_counts(adata, layer, use_raw)
    genes_kept = select_genes(counts, n_genes, min_cells)
    labels = {k: adata.obs[k].astype(str).to_numpy() for k in keys}
    rows = stratified_split(labels[cell_type_key], SPLIT_FRACTIONS, seed)
    split = np.empty(counts.shape[0], dtype=object)
    for name, index in zip(SPLITS, rows, strict=True):
        split[index] = name
    return LabelledCounts(
        counts=counts[:, genes_kept].tocsr(),
        labels=labels,
        feature_names=tuple(genes[j] for j in genes_kept),
        cell_type_key=cell_type_key,
        split=split.astype(str),
    )


RESEARCH_SPLITS = {"train": "train", "val": "valid", "test": "test"}


def read_research_hdf5(path: Path, cell_type_key: str, condition_keys: Sequence[str]) -> LabelledCounts:
    """The authors' preprocessed layout: ``/gene_names``, ``/{train,val,test}/counts`` and
    ``/{split}/{key}_values``. Its ``missingness_mask`` (the complement of our valid mask) is not
    needed: validity is rebuilt by the same scIDPMs rule from the counts."""
    import h5py

    keys = list(dict.fromkeys([cell_type_key, *condition_keys]))
    with h5py.File(path, "r") as handle:
        if "gene_names" not in handle:
            raise CountDataError(f"{path}: no /gene_names; not the research-code HDF5 layout")
        genes = tuple(g.decode() if isinstance(g, bytes) else str(g) for g in handle["gene_names"][()])
        blocks, labels, split = [], {k: [] for k in keys}, []
        for group, name in RESEARCH_SPLITS.items():
            if group not in handle:
                raise CountDataError(f"{path}: missing group /{group}")
            available = [k[: -len("_values")] for k in handle[group] if k.endswith("_values")]
            check_condition_keys(available, keys)
            counts = handle[group]["counts"][()]
            if counts.size and (counts.min() < 0 or np.any(counts != np.round(counts))):
                raise CountDataError(f"{path}: /{group}/counts are not non-negative integers")
            blocks.append(sp.csr_matrix(counts.astype(np.int64)))
            for key in keys:
                values = handle[group][f"{key}_values"][()]
                labels[key].append(np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values]))
            split.extend([name] * counts.shape[0])
    return LabelledCounts(
        counts=sp.vstack(blocks).tocsr(),
        labels={k: np.concatenate(v) for k, v in labels.items()},
        feature_names=genes,
        cell_type_key=cell_type_key,
        files=(Path(path),),
        split=np.array(split),
    )
