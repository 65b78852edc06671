"""A user's own AnnData: `countsbench fit` / `countsbench impute` and the Python API."""

import re
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from countsbench import api
from countsbench.cli import main
from countsbench.data import CountDataError


def user_adata(n_cells=200, n_genes=15, seed=0) -> anndata.AnnData:
    rng = np.random.default_rng(seed)
    types = rng.choice(["T", "B"], n_cells)
    means = np.where((types == "T")[:, None], 6.0, 1.0) * np.ones(n_genes)
    counts = rng.poisson(means)
    obs = pd.DataFrame(
        {"cell_type": types, "donor": rng.choice(["d1", "d2"], n_cells)}, index=[f"c{i}" for i in range(n_cells)]
    )
    return anndata.AnnData(X=sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))


def test_api_fit_save_load_impute(tmp_path):
    adata = user_adata()
    model = api.fit(adata, "conditional_mean", condition_keys=["cell_type"], cell_type_key="cell_type")
    model.save(tmp_path / "model")
    loaded = api.FittedModel.load(tmp_path / "model")
    # genes matched by name: a shuffled, larger input gives the same imputations
    shuffled = adata[:, ::-1].copy()
    mask = np.zeros(adata.shape, dtype=bool)
    mask[:, 0] = True
    out = loaded.impute(adata, mask=mask)
    assert out.shape == (1, 200, 15) and out.dtype == np.int64
    np.testing.assert_array_equal(out[0][:, 1:], adata.X.toarray()[:, 1:])  # observed entries unchanged
    t_cells = adata.obs["cell_type"].to_numpy() == "T"
    assert out[0][t_cells, 0].mean() > 4 > out[0][~t_cells, 0].mean()  # conditioned on the cell type
    reversed_out = loaded.impute(shuffled, mask=mask)  # the mask is in the model's gene order
    np.testing.assert_array_equal(reversed_out, out)


def test_api_errors(tmp_path):
    adata = user_adata()
    model = api.fit(adata, "mean")
    with pytest.raises(CountDataError, match="genes are matched by name"):
        model.impute(adata[:, 2:].copy(), impute_zeros=True)
    with pytest.raises(CountDataError, match="exactly one"):
        model.impute(adata)
    with pytest.raises(CountDataError, match="condition keys"):
        api.fit(adata, "mean", condition_keys=["tissue"])
    with pytest.raises(CountDataError, match="not a countsbench model"):
        api.FittedModel.load(tmp_path)


def test_fit_and_impute_commands(tmp_path, capsys):
    adata = user_adata()
    adata.layers["missing"] = sp.csr_matrix((np.random.default_rng(1).random(adata.shape) < 0.3).astype(np.int8))
    source = tmp_path / "mine.h5ad"
    adata.write_h5ad(source)
    model, output = str(tmp_path / "model"), str(tmp_path / "imputed.h5ad")
    keys = "cell_type,donor"
    assert (
        main(
            ["fit", "--method", "conditional_mean", "--input", str(source), "--condition-keys", keys, "--output", model]
        )
        == 0
    )
    impute = ["impute", "--model", model, "--input", str(source), "--output", output]
    assert main([*impute, "--mask-layer", "missing"]) == 0
    result = anndata.read_h5ad(output)
    imputed = result.layers["countsbench_imputed"].toarray()
    missing = adata.layers["missing"].toarray() != 0
    np.testing.assert_array_equal(imputed[~missing], adata.X.toarray()[~missing])
    assert "countsbench_sample_0" in result.layers
    capsys.readouterr()
    assert main([*impute, "--mask-layer", "nope"]) == 2
    assert "--mask-layer 'nope' not found" in capsys.readouterr().err
    assert main([*impute, "--impute-zeros", "--n-samples", "2"]) == 2  # a deterministic method: one imputation
    assert "single imputation" in capsys.readouterr().err


