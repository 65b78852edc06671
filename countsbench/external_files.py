"""Reading another tool's output file (.h5ad or .npz) for `countsbench evaluate --samples`.

What is read, before any matching to a task (`countsbench.external`):

- ``.h5ad`` (AnnData): the matrix is ``X``, or the layer named by ``layer``; a ``layer`` ending in
  ``*`` takes every layer with that prefix as the K draws of a multiple imputation, in the order of
  their numeric suffix. Without ``layer``, a file holding the ``countsbench_sample_<k>`` layers that
  `countsbench impute` writes (`countsbench.api.imputed_anndata`) is read as those K draws, any
  other as ``X``. Gene names are ``var_names``, cell names ``obs_names``, labels the ``obs`` columns.
- ``.npz`` (numpy): the matrix is the array named by ``layer``, else the first of `MATRIX_KEYS`
  present, else the only array of two or more dimensions: (cells, genes), (K, cells, genes), or
  (cells, *sample_shape) for image tasks. Optional string arrays: ``var_names`` (or ``genes``),
  ``obs_names`` (or ``cells``), and one per condition key (``bulk_labels``, ``label``), a label per row.

Every failure is an `ExternalFileError` (a `CountDataError`: one line, exit 2 on the command line).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from countsbench.data import CountDataError

FORMATS = {".h5ad": "h5ad", ".npz": "npz"}
#: The matrix of an .npz when ``layer`` is not given (``outputs``: what `countsbench run` saves).
MATRIX_KEYS = ("samples", "imputations", "denoised", "outputs", "X")
GENE_KEYS = ("var_names", "genes")
CELL_KEYS = ("obs_names", "cells")
#: The layers `countsbench impute` writes, one per imputation.
IMPUTE_SAMPLE_LAYERS = "countsbench_sample_*"


class ExternalFileError(CountDataError):
    """A samples file that is missing, unreadable or not what `countsbench evaluate --samples` reads."""


@dataclass
class ExternalFile:
    """A file's matrix as read: ``values`` is (rows, features) or (K, rows, features) (or an image
    shape), not yet checked against any task. ``genes`` / ``cells``: names when the file has them."""

    path: Path
    format: str
    values: np.ndarray
    source: str  # "X", a layer, the layers matched by a pattern, or an npz array name
    genes: tuple[str, ...] | None = None
    cells: tuple[str, ...] | None = None
    labels: dict[str, np.ndarray] = field(default_factory=dict)


def read_external(path: Path, layer: str | None = None) -> ExternalFile:
    """Read ``path`` (.h5ad or .npz); see the module docstring for which matrix is taken."""
    path = Path(path)
    if not path.exists():
        raise ExternalFileError(f"samples file {path} does not exist")
    if not path.is_file():
        raise ExternalFileError(f"samples file {path} is not a file")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ExternalFileError(f"samples file {path} is neither .h5ad nor .npz (by its suffix {path.suffix!r})")
    return _read_h5ad(path, layer) if kind == "h5ad" else _read_npz(path, layer)


def _read_h5ad(path: Path, layer: str | None) -> ExternalFile:
    import anndata

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            adata = anndata.read_h5ad(path)
    except Exception as error:  # h5py, anndata and OS errors alike: the file cannot be read as AnnData
        raise ExternalFileError(f"cannot read {path} as .h5ad ({type(error).__name__}: {error})") from error
    layers = list(adata.layers)
    if layer is None and _matching(layers, IMPUTE_SAMPLE_LAYERS):
        layer = IMPUTE_SAMPLE_LAYERS
    if layer is None or layer == "X":
        if adata.X is None:
            raise ExternalFileError(f"{path} has no X; give --layer (layers: {', '.join(layers) or 'none'})")
        values, source = _dense(adata.X), "X"
    elif layer.endswith("*"):
        names = _matching(layers, layer)
        if not names:
            raise ExternalFileError(f"no layer of {path} matches {layer!r}; layers: {', '.join(layers) or 'none'}")
        values, source = np.stack([_dense(adata.layers[name]) for name in names]), ",".join(names)
    elif layer in adata.layers:
        values, source = _dense(adata.layers[layer]), layer
    else:
        raise ExternalFileError(f"layer {layer!r} not found in {path}; layers: {', '.join(layers) or 'none'}")
    labels = {str(key): adata.obs[key].astype(str).to_numpy() for key in adata.obs.columns}
    return ExternalFile(
        path,
        "h5ad",
        values,
        source,
        genes=tuple(map(str, adata.var_names)),
        cells=tuple(map(str, adata.obs_names)),
        labels=labels,
    )


def _matching(layers: list[str], pattern: str) -> list[str]:
    """Layers starting with ``pattern`` less its ``*``, ordered by their trailing number (then name)."""
    prefix = pattern[:-1]

    def order(name: str) -> tuple[int, str]:
        found = re.search(r"(\d+)$", name)
        return (int(found.group(1)) if found else -1, name)

    return sorted((name for name in layers if name.startswith(prefix)), key=order)


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def _read_npz(path: Path, layer: str | None) -> ExternalFile:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ExternalFileError(
                f"{path} holds object arrays; save names as string arrays (np.array(names, dtype=str))"
            ) from error
        raise ExternalFileError(f"cannot read {path} as .npz ({type(error).__name__}: {error})") from error
    except Exception as error:  # zipfile, OS errors: not an npz archive
        raise ExternalFileError(f"cannot read {path} as .npz ({type(error).__name__}: {error})") from error
    names = ", ".join(arrays) or "none"
    if layer is not None:
        if layer not in arrays:
            raise ExternalFileError(f"array {layer!r} not found in {path}; arrays: {names}")
        key = layer
    else:
        key = next((k for k in MATRIX_KEYS if k in arrays), None)
        if key is None:
            candidates = [k for k, v in arrays.items() if v.ndim >= 2 and v.dtype.kind in "biuf"]
            if len(candidates) != 1:
                raise ExternalFileError(
                    f"cannot tell which array of {path} holds the values (arrays: {names}); "
                    f"name it {MATRIX_KEYS[0]!r} or give --layer"
                )
            key = candidates[0]
    genes, cells = _names(arrays, GENE_KEYS, path), _names(arrays, CELL_KEYS, path)
    skip = {key, *GENE_KEYS, *CELL_KEYS}
    labels = {k: v.astype(str) for k, v in arrays.items() if k not in skip and v.ndim == 1}
    return ExternalFile(path, "npz", arrays[key], key, genes=genes, cells=cells, labels=labels)


def _names(arrays: dict[str, np.ndarray], keys: tuple[str, ...], path: Path) -> tuple[str, ...] | None:
    key = next((k for k in keys if k in arrays), None)
    if key is None:
        return None
    if arrays[key].ndim != 1:
        raise ExternalFileError(f"{path}: {key!r} must be a 1-D array of names, got shape {arrays[key].shape}")
    return tuple(map(str, arrays[key]))
