"""A user's files checked before any work: every problem is one `CountDataError` naming the argument
and what would be accepted (the CLI prints it as one ``countsbench: error: ...`` line, exit 2).

- `read_h5ad`: exists, is a file, is readable, is an .h5ad anndata can read.
- `check_anndata`: at least one cell and one gene, unique gene names, the chosen layer, condition
  labels neither missing (NaN) nor empty.
- `check_mask_layer`: a layer of the input's shape holding booleans or finite numbers.
- `writable_file` / `writable_directory`: the output's directory can be created and written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from countsbench.data import CountDataError


def read_h5ad(path: Path, argument: str = "--input"):
    path = Path(path)
    if not path.exists():
        raise CountDataError(f"{argument} {path} does not exist; give an .h5ad file")
    if not path.is_file():
        raise CountDataError(f"{argument} {path} is a directory, not an .h5ad file")
    if not os.access(path, os.R_OK):
        raise CountDataError(f"{argument} {path} is not readable (permission denied)")
    import anndata

    try:
        return anndata.read_h5ad(path)
    except Exception as error:  # h5py/anndata raise many types for truncated or foreign files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CountDataError(f"{argument} {path} is not a readable .h5ad file ({reason[:200]})") from None


def check_anndata(adata, argument: str = "--input", layer: str | None = None, keys: Sequence[str] = ()) -> None:
    n_cells, n_genes = adata.shape
    if n_cells == 0 or n_genes == 0:
        raise CountDataError(f"{argument} has {n_cells} cells x {n_genes} genes; at least one of each is needed")
    names = adata.var_names
    if not names.is_unique:
        duplicated = sorted(set(names[names.duplicated()].astype(str)))
        raise CountDataError(
            f"{argument} has duplicated gene names (e.g. {', '.join(duplicated[:5])}); genes are matched by name, "
            "so make them unique (anndata's var_names_make_unique)"
        )
    if layer is not None and layer not in adata.layers:
        raise CountDataError(f"--layer {layer!r} not found in {argument}; layers: {', '.join(adata.layers) or 'none'}")
    for key in keys:
        if key not in adata.obs.columns:
            continue  # reported with the available columns where the keys are read
        labels = adata.obs[key]
        missing = int(labels.isna().sum())
        empty = int((labels.astype(str).str.strip() == "").sum()) if not missing else 0
        if missing or empty:
            what = f"{missing} missing (NaN)" if missing else f"{empty} empty"
            raise CountDataError(f"condition column {key!r} of {argument} has {what} labels; every cell needs one")


def check_mask_layer(adata, name: str) -> None:
    if name not in adata.layers:
        raise CountDataError(f"--mask-layer {name!r} not found; layers: {', '.join(adata.layers) or 'none'}")
    mask = adata.layers[name]
    if tuple(mask.shape) != tuple(adata.shape):
        raise CountDataError(f"--mask-layer {name!r} has shape {tuple(mask.shape)}, expected {tuple(adata.shape)}")
    values = mask.data if sp.issparse(mask) else np.asarray(mask)
    if values.dtype.kind not in "biuf":
        raise CountDataError(f"--mask-layer {name!r} has dtype {values.dtype}; expected booleans or numbers")
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise CountDataError(f"--mask-layer {name!r} contains NaN or infinite values; expected 0/1 or booleans")


def _check_directory_writable(directory: Path, argument: str, path: Path) -> None:
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise CountDataError(f"{argument} {path}: {existing} is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".countsbench-write-test-"):
            pass
    except OSError as error:
        raise CountDataError(f"{argument} {path} cannot be written ({error.strerror or error})") from None


def writable_file(path: Path, argument: str = "--output") -> Path:
    """An output file whose directory exists (or can be created) and is writable; not a directory."""
    path = Path(path)
    if path.is_dir():
        raise CountDataError(f"{argument} {path} is a directory; give a file name (e.g. imputed.h5ad)")
    _check_directory_writable(path.parent if str(path.parent) else Path("."), argument, path)
    return path


def writable_directory(path: Path, argument: str = "--output") -> Path:
    """An output directory that exists or can be created, and is writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CountDataError(f"{argument} {path} is a file; give a directory to write the model into")
    _check_directory_writable(path, argument, path)
    return path
