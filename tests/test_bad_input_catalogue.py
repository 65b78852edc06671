"""The bad-input catalogue (issue 16): every case a careful user tried, through the real CLI.

Each case must end with a non-zero exit (2: a user error), exactly ONE line on stderr naming the problem,
and a results directory left byte-for-byte as it was (nothing recorded is lost or changed, nothing
created). Most cases call `countsbench.cli.main` in-process (fast); a few run ``python -m countsbench`` to
check the real process's stderr. The fault tests then cut files short as a crash mid-write would.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import anndata
import numpy as np
import pytest
import scipy.sparse as sp

from countsbench.cli import main
from countsbench.results import ResultStore


def tree_digest(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def user_adata(n_cells: int = 12, n_genes: int = 4, seed: int = 0) -> anndata.AnnData:
    rng = np.random.default_rng(seed)
    adata = anndata.AnnData(sp.csr_matrix(rng.poisson(2.0, size=(n_cells, n_genes)).astype(np.float32)))
    adata.var_names = [f"g{j}" for j in range(n_genes)]
    adata.obs_names = [f"c{i}" for i in range(n_cells)]
    adata.obs["cell_type"] = ["a", "b"] * (n_cells // 2)
    return adata


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One recorded run, one fitted user model and a gallery of bad files, shared by every case."""
    import os

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    root = tmp_path_factory.mktemp("catalogue")
    res = root / "results"
    assert main(["run", "--method", "mean", "--task", "pbmc_mcar", "--results-dir", str(res)]) == 0
    good = root / "good.h5ad"
    user_adata().write_h5ad(good)
    assert main(["fit", "--method", "mean", "--input", str(good), "--output", str(root / "model")]) == 0
    files = {"good": good, "model": root / "model", "res": res, "tmp": root}
    truncated = root / "truncated.h5ad"
    truncated.write_bytes(good.read_bytes()[:300])
    (root / "empty.h5ad").write_bytes(b"")
    (root / "garbage.h5ad").write_bytes(b"not an hdf5 file at all" * 10)
    negative = user_adata()
    negative.X = sp.csr_matrix(np.where(negative.X.toarray() > 2, -1.0, negative.X.toarray()))
    fractional = user_adata()
    fractional.X = sp.csr_matrix(fractional.X.toarray() + 0.5)
    nan_counts = user_adata()
    dense = nan_counts.X.toarray()
    dense[0, 0] = np.nan
    nan_counts.X = sp.csr_matrix(dense)
    duplicated = user_adata()
    duplicated.var_names = ["g0", "g0", "g1", "g2"]
    nan_labels = user_adata()
    nan_labels.obs["cell_type"] = ["a", np.nan] * 6
    empty_labels = user_adata()
    empty_labels.obs["cell_type"] = ["a", " "] * 6
    bad_mask = user_adata()
    bad_mask.layers["mask"] = np.full(bad_mask.shape, np.nan)
    for name, adata in {
        "negative": negative,
        "fractional": fractional,
        "nan_counts": nan_counts,
        "zero_cells": user_adata()[:0].copy(),
        "zero_genes": user_adata()[:, :0].copy(),
        "duplicated": duplicated,
        "nan_labels": nan_labels,
        "empty_labels": empty_labels,
        "bad_mask": bad_mask,
    }.items():
        adata.write_h5ad(root / f"{name}.h5ad")
    truncated_model = root / "truncated_model"
    truncated_model.mkdir()
    manifest = (root / "model" / "countsbench_model.json").read_text()
    (truncated_model / "countsbench_model.json").write_text(manifest[: len(manifest) // 2])
    (truncated_model / "method").mkdir()
    (truncated_model / "method" / "method.pkl").write_bytes(b"\x80\x04garbage")
    (root / "a_file").write_text("x")
    (result,) = ResultStore(res).iter_results()
    escape = dict(result, cell_id="../../../x", result_id="x")
    (root / "escape.json").write_text(json.dumps(escape))
    outside = dict(result, outputs=str(root / "elsewhere.npz"), result_id="y")
    (root / "outside.json").write_text(json.dumps(outside))
    (root / "elsewhere.npz").write_bytes(b"")
    (root / "grid.yaml").write_text("methods: mean\ntasks: pbmc_mcar\nseeds: [100000000000000000000000]\n")
    files["cell"] = result["cell_id"]
    return files


RUN = "run --method countsdiff --task pbmc_mcar --results-dir {res}"
FIT = "fit --method mean --output {tmp}/new_model --input"
IMPUTE = "impute --model {model} --input {good} --output {tmp}/out.h5ad --impute-zeros"

#: (case, command, what the single stderr line must contain); each exits 2.
CASES = [
    ("guidance nan", RUN + " --set guidance=nan", "guidance='nan': expected finite float"),
    ("lr nan", RUN + " --set lr=nan", "lr='nan'"),
    ("lr inf", RUN + " --set lr=inf", "lr='inf'"),
    ("eta nan", RUN + " --set eta=nan", "eta='nan'"),
    ("eta 1.5", RUN + " --set eta=1.5", "eta in [0, 1]"),
    ("n_steps 0", RUN + " --set n_steps=0", "n_steps >= 1"),
    ("batch_size 0", RUN + " --set batch_size=0", "batch_size >= 1"),
    ("steps -5", RUN + " --set steps=-5", "steps >= 1"),
    ("seed 1e23", "run --method mean --task pbmc_mcar --seed 1e23 --results-dir {res}", "--seed"),
    ("seed 2**70", "run --method mean --task pbmc_mcar --seed 1180591620717411303424 --results-dir {res}", "--seed"),
    ("seed -1", "run --method mean --task pbmc_mcar --seed=-1 --results-dir {res}", "--seed"),
    ("sweep seeds 1e23 (YAML)", "sweep --file {tmp}/grid.yaml --results-dir {res}", "--seeds"),
    ("sweep bad --seeds", "sweep --methods mean --tasks pbmc_mcar --seeds 3-1 --results-dir {res}", "--seeds"),
    (
        "sweep --cell-timeout 0",
        "sweep --methods mean --tasks pbmc_mcar --cell-timeout 0 --results-dir {res}",
        "timeout",
    ),
    ("unknown method", "run --method nope --task pbmc_mcar --results-dir {res}", "unknown method 'nope'"),
    ("unknown task", "run --method mean --task nope --results-dir {res}", "unknown task 'nope'"),
    ("unknown --set key", RUN + " --set nope=1", "unknown hyperparameter"),
    ("wrong type", RUN + " --set steps=many", "steps='many': expected int"),
    ("fit: negative counts", FIT + " {tmp}/negative.h5ad", "non-negative"),
    ("fit: fractional counts", FIT + " {tmp}/fractional.h5ad", "integer-valued"),
    ("fit: NaN counts", FIT + " {tmp}/nan_counts.h5ad", "NaN"),
    ("fit: 0 cells", FIT + " {tmp}/zero_cells.h5ad", "0 cells"),
    ("fit: 0 genes", FIT + " {tmp}/zero_genes.h5ad", "0 genes"),
    ("fit countsdiff: 0 cells", "fit --output {tmp}/new_model --input {tmp}/zero_cells.h5ad", "0 cells"),
    ("fit: duplicated gene names", FIT + " {tmp}/duplicated.h5ad", "duplicated gene names"),
    ("fit: NaN condition labels", FIT + " {tmp}/nan_labels.h5ad --condition-keys cell_type", "missing (NaN)"),
    ("fit: empty condition labels", FIT + " {tmp}/empty_labels.h5ad --condition-keys cell_type", "empty labels"),
    ("fit: truncated .h5ad", FIT + " {tmp}/truncated.h5ad", "not a readable .h5ad"),
    ("fit: empty .h5ad", FIT + " {tmp}/empty.h5ad", "not a readable .h5ad"),
    ("fit: corrupt .h5ad", FIT + " {tmp}/garbage.h5ad", "not a readable .h5ad"),
    ("fit: directory as --input", FIT + " {tmp}", "is a directory"),
    ("fit: missing --input", FIT + " {tmp}/absent.h5ad", "does not exist"),
    ("fit: --output is a file", "fit --method mean --input {good} --output {tmp}/a_file", "is a file"),
    ("fit: --output under a file", "fit --method mean --input {good} --output {tmp}/a_file/m", "a_file is a file"),
    ("fit: unsaveable method", "fit --method forest_diffusion --input {good} --output {tmp}/m2", "cannot be saved"),
    (
        "impute: mask layer NaN",
        IMPUTE.replace("--impute-zeros", "--mask-layer mask").replace("{good}", "{tmp}/bad_mask.h5ad"),
        "NaN",
    ),
    ("impute: missing mask layer", IMPUTE.replace("--impute-zeros", "--mask-layer nope"), "'nope' not found"),
    ("impute: --output a directory", IMPUTE.replace("{tmp}/out.h5ad", "{tmp}"), "is a directory"),
    ("impute: truncated model", IMPUTE.replace("{model}", "{tmp}/truncated_model"), "--model"),
    ("impute: not a model", IMPUTE.replace("{model}", "{tmp}"), "not a countsbench model"),
    ("impute: wrong genes", IMPUTE.replace("{good}", "{tmp}/duplicated.h5ad"), "duplicated gene names"),
    ("leaderboard: missing dir", "leaderboard --task pbmc_mcar --results-dir {tmp}/typo", "does not exist"),
    ("evaluate: missing dir", "evaluate {cell} --results-dir {tmp}/typo", "does not exist"),
    ("evaluate: unknown id", "evaluate nope --results-dir {res}", "no successful result"),
    ("evaluate: cell id ../../../x", "evaluate {tmp}/escape.json --results-dir {res}", "not a readable"),
    ("evaluate: outputs outside", "evaluate {tmp}/outside.json --results-dir {res} --no-track", "must be relative"),
]


def call(argv: list[str], capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(("case", "command", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, command, expected, world, capsys):
    before = tree_digest(world["res"])
    argv = command.format(**{k: str(v) for k, v in world.items()}).split()
    code, lines = call(argv, capsys)
    assert code == 2, (case, lines)
    assert len(lines) == 1 and lines[0].startswith("countsbench: error: "), lines
    assert expected in lines[0], lines[0]
    assert tree_digest(world["res"]) == before
    assert not (world["tmp"] / "typo").exists() and not (world["tmp"] / "x").exists()
    assert not (world["tmp"] / "out.h5ad").exists() and not (world["tmp"] / "new_model" / "method").exists()


@pytest.mark.parametrize(
    "command",
    [RUN + " --set guidance=nan", "run --method mean --task pbmc_mcar --seed 1e23 --results-dir {res}", FIT + " {tmp}"],
    ids=["guidance nan", "seed 1e23", "directory as --input"],
)
def test_a_real_process_prints_exactly_one_line(command, world):
    before = tree_digest(world["res"])
    argv = command.format(**{k: str(v) for k, v in world.items()}).split()
    done = subprocess.run([sys.executable, "-m", "countsbench", *argv], capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if "Warning" not in line and not line.startswith("  ")]
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("countsbench: error: "), done.stderr
    assert tree_digest(world["res"]) == before


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_mlflow_fails_fast_after_saving_and_sync_logs_once(tmp_path, monkeypatch, capsys):
    res = tmp_path / "results"
    run = ["run", "--method", "zero", "--task", "pbmc_mcar", "--results-dir", str(res)]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    start = time.monotonic()
    code, lines = call(run, capsys)
    assert time.monotonic() - start < 60
    errors = [line for line in lines if line.startswith("countsbench: error:")]  # after the progress lines
    assert code == 2 and len(errors) == 1 and lines[-1] == errors[0], lines
    assert "unreachable" in errors[0] and "countsbench sync" in errors[0]
    (result,) = ResultStore(res).iter_results()
    assert result["status"] == "ok" and result["mlflow_run_id"] is None  # the JSON result is safe
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the "server" is back: the default SQLite store
    assert call(["sync", "--results-dir", str(res)], capsys)[0] == 0
    (synced,) = ResultStore(res).iter_results()
    assert synced["mlflow_run_id"]
    code, lines = call(["sync", "--results-dir", str(res)], capsys)
    assert code == 0 and "nothing to sync" in lines[-1]
    from countsbench.tracking import Tracker

    tracker = Tracker(res)
    runs = tracker.client.search_runs([tracker.experiment_id("pbmc_mcar", create=False)])
    assert [r.info.run_id for r in runs if "cell_id" in r.data.tags] == [synced["mlflow_run_id"]]  # exactly once


def test_fault_truncated_result_is_warned_once_and_rerun(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = tmp_path / "results"
    runs = [["run", "--method", m, "--task", "pbmc_mcar", "--results-dir", str(res)] for m in ("zero", "mean")]
    for argv in runs:
        assert call(argv, capsys)[0] == 0
    store = ResultStore(res)
    zero, mean = sorted(store.iter_results(), key=lambda r: r["method"] != "zero")
    path = store.result_path(zero["cell_id"])
    path.write_bytes(path.read_bytes()[:100])  # truncate -s 100
    code, lines = call([*runs[0], "--resume"], capsys)
    assert code == 0 and sum("warning: ignoring unreadable result" in line for line in lines) == 1
    assert json.loads(path.read_text())["status"] == "ok"  # rerun and recorded again
    code, lines = call([*runs[1], "--resume"], capsys)  # the other cell is skipped, not rerun
    assert code == 0 and any("already done" in line for line in lines)
    assert call(["evaluate", mean["cell_id"], "--results-dir", str(res), "--no-track"], capsys)[0] == 0


def test_fault_truncated_model_cache_is_refitted(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = tmp_path / "results"
    run = ["run", "--method", "mean", "--task", "pbmc_mcar", "--results-dir", str(res)]
    assert call(run, capsys)[0] == 0
    (arrays,) = (res / "models").glob("*/arrays.npz")
    arrays.write_bytes(arrays.read_bytes()[:50])
    code, lines = call([*run, "--seed", "0"], capsys)  # the same fit id: the cache would be reused
    assert code == 0 and any("warning: cached model" in line and "arrays.npz" in line for line in lines), lines
    (result,) = ResultStore(res).iter_results()
    assert result["model_cache"]["reused"] is False
    assert call(run, capsys)[0] == 0  # the refitted cache is intact and reused
    (result,) = ResultStore(res).iter_results()
    assert result["model_cache"]["reused"] is True


def test_fault_truncated_mlflow_db_is_one_line_and_keeps_the_json(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = tmp_path / "results"
    run = ["run", "--method", "zero", "--task", "pbmc_mcar", "--results-dir", str(res)]
    assert call(run, capsys)[0] == 0
    db = res / "mlflow.db"
    db.write_bytes(db.read_bytes()[:1000])
    code, lines = call(["leaderboard", "--task", "pbmc_mcar", "--results-dir", str(res)], capsys)
    assert code == 2 and len(lines) == 1 and "mlflow.db" in lines[0], lines
    code, lines = call([*run, "--seed", "1"], capsys)
    errors = [line for line in lines if line.startswith("countsbench: error:")]
    assert code == 2 and len(errors) == 1 and lines[-1] == errors[0] and "result saved in" in errors[0], lines
    assert {r["seed"] for r in ResultStore(res).iter_results()} == {0, 1}  # nothing recorded is lost
