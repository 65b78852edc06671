"""``countsbench evaluate --task T --samples FILE --name NAME``: scoring files made by other tools."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from countsbench.cli import main
from countsbench.data import CountData
from countsbench.external import align, task_inputs
from countsbench.external_files import ExternalFile, ExternalFileError
from countsbench.registry import REGISTRY
from countsbench.results import ResultStore
from countsbench.runner import CellRequest, run_cell
from countsbench.task import TaskData
from countsbench.tasks.toy import COMPARISON_ROWS, FEATURE_NAMES, draw_toy_nb

#: Cheap pbmc_mcar metrics (no XGBoost fit): a pointwise error, a kernel distance, the K-sample score.
PBMC_METRICS = ["rmse", "mae", "mmd", "crps"]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def evaluate(path: Path, task: str, name: str, results_dir: Path, *extra: str) -> int:
    args = ["evaluate", "--task", task, "--samples", str(path), "--name", name, "--results-dir", str(results_dir)]
    return main([*args, *extra])


def test_toy_samples_written_with_anndata_are_scored_and_recorded(results_dir, tmp_path):
    samples = draw_toy_nb(20_000, np.random.default_rng(7))  # another "tool": fresh draws of the generator
    genes = list(FEATURE_NAMES)
    path = tmp_path / "mytool.h5ad"
    ad.AnnData(X=samples.astype(np.float32), var=pd.DataFrame(index=genes)).write_h5ad(path)

    cheap = "joint_mmd,marginal_wasserstein,variance_log_error,zero_share,max_count"  # the toy's cheaper metrics
    assert evaluate(path, "toy_nb", "mytool", results_dir, "--metrics", cheap, "--no-track") == 0
    (result,) = ResultStore(results_dir).iter_results()
    assert result["role"] == "external" and result["method"] == result["variant"] == "mytool"
    record = result["provenance"]["external_file"]
    assert record["sha256"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["size_bytes"] == path.stat().st_size and record["layer"] == "X" and record["genes"] == "by name"
    assert result["metrics"]["max_count/generated"] == samples[:COMPARISON_ROWS].max()  # the first 4,000 rows
    saved = np.load(results_dir / result["outputs"])["outputs"]
    np.testing.assert_array_equal(saved, samples)  # re-scorable like a run: `countsbench evaluate CELL_ID`

    # the same file with its genes in another order: matched by name, the same values
    order = np.random.default_rng(0).permutation(len(genes))
    shuffled = tmp_path / "shuffled.h5ad"
    ad.AnnData(X=samples[:, order], var=pd.DataFrame(index=[genes[j] for j in order])).write_h5ad(shuffled)
    assert evaluate(shuffled, "toy_nb", "mytool-shuffled", results_dir, "--metrics", cheap, "--no-track") == 0
    again = next(r for r in ResultStore(results_dir).iter_results() if r["method"] == "mytool-shuffled")
    assert again["metrics"] == result["metrics"] and result["metrics"]["variance_log_error"] > 0


@pytest.fixture(scope="module")
def pbmc_store(tmp_path_factory) -> tuple[Path, dict, dict]:
    """A results directory holding a tracked `zero` run of pbmc_mcar and the same outputs scored from a
    file made "elsewhere" (cells and genes in another order, named as the task names them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        root = tmp_path_factory.mktemp("pbmc_store")
        results_dir = root / "results"
        run = run_cell(CellRequest("zero", "pbmc_mcar"), results_dir, metrics=PBMC_METRICS)
        assert run["status"] == "ok"
        outputs = np.load(results_dir / run["outputs"])["outputs"][0]
        inputs = task_inputs("pbmc_mcar")  # the test cells by name, with their hidden target entries
        assert inputs.shape == outputs.shape and int(inputs.layers["countsbench_target"].sum()) > 0
        rng = np.random.default_rng(1)
        cells, genes = rng.permutation(outputs.shape[0]), rng.permutation(outputs.shape[1])
        path = root / "zero_elsewhere.h5ad"
        ad.AnnData(
            X=outputs[cells][:, genes],
            obs=pd.DataFrame(index=inputs.obs_names[cells]),
            var=pd.DataFrame(index=inputs.var_names[genes]),
        ).write_h5ad(path)
        assert evaluate(path, "pbmc_mcar", "zero-elsewhere", results_dir, "--metrics", ",".join(PBMC_METRICS)) == 0
        external = next(r for r in ResultStore(results_dir).iter_results() if r["role"] == "external")
        yield results_dir, run, external


def test_pbmc_imputations_match_a_run_of_the_same_outputs(pbmc_store, capsys):
    results_dir, run, external = pbmc_store
    assert external["provenance"]["external_file"]["cells"] == "by obs names"
    assert external["metrics"] == run["metrics"]  # bootstrap standard errors included: the same resampled cells
    assert external["bootstrap"]["values"] == run["bootstrap"]["values"]
    capsys.readouterr()
    assert main(["leaderboard", "--task", "pbmc_mcar", "--results-dir", str(results_dir), "--format", "markdown"]) == 0
    board = capsys.readouterr().out
    assert "| zero-elsewhere | external | 1 |" in board and "| zero | control | 1 |" in board
    assert "External rows (role external): zero-elsewhere, scored from files" in board


def test_multiple_imputations_in_an_npz_and_observed_entries_ignored(results_dir, tmp_path, capsys):
    data = REGISTRY.tasks.get("pbmc_mcar").factory().load(None)
    truth, target = data.test.dense(), data.test_target
    rng = np.random.default_rng(2)
    draws = np.where(target[None], rng.poisson(1.0, size=(3, *truth.shape)), truth[None])
    smoothed = draws.copy()
    smoothed[:, ~target] += 1  # a tool that also changes observed entries: they are not scored
    path = tmp_path / "draws.npz"
    np.savez(path, samples=smoothed, var_names=np.array(data.test.feature_names, dtype=str))
    assert evaluate(path, "pbmc_mcar", "poisson-draws", results_dir, "--metrics", "rmse,crps", "--no-track") == 0
    assert "were ignored: only the target entries are scored" in capsys.readouterr().err
    (result,) = ResultStore(results_dir).iter_results()
    assert result["aggregate"] == "mean_of_K" and result["provenance"]["external_file"]["cells"].startswith("by order")
    assert result["provenance"]["external_file"]["observed_entries_replaced"] == 3 * int((~target).sum())
    expected = np.sqrt(np.mean((draws.mean(axis=0)[target] - truth[target]) ** 2))
    assert result["metrics"]["rmse"] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(np.load(results_dir / result["outputs"])["outputs"], draws)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_gene", "1 of the task's 765 genes are not in"),
        ("wrong_cells", "has 139 cells; the task's test split has 140"),
        ("negative", "holds 1 negative values"),
        ("nan", "NaN or infinite"),
        ("fractional", "non-integer values (e.g. 0.5)"),
        ("npz_shape", "has shape (140, 765, 1, 1); expected"),
        ("some_names", "2 of its 140 obs names are the task's test cells"),
        ("csv", "neither .h5ad nor .npz"),
        ("absent", "does not exist"),
        ("corrupt", "cannot read"),
        ("method_name", "is a registered method"),
        ("object_names", "holds object arrays; save names as string arrays"),
    ],
)
def test_mismatched_files_fail_in_one_line_and_change_nothing(pbmc_store, tmp_path, capsys, case, message):
    results_dir = tmp_path / "results"
    shutil.copytree(pbmc_store[0], results_dir)  # a results directory with a run, an external row, MLflow
    before = snapshot(results_dir)
    inputs = task_inputs("pbmc_mcar")
    good = np.asarray(inputs.X.todense()).astype(np.int64)
    obs, var = pd.DataFrame(index=inputs.obs_names), pd.DataFrame(index=inputs.var_names)
    first = tmp_path / "good.npz"
    np.savez(first, samples=good, var_names=np.array(inputs.var_names, dtype=str))
    capsys.readouterr()

    path, name = tmp_path / "bad.h5ad", "bad"
    if case == "missing_gene":
        ad.AnnData(X=good[:, 1:], obs=obs, var=var.iloc[1:]).write_h5ad(path)
    elif case == "wrong_cells":
        ad.AnnData(X=good[1:], var=var).write_h5ad(path)
    elif case in ("negative", "nan", "fractional"):
        values = good.astype(np.float64)
        values[3, 5] = {"negative": -1.0, "nan": np.nan, "fractional": 0.5}[case]
        ad.AnnData(X=values, obs=obs, var=var).write_h5ad(path)
    elif case == "npz_shape":
        path = tmp_path / "bad.npz"
        np.savez(path, samples=good[..., None, None])
    elif case == "some_names":
        names = [f"cell{i}" for i in range(len(obs))]
        names[:2] = list(inputs.obs_names[:2])
        ad.AnnData(X=good, obs=pd.DataFrame(index=names), var=var).write_h5ad(path)
    elif case == "csv":
        path = tmp_path / "bad.csv"
        path.write_text("1,2\n")
    elif case == "corrupt":
        path.write_bytes(b"not an hdf5 file")
    elif case == "method_name":
        path, name = first, "magic"
    elif case == "object_names":  # np.savez of an Index: names pickled as objects, never unpickled here
        path = tmp_path / "bad.npz"
        np.savez(path, samples=good, var_names=np.array(inputs.var_names, dtype=object))
    assert evaluate(path, "pbmc_mcar", name, results_dir) == 2
    err = capsys.readouterr().err
    assert err.startswith("countsbench: error: ") and message in err and err.count("\n") == 1, err
    assert snapshot(results_dir) == before


