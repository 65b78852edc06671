"""Atlas preprocessing, the processed format, the research-code HDF5 layout and the synthetic atlas."""

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from countsbench.cli import main
from countsbench.data import CountData, CountDataError, ExpressedValidity, expressed_table
from countsbench.registry import REGISTRY
from countsbench.task import TaskDataMissing
from countsbench.tasks.atlas import FETAL
from countsbench.tasks.masks import dropout_valid_mask
from countsbench.tasks.preprocess import preprocess, read_research_hdf5, select_genes
from countsbench.tasks.processed import read_processed, write_processed
from countsbench.tasks.synthetic import AtlasSimulator

FETAL_KEYS = {"disease": ["healthy", "trisomy"], "sex": ["F", "M"], "batch": ["b1", "b2"], "development_day": ["89"]}


def fake_fetal_adata(n_cells=400, n_genes=60, seed=0) -> anndata.AnnData:
    """Raw counts with 4 cell types; genes 0-9 are type-specific (high CV), the rest flat Poisson."""
    rng = np.random.default_rng(seed)
    types = np.array([f"t{i % 4}" for i in range(n_cells)])
    means = np.full((n_cells, n_genes), 1.5)
    for g in range(10):
        means[:, g] = np.where(types == f"t{g % 4}", 20.0, 0.05)
    counts = rng.poisson(means)
    counts[:, -1] = 0
    counts[:3, -1] = 1  # expressed in only 3 cells: removed by the min_cells filter
    obs = pd.DataFrame({"cell_type": types}, index=[f"c{i}" for i in range(n_cells)])
    for key, values in FETAL_KEYS.items():
        obs[key] = rng.choice(values, n_cells)
    return anndata.AnnData(
        X=sp.csr_matrix(counts.astype(np.float32)), obs=obs, var=pd.DataFrame(index=[f"G{j}" for j in range(n_genes)])
    )


def test_gene_selection_keeps_the_most_variable_expressed_genes():
    adata = fake_fetal_adata()
    kept = select_genes(sp.csr_matrix(adata.X), n_genes=10, min_cells=10)
    np.testing.assert_array_equal(kept, np.arange(10))
    with pytest.raises(CountDataError, match="only 59 genes"):
        select_genes(sp.csr_matrix(adata.X), n_genes=60, min_cells=10)


def test_preprocess_splits_and_labels():
    adata = fake_fetal_adata()
    dataset = preprocess(adata, cell_type_key="cell_type", condition_keys=FETAL.condition_keys, n_genes=20)
    assert dataset.counts.shape == (400, 20) and sp.issparse(dataset.counts)
    sizes = {name: int(np.sum(dataset.split == name)) for name in ("train", "valid", "test")}
    assert sizes == {"train": 320, "valid": 40, "test": 40}
    assert set(dataset.labels) == set(FETAL.condition_keys)


def test_preprocess_errors():
    adata = fake_fetal_adata()
    with pytest.raises(CountDataError, match=r"condition keys \['sex'\] not in obs"):
        preprocess(
            anndata.AnnData(X=adata.X, obs=adata.obs.drop(columns="sex"), var=adata.var),
            cell_type_key="cell_type",
            condition_keys=FETAL.condition_keys,
            n_genes=20,
        )
    fractional = adata.copy()
    fractional.X = fractional.X * 0.5
    with pytest.raises(CountDataError, match="raw integer counts"):
        preprocess(fractional, cell_type_key="cell_type", condition_keys=FETAL.condition_keys, n_genes=20)
    with pytest.raises(CountDataError, match="layer 'counts' not found"):
        preprocess(adata, cell_type_key="cell_type", condition_keys=(), n_genes=20, layer="counts")


def test_validity_rule_equals_the_dense_mask_and_tasks_share_vocabularies(tmp_path):
    adata = fake_fetal_adata()
    dataset = preprocess(adata, cell_type_key="cell_type", condition_keys=FETAL.condition_keys, n_genes=20)
    path = write_processed(tmp_path / "fetal.h5ad", dataset, "fetal", {"n_genes": 20})
    task = REGISTRY.tasks.get("fetal_mnar").factory()
    data = task.load(tmp_path)
    assert isinstance(data.train.valid, ExpressedValidity) and data.train.is_sparse
    assert read_processed(path).counts.dtype == np.int32
    full = sp.vstack([data.train.counts, data.valid.counts, data.test.counts]).toarray()
    types = np.concatenate([d.conditions["cell_type"] for d in (data.train, data.valid, data.test)])
    dense = np.vstack([d.valid_mask() for d in (data.train, data.valid, data.test)])
    np.testing.assert_array_equal(dense, dropout_valid_mask(full, types))
    for split in (data.valid, data.test):
        assert split.vocabularies == data.train.vocabularies
    assert not np.any(data.test_target & ~data.test.valid_mask())


def test_hiding_targets_keeps_their_validity():
    counts = sp.csr_matrix(np.array([[3, 0], [0, 2]]))
    rule = ExpressedValidity(expressed_table(counts, np.array([0, 0]), 1), np.array([0, 0]))
    data = CountData(counts=counts, valid=rule)
    np.testing.assert_array_equal(data.valid_mask(), [[True, False], [False, True]])
    hidden = data.with_hidden(np.array([[True, False], [False, False]]))
    assert hidden.dense()[0, 0] == 0 and hidden.valid_mask()[0, 0]  # still valid: it is a target