def test_fit_with_the_paper_profile_then_impute(tmp_path, one_thread):
    """The paper profile sets n_samples = 5: `impute` without --n-samples draws 5, --n-samples 1 draws one
    (the argument is authoritative, the hyperparameter only its default)."""
    source, model, output = tmp_path / "mine.h5ad", str(tmp_path / "model"), str(tmp_path / "imputed.h5ad")
    user_adata(n_cells=40, n_genes=70).write_h5ad(source)
    tiny = ["--set", "steps=2", "--set", "dim=8", "--set", "n_layers=1", "--set", "n_heads=2", "--set", "n_steps=3"]
    fit = ["fit", "--input", str(source), "--profile", "paper", "--condition-keys", "cell_type", "--output", model]
    assert main([*fit, *tiny]) == 0
    impute = ["impute", "--model", model, "--input", str(source), "--impute-zeros", "--output", output]
    assert main(impute) == 0
    assert [k for k in anndata.read_h5ad(output).layers if k.startswith("countsbench_sample_")] == [
        f"countsbench_sample_{k}" for k in range(5)
    ]
    assert main([*impute, "--n-samples", "1"]) == 0
    assert "countsbench_sample_1" not in anndata.read_h5ad(output).layers


def test_the_api_is_an_attribute_of_the_package():
    """The README's `import countsbench; countsbench.api.fit(...)` works without importing countsbench.api."""
    import subprocess
    import sys

    code = "import countsbench; print(callable(countsbench.api.fit), countsbench.api.FittedModel.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "FittedModel"]


def test_impute_anndata_returns_layers_and_drops_stale_ones():
    adata = user_adata()
    model = api.fit(adata, "conditional_mean", condition_keys=["cell_type"])
    mask = np.zeros(adata.shape, dtype=bool)
    mask[:, 3] = True
    adata.layers["countsbench_sample_7"] = adata.X.copy()  # left over from an earlier imputation
    result = model.impute_anndata(adata, mask=mask)
    assert sorted(k for k in result.layers if k.startswith("countsbench_")) == [
        "countsbench_imputed",
        "countsbench_sample_0",
    ]
    np.testing.assert_array_equal(result.layers["countsbench_sample_0"].toarray(), model.impute(adata, mask=mask)[0])
    assert "countsbench_sample_7" in adata.layers  # the input is not modified


def test_fit_trains_on_every_cell_unless_the_method_tunes_on_validation(capsys):
    adata = user_adata()
    lines = []
    api.fit(adata, "mean", log=lines.append)
    assert "on all 200 cells x 15 genes" in lines[0]
    lines.clear()
    api.fit(adata, "magic", overrides={"knn_grid": "5"}, log=lines.append)  # knn=None: tuned on validation
    assert "held out for tuning" in lines[0]
    lines.clear()
    api.fit(adata, "magic", overrides={"knn": 5}, log=lines.append)
    assert "on all 200 cells" in lines[0]