def test_unknown_task_and_mixed_forms_are_refused(results_dir, tmp_path, capsys):
    path = tmp_path / "x.npz"
    np.savez(path, samples=np.zeros((2, 2)))
    assert evaluate(path, "nope", "x", results_dir) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["evaluate", "abc", "--task", "toy_nb", "--results-dir", str(results_dir)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["evaluate", "--samples", str(path), "--results-dir", str(results_dir)]) == 2
    assert "missing: --task, --name" in capsys.readouterr().err
    assert not results_dir.exists()


def conditional_task() -> TaskData:
    """A tiny task with 2 labelled types: type b cells count 10 in gene 0, type a cells 0."""
    labels = np.array([0, 1, 0, 1, 1])
    counts = np.stack([labels * 10, np.arange(5)], axis=1)
    split = CountData(counts, conditions={"type": labels}, vocabularies={"type": ("a", "b")}, feature_names=("x", "y"))
    return TaskData(train=split, valid=split, test=split)


def labelled(values: np.ndarray, types: list[str], genes=("x", "y")) -> ExternalFile:
    return ExternalFile(Path("f.h5ad"), "h5ad", values, "X", genes=genes, labels={"type": np.array(types)})


def test_conditional_samples_are_ordered_like_the_test_cells_labels():
    data = conditional_task()
    samples = np.array([[10, 1], [10, 2], [10, 3], [0, 4], [0, 5]])  # three b then two a
    aligned = align(labelled(samples[:, ::-1], ["b", "b", "b", "a", "a"], ("y", "x")), "generation", data)
    assert aligned.matching["cells"] == "by type labels"
    np.testing.assert_array_equal(aligned.prediction, samples[[3, 0, 4, 1, 2]])  # a b a b b, in file order per label
    with pytest.raises(ExternalFileError, match="samples per type differ .* a: file 1, test 2; b: file 4, test 3"):
        align(labelled(samples, ["b", "b", "b", "b", "a"]), "generation", data)
    unlabelled = ExternalFile(Path("f.npz"), "npz", samples, "samples", genes=("x", "y"))
    with pytest.raises(ExternalFileError, match="conditionally on type: give each sample's type"):
        align(unlabelled, "generation", data)