def write_research_layout(path, adata, genes=12):
    """The authors' HDF5 layout: /gene_names, /{train,val,test}/counts, missingness_mask, {key}_values."""
    counts = np.asarray(adata.X.todense())[:, :genes].astype(np.float32)
    parts = {"train": slice(0, 300), "val": slice(300, 350), "test": slice(350, 400)}
    with h5py.File(path, "w") as handle:
        handle["gene_names"] = np.array([f"G{j}".encode() for j in range(genes)])
        for group, rows in parts.items():
            handle[f"{group}/counts"] = counts[rows]
            handle[f"{group}/missingness_mask"] = counts[rows] == 0
            for key in FETAL.condition_keys:
                handle[f"{group}/{key}_values"] = adata.obs[key].to_numpy()[rows].astype("S")


def test_research_hdf5_layout_is_read(tmp_path):
    adata = fake_fetal_adata()
    write_research_layout(tmp_path / "fetal_research.h5", adata)
    dataset = read_research_hdf5(tmp_path / "fetal_research.h5", "cell_type", FETAL.condition_keys)
    assert dataset.counts.shape == (400, 12) and dataset.feature_names[0] == "G0"
    assert list(np.unique(dataset.split, return_counts=True)[1]) == [50, 300, 50]
    np.testing.assert_array_equal(dataset.labels["cell_type"], adata.obs["cell_type"].to_numpy())


def test_prepare_run_leaderboard_on_a_real_format_file(tmp_path, results_dir, capsys):
    raw = tmp_path / "raw.h5ad"
    fake_fetal_adata().write_h5ad(raw)
    data_dir = tmp_path / "data"
    assert main(["prepare", "fetal", "--input", str(raw), "--n-genes", "20", "--data-dir", str(data_dir)]) == 0
    for task in ("fetal_mcar", "fetal_mnar"):
        assert (
            main(
                [
                    "run",
                    "--method",
                    "conditional_mean",
                    "--task",
                    task,
                    "--data-dir",
                    str(data_dir),
                    "--results-dir",
                    str(results_dir),
                ]
            )
            == 0
        )
    assert main(["leaderboard", "--task", "fetal_mnar", "--results-dir", str(results_dir), "--format", "csv"]) == 0
    assert "conditional_mean" in capsys.readouterr().out
    write_research_layout(tmp_path / "research.h5", fake_fetal_adata())
    assert main(["prepare", "fetal", "--input", str(tmp_path / "research.h5"), "--data-dir", str(data_dir)]) == 0
    assert read_processed(data_dir / "fetal.h5ad").counts.shape == (400, 12)


def test_missing_atlas_says_what_to_do(tmp_path, capsys):
    with pytest.raises(TaskDataMissing, match="countsbench prepare heart --input"):
        REGISTRY.tasks.get("heart_mcar").factory().load(tmp_path)
    assert main(["run", "--method", "mean", "--task", "heart_mcar", "--data-dir", str(tmp_path)]) == 2
    assert "heartcellatlas" in capsys.readouterr().err
    assert main(["prepare", "heart", "--data-dir", str(tmp_path)]) == 2


def test_synthetic_atlas_statistics():
    simulator = AtlasSimulator()
    dataset = simulator.simulate(20_000, 300, seed=1)
    counts = dataset.counts
    zeros = 1 - counts.nnz / np.prod(counts.shape)
    assert 0.8 < zeros < 0.95  # atlas-like sparsity
    dense = counts.toarray().astype(float)
    mean, var = dense.mean(axis=0), dense.var(axis=0)
    assert np.median(var[mean > 0.5] / mean[mean > 0.5]) > 1.5  # over-dispersed (negative binomial)
    types = dataset.labels["cell_type"]
    per_type = np.stack([dense[types == t].mean(axis=0) for t in np.unique(types)])
    assert np.mean(per_type.max(axis=0) / np.maximum(per_type.min(axis=0), 1e-3) > 4) > 0.2  # programmes
    again = simulator.simulate(20_000, 300, seed=1)
    assert (again.counts != counts).nnz == 0
    assert abs(np.mean(dataset.split == "test") - 0.1) < 0.01


def test_countsdiff_trains_and_imputes_on_a_sparse_atlas(tmp_path, results_dir, monkeypatch):
    """...without ever densifying the (sparse, 320-cell) training split whole."""
    from countsbench.runner import CellRequest, run_cell

    def guarded(method):
        def call(self, rows=None):
            if rows is None and self.is_sparse and self.n_samples >= 300:
                raise AssertionError(f"{method.__name__}() of a whole sparse split")
            return method(self, rows)

        return call

    monkeypatch.setattr(CountData, "dense", guarded(CountData.dense))
    monkeypatch.setattr(CountData, "valid_mask", guarded(CountData.valid_mask))
    dataset = preprocess(fake_fetal_adata(), cell_type_key="cell_type", condition_keys=FETAL.condition_keys, n_genes=20)
    write_processed(tmp_path / "fetal.h5ad", dataset, "fetal", {})
    tiny = {"steps": "5", "n_steps": "3", "dim": "8", "n_layers": "1", "batch_size": "16", "output_scale": "true"}
    request = CellRequest("countsdiff", "fetal_mcar", overrides=tiny, device="cpu")
    result = run_cell(request, results_dir, data_dir=tmp_path, track=False)
    assert result["status"] == "ok", result["error"]
    assert result["config"]["n_steps"] == 3 and result["config"]["output_scale"] and result["metrics"]["rmse"] > 0
