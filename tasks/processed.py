"""The processed scRNA-seq dataset file that `countsbench prepare` writes and atlas tasks read.

One ``.h5ad`` per dataset in the data directory (``<data_dir>/<name>.h5ad``):
- ``X``: CSR integer counts of the selected genes (``var_names`` are the genes);
- ``obs``: the condition keys as strings and ``countsbench_split`` in {train, valid, test};
- ``uns["countsbench"]``: format version, dataset name, cell-type key, condition keys and the
  preprocessing parameters.
Vocabularies and the dropout rule are rebuilt from these when a task loads (training split first).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from countsbench.data import CountDataError
from countsbench.task import TaskDataMissing
from countsbench.tasks.scrna import SPLITS, LabelledCounts

FORMAT_VERSION = 1
SPLIT_COLUMN = "countsbench_split"


def write_processed(path: Path, dataset: LabelledCounts, name: str, preprocessing: Mapping[str, object]) -> Path:
    """Write ``dataset`` (with its split) as a processed h5ad, atomically."""
    import anndata
    import pandas as pd

    if dataset.split is None:
        raise CountDataError("a processed dataset needs its train/valid/test split")
    obs = pd.DataFrame({key: np.asarray(v).astype(str) for key, v in dataset.labels.items()})
    obs[SPLIT_COLUMN] = np.asarray(dataset.split).astype(str)
    obs.index = [f"cell{i}" for i in range(len(obs))]
    counts = sp.csr_matrix(dataset.counts)
    adata = anndata.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=list(dataset.feature_names)))
    adata.uns["countsbench"] = {
        "format_version": FORMAT_VERSION,
        "dataset": name,
        "cell_type_key": dataset.cell_type_key,
        "condition_keys": list(dataset.labels),
        "preprocessing": {k: str(v) for k, v in preprocessing.items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    adata.write_h5ad(tmp)
    tmp.replace(path)
    return path


def read_processed(path: Path) -> LabelledCounts:
    """Read a processed h5ad back; counts stay CSR (int32 where they fit)."""
    import anndata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        adata = anndata.read_h5ad(path)
    meta = adata.uns.get("countsbench")
    if meta is None or int(meta.get("format_version", -1)) != FORMAT_VERSION:
        raise CountDataError(f"{path} is not a countsbench processed dataset (run `countsbench prepare`)")
    counts = sp.csr_matrix(adata.X)
    if counts.nnz and counts.data.max() < 2**31:
        counts.data = counts.data.astype(np.int32)
    split = adata.obs[SPLIT_COLUMN].astype(str).to_numpy()
    unknown = sorted(set(split) - set(SPLITS))
    if unknown:
        raise CountDataError(f"{path}: unknown split labels {unknown}")
    return LabelledCounts(
        counts=counts,
        labels={key: adata.obs[key].astype(str).to_numpy() for key in meta["condition_keys"]},
        feature_names=tuple(adata.var_names.astype(str)),
        cell_type_key=str(meta["cell_type_key"]),
        files=(Path(path),),
        split=split,
        cell_names=tuple(adata.obs_names.astype(str)),
    )


def processed_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / f"{name}.h5ad"


def require_processed(data_dir: Path, name: str, how_to_obtain: str) -> Path:
    """The processed file's path, or a `TaskDataMissing` saying exactly how to make it."""
    path = processed_path(data_dir, name)
    if not path.exists():
        raise TaskDataMissing(f"{path} not found. {how_to_obtain}")
    return path