def test_the_evaluate_help_documents_both_forms(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    assert "RESULT_OR_RUN_ID" in text and "--samples FILE" in text and "countsbench_sample_*" in text


def test_an_external_result_is_rescored_like_a_run(results_dir, tmp_path):
    inputs = task_inputs("pbmc_mcar")
    path = tmp_path / "t.npz"
    np.savez(path, samples=np.asarray(inputs.X.todense()), var_names=np.array(inputs.var_names, dtype=str))
    assert evaluate(path, "pbmc_mcar", "tool", results_dir, "--metrics", "rmse", "--bootstrap", "0", "--no-track") == 0
    (first,) = ResultStore(results_dir).iter_results()
    args = ["evaluate", first["cell_id"], "--metrics", "mae", "--bootstrap", "0", "--no-track"]
    assert main([*args, "--results-dir", str(results_dir)]) == 0
    (second,) = ResultStore(results_dir).iter_results()
    assert second["role"] == "external" and second["rescored_from"] == first["result_id"]
    assert second["metrics"]["rmse"] == first["metrics"]["rmse"] and second["metrics"]["mae"] > 0
    assert second["provenance"]["external_file"] == first["provenance"]["external_file"]


def test_task_cell_names_must_fit_their_split():
    data = conditional_task()
    with pytest.raises(ValueError, match="4 cell names for the 5 test cells"):
        TaskData(train=data.train, valid=data.valid, test=data.test, cell_names={"test": ("a", "b", "c", "d")})