def test_fit_prints_a_start_line_and_documents_its_options(tmp_path, capsys):
    source = tmp_path / "mine.h5ad"
    user_adata().write_h5ad(source)
    assert main(["fit", "--method", "mean", "--input", str(source), "--output", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert "countsbench: fitting mean (quick profile) on all 200 cells x 15 genes, conditions: none, device cpu" in err
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    for option in ("--method", "--profile", "--set", "--seed", "--device", "--params"):
        assert option in text


def test_list_params_shows_hyperparameters_and_task_defaults(capsys):
    assert main(["list", "methods", "--params", "countsdiff", "--task", "pbmc_mcar"]) == 0
    rows = {line.split("│")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.count("│") > 3}
    assert "'transformer'" in rows["network"] and "'auto'" in rows["network"]  # constructor vs task default
    assert "yes" in rows["n_samples"] and "float | None" in rows["guidance"]
    assert main(["list", "methods", "--params", "nope"]) == 2


def readme_python_blocks(containing: str) -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if containing in block]


def test_the_readme_api_snippet_runs_as_written(tmp_path, monkeypatch, one_thread):
    """The README's Python block, unedited, on a small file named as it names it."""
    (block,) = readme_python_blocks("countsbench.api.fit")
    adata = user_adata(n_cells=60, n_genes=8)
    missing = np.random.default_rng(2).random(adata.shape) < 0.3
    adata.layers["missing"] = sp.csr_matrix(missing.astype(np.int8))
    adata.write_h5ad(tmp_path / "mine.h5ad")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    samples, result = namespace["samples"], namespace["result"]
    assert samples.shape == (5, 60, 8) and samples.dtype == np.int64
    observed = adata.X.toarray()
    for k in range(5):
        np.testing.assert_array_equal(samples[k][~missing], observed[~missing])
    assert [f"countsbench_sample_{k}" for k in range(5)] == sorted(
        k for k in result.layers if k.startswith("countsbench_sample_")
    )
    np.testing.assert_allclose(result.layers["countsbench_imputed"].toarray(), samples.mean(axis=0))
    written = anndata.read_h5ad(tmp_path / "imputed.h5ad")
    assert "countsbench_imputed" in written.layers
    assert api.FittedModel.load(tmp_path / "my_model").config["steps"] == 100
    # the real default the README's comment states is the one a fit without overrides gets
    from countsbench.registry import REGISTRY
    from countsbench.task import TaskInfo

    stated = int(re.search(r"quick profile: (\d+) steps, > 64 genes", block).group(1))
    info = TaskInfo("user", "imputation", 1000, (1000,), ("cell_type",), None)  # a 10x file's gene count
    assert REGISTRY.methods.get("countsdiff").cls.defaults("quick", info)["steps"] == stated


def subcommand_parsers() -> dict:
    import argparse

    from countsbench.cli import build_parser

    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("command", sorted(subcommand_parsers()))
def test_every_option_has_help(command):
    import argparse

    actions = [a for a in subcommand_parsers()[command]._actions if not isinstance(a, argparse._HelpAction)]
    assert actions
    undocumented = [a.option_strings[0] if a.option_strings else a.dest for a in actions if not a.help]
    assert undocumented == []


def test_impute_help_documents_masks_and_zeros():
    text = subcommand_parsers()["impute"].format_help()
    assert "--mask-layer" in text and "--impute-zeros" in text
    assert "EVERY zero" in text and "library sizes" in text


def parameter_table(capsys) -> tuple[list[str], dict[str, list[str]]]:
    """The header and the rows (by name) of the table printed (not a terminal: one line per row)."""
    lines = [line.replace("┃", "│") for line in capsys.readouterr().out.splitlines()]
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if line.count("│") > 3]
    return cells[0], {row[0]: row for row in cells[1:]}


def test_list_params_shows_ranges_and_each_profiles_defaults(capsys):
    assert main(["list", "methods", "--params", "countsdiff", "--task", "pbmc_mcar"]) == 0
    header, rows = parameter_table(capsys)
    assert header == [
        "hyperparameter",
        "type",
        "default",
        "pbmc_mcar (quick)",
        "pbmc_mcar (paper)",
        "range",
        "inference only",
    ]
    assert rows["steps"][3:5] == ["3000", "100000"]  # the profiles differ
    assert rows["n_samples"][3:5] == ["1", "5"]
    assert rows["dropout"][5] == "in [0, 1)"
    assert main(["list", "methods", "--params", "magic"]) == 0
    header, rows = parameter_table(capsys)
    assert header == ["hyperparameter", "type", "default", "range", "inference only"]
    assert rows["knn"][1:4] == ["int | None", "None", ">= 2"]
    assert rows["tuning_mask_rate"][3] == "in (0, 1)"
    assert main(["list", "methods", "--params", "magic", "--task", "pbmc_mcar", "--profile", "paper"]) == 0
    assert parameter_table(capsys)[0][3:5] == ["pbmc_mcar (paper)", "range"]


def test_fit_gives_the_method_every_cell_and_no_validation_split(monkeypatch):
    """No silent 10% hold-out: CountsDiff (which never tunes on validation) is trained on all cells."""
    from countsbench.registry import REGISTRY

    REGISTRY.load_builtins()
    seen = []
    cls = REGISTRY.methods.get("countsdiff").cls
    monkeypatch.setattr(cls, "fit", lambda self, train, valid, ctx: seen.append((train.n_samples, valid)))
    api.fit(user_adata(n_cells=90), "countsdiff", condition_keys=["cell_type"])
    assert seen == [(90, None)]
