"""Python API for a user's own data: fit a registered method on an AnnData and impute with it.

    model = countsbench.api.fit(adata, method="countsdiff", condition_keys=["cell_type"])
    model.save("my_model")
    model = countsbench.api.FittedModel.load("my_model")
    samples = model.impute(other_adata, impute_zeros=True, n_samples=5)   # (K, cells, genes) int64
    result = model.impute_anndata(other_adata, impute_zeros=True, n_samples=5)  # AnnData with layers:
    # countsbench_imputed (the K-sample mean) and countsbench_sample_0..K-1 (each imputation)

The ``countsbench fit`` and ``countsbench impute`` commands are thin wrappers over this module.
Genes are matched by name against the model's; cells are imputed in batches, so a large sparse
file is never densified whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from countsbench.config import resolve_config
from countsbench.context import RunContext, resolve_device, seed_everything
from countsbench.data import CountData, CountDataError, ExpressedValidity, encode_categories, expressed_table
from countsbench.method import Method
from countsbench.registry import REGISTRY, RegistryError
from countsbench.runner import check_imputation
from countsbench.safe_io import UnsafeFileError, tree_checksums, verify_checksums, write_atomic
from countsbench.task import TaskInfo

MANIFEST = "countsbench_model.json"
VALID_FRACTION = 0.1


def _counts(adata, layer: str | None) -> sp.csr_matrix:
    if layer is not None and layer not in adata.layers:
        raise CountDataError(f"layer {layer!r} not found; layers: {', '.join(adata.layers) or 'none'}")
    return sp.csr_matrix(adata.layers[layer] if layer is not None else adata.X)


def _labels(adata, keys: Sequence[str]) -> dict[str, np.ndarray]:
    missing = [k for k in keys if k not in adata.obs.columns]
    if missing:
        raise CountDataError(f"condition keys {missing} not in obs; available: {', '.join(adata.obs.columns)}")
    return {k: adata.obs[k].astype(str).to_numpy() for k in keys}


@dataclass
class FittedModel:
    """A fitted method with what it needs to read new data: genes, condition keys, vocabularies."""

    method_name: str
    config: dict[str, Any]
    method: Method
    genes: tuple[str, ...]
    vocabularies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cell_type_key: str | None = None
    expressed: np.ndarray | None = None  # (cell types x genes) table of the dropout rule

    def save(self, directory: Path) -> Path:
        """The method (JSON and arrays, no pickle), the dropout table, then the manifest with every file's
        sha256, each written atomically: a directory cut short is refused on load, never half-read."""
        directory = Path(directory)
        self.method.save(directory / "method")
        expressed = directory / "expressed.npy"
        if self.expressed is not None:
            write_atomic(expressed, lambda path: _save_array(path, self.expressed))
        else:
            expressed.unlink(missing_ok=True)
        manifest = {
            "method": self.method_name,
            "config": self.config,
            "genes": list(self.genes),
            "vocabularies": {k: list(v) for k, v in self.vocabularies.items()},
            "cell_type_key": self.cell_type_key,
            "sha256": tree_checksums(directory, exclude=(MANIFEST,)),
        }
        write_atomic(directory / MANIFEST, lambda path: path.write_text(json.dumps(manifest, indent=2)))
        return directory

    @classmethod
    def load(cls, directory: Path) -> FittedModel:
        """A model saved by `save`; a directory that is not one, is damaged, or asks to run code gives
        `UnsafeFileError` naming it (nothing in it is executed: JSON, raw arrays, tensor-only weights)."""
        directory = Path(directory)
        if not (directory / MANIFEST).is_file():
            raise CountDataError(f"{directory} is not a countsbench model directory (no {MANIFEST})")
        REGISTRY.load_builtins()
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
            if "sha256" in manifest:  # models saved before checksums were recorded have none
                verify_checksums(directory, manifest["sha256"], exclude=(MANIFEST,))
            method = REGISTRY.methods.get(manifest["method"]).cls.load(directory / "method")
            path = directory / "expressed.npy"
            expressed = np.load(path, allow_pickle=False) if path.exists() else None
            return cls(
                manifest["method"],
                manifest["config"],
                method,
                tuple(manifest["genes"]),
                {k: tuple(v) for k, v in manifest["vocabularies"].items()},
                manifest["cell_type_key"],
                expressed,
            )
        except UnsafeFileError as error:
            raise UnsafeFileError(f"model {directory}: {error}") from None
        except Exception as error:  # truncated JSON, weights that are not tensors only, missing keys
            raise UnsafeFileError(f"model {directory} cannot be loaded ({type(error).__name__}: {error})") from None

    def to_count_data(self, adata, layer: str | None = None) -> CountData:
        """The model's genes of ``adata`` (by name) as `CountData` coded with the model's vocabularies."""
        names = list(map(str, adata.var_names))
        index = {g: j for j, g in enumerate(names)}
        missing = [g for g in self.genes if g not in index]
        if missing:
            raise CountDataError(
                f"{len(missing)} of the model's {len(self.genes)} genes are not in the input "
                f"(e.g. {', '.join(missing[:5])}); genes are matched by name"
            )
        counts = _counts(adata, layer)[:, [index[g] for g in self.genes]].tocsr()
        labels = _labels(adata, list(self.vocabularies))
        conditions = {}
        for key, values in labels.items():
            (codes,), _ = encode_categories([values], self.vocabularies[key])
            conditions[key] = codes
        valid = None
        if self.cell_type_key is not None:
            valid = ExpressedValidity(self.expressed, conditions[self.cell_type_key])
        return CountData(counts, valid, conditions, self.vocabularies, self.genes)

    def impute(
        self,
        adata,
        *,
        layer: str | None = None,
        mask: np.ndarray | sp.spmatrix | None = None,
        impute_zeros: bool = False,
        n_samples: int | None = None,
        seed: int = 0,
        device: str = "auto",
        batch_cells: int = 4096,
    ) -> np.ndarray:
        """(n_samples, cells, model genes) integer imputations; observed entries unchanged.

        Targets are the True entries of ``mask`` (cells x model genes), or every zero when
        ``impute_zeros``. Targets always count as valid (SPEC section 4, step 5). ``n_samples`` is
        authoritative; without it, the model's ``n_samples`` hyperparameter (1 for methods without one).
        """
        if (mask is None) == (not impute_zeros):
            raise CountDataError("give exactly one of a mask or impute_zeros")
        if n_samples is None:
            n_samples = int(self.config.get("n_samples", 1))
        if n_samples > 1 and "n_samples" not in self.config:
            raise CountDataError(f"{self.method_name} gives a single imputation; n_samples must be 1")
        data = self.to_count_data(adata, layer)
        if mask is not None and tuple(mask.shape) != data.counts.shape:
            raise CountDataError(f"mask shape {tuple(mask.shape)} != (cells, model genes) {data.counts.shape}")
        ctx = RunContext(seed=seed, device=resolve_device(device))
        seed_everything(seed)
        out = np.empty((n_samples, *data.counts.shape), dtype=np.int64)
        for start in ctx.progress(range(0, data.n_samples, batch_cells), desc="imputing"):
            rows = np.arange(start, min(start + batch_cells, data.n_samples))
            batch = data.subset(rows)
            if impute_zeros:
                target = batch.dense() == 0
            else:
                target = mask[rows].toarray() if sp.issparse(mask) else np.asarray(mask[rows])
                target = target.astype(bool)
            hidden = batch.with_hidden(target)
            hidden = CountData(
                hidden.counts,
                hidden.valid_mask() | target,
                hidden.conditions,
                hidden.vocabularies,
                hidden.feature_names,
            )
            result = self.method.impute(hidden, target, ctx, n_samples=n_samples)
            out[:, rows] = check_imputation(result, hidden, target, n_samples)
        return out

    def impute_anndata(self, adata, *, layer: str | None = None, **options: Any):
        """`impute` as AnnData in, AnnData out: a copy of ``adata`` with the layers of `imputed_anndata`
        (``options`` are `impute`'s: mask, impute_zeros, n_samples, seed, device, batch_cells)."""
        return imputed_anndata(adata, self, self.impute(adata, layer=layer, **options), layer)


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def fit(
    adata,
    method: str = "countsdiff",
    *,
    layer: str | None = None,
    condition_keys: Sequence[str] = (),
    cell_type_key: str | None = None,
    profile: str = "quick",
    overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    log: Callable[[str], object] | None = None,
) -> FittedModel:
    """Fit ``method`` on the cells of ``adata``.

    Every cell is trained on, unless the method tunes on a validation split (`Method.needs_validation`,
    e.g. MAGIC with ``knn=None``): then a seeded 10% is held out for it. With ``cell_type_key``, dropout
    zeros (scIDPMs rule within each cell type) are not trained on. ``log`` receives a start line.
    """
    REGISTRY.load_builtins()
    spec = REGISTRY.methods.get(method)
    if "imputation" not in spec.kinds:
        raise RegistryError(f"method {method!r} does not impute")
    keys = list(dict.fromkeys([*condition_keys, *([cell_type_key] if cell_type_key else [])]))
    counts = _counts(adata, layer)
    labels = _labels(adata, keys)
    info = TaskInfo("user", "imputation", counts.shape[1], (counts.shape[1],), tuple(keys), None)
    config = resolve_config(spec.cls, profile, spec.cls.defaults_for(profile, info, overrides or {}), overrides or {})
    instance = spec.cls(**config)
    held_out = (
        np.random.default_rng(seed).random(counts.shape[0]) < VALID_FRACTION
        if instance.needs_validation()
        else np.zeros(counts.shape[0], dtype=bool)
    )
    codes, vocabularies = {}, {}
    for key, values in labels.items():
        _, vocabularies[key] = encode_categories([values[~held_out]])
        (codes[key],), _ = encode_categories([values], vocabularies[key])
    expressed = None
    valid = None
    if cell_type_key is not None:
        expressed = expressed_table(counts, codes[cell_type_key], len(vocabularies[cell_type_key]))
        valid = ExpressedValidity(expressed, codes[cell_type_key])
    genes = tuple(map(str, adata.var_names))
    data = CountData(counts, valid, codes, vocabularies, genes)
    train, valid_split = data.subset(~held_out), (data.subset(held_out) if held_out.any() else None)
    ctx = RunContext(seed=seed, device=resolve_device(device), profile=profile)
    if log is not None:
        steps = f", {config['steps']} training steps" if "steps" in config else ""
        split = (
            f"{train.n_samples} cells ({int(held_out.sum())} held out for tuning)"
            if held_out.any()
            else (f"all {train.n_samples} cells")
        )
        log(
            f"countsbench: fitting {method} ({profile} profile{steps}) on {split} x {data.n_features} genes, "
            f"conditions: {', '.join(keys) or 'none'}, device {ctx.device}"
        )
    seed_everything(seed)
    instance.fit(train, valid_split, ctx)
    return FittedModel(method, config, instance, genes, vocabularies, cell_type_key, expressed)


def imputed_anndata(adata, model: FittedModel, samples: np.ndarray, layer: str | None):
    """A copy of ``adata`` with layers ``countsbench_imputed`` (the K-sample mean) and
    ``countsbench_sample_<k>`` (each imputation); genes outside the model keep their input values.
    Earlier ``countsbench_*`` layers of ``adata`` are dropped, so none is stale."""
    base = _counts(adata, layer).astype(np.float64).tocsc()
    names = {g: j for j, g in enumerate(map(str, adata.var_names))}
    columns = [names[g] for g in model.genes]
    others = sorted(set(range(base.shape[1])) - set(columns))
    order = np.argsort(others + columns)  # where each input column sits in [others | model genes]
    result = adata.copy()
    for name in [name for name in result.layers if name.startswith("countsbench_")]:
        del result.layers[name]

    def full(values: np.ndarray) -> sp.csr_matrix:
        return sp.hstack([base[:, others], sp.csc_matrix(values)], format="csc")[:, order].tocsr()

    result.layers["countsbench_imputed"] = full(samples.mean(axis=0))
    for k, sample in enumerate(samples):
        result.layers[f"countsbench_sample_{k}"] = full(sample.astype(np.float64))
    result.uns["countsbench_imputation"] = {"method": model.method_name, "n_samples": int(samples.shape[0])}
    return result


def write_imputations(adata, model: FittedModel, samples: np.ndarray, layer: str | None, output: Path) -> Path:
    """`imputed_anndata` written to ``output`` (.h5ad)."""
    result = imputed_anndata(adata, model, samples, layer)
    return write_atomic(Path(output), result.write_h5ad, suffix=".h5ad")  # atomic: --output may equal --input
