"""Files received from someone else never run code: each loader is given a crafted payload (it would create
a marker file when unpickled) and must refuse it with a clear error, the marker never appearing."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import anndata
import numpy as np
import pytest
import torch

from countsbench.api import FittedModel
from countsbench.cli import main
from countsbench.context import RunContext
from countsbench.methods.naive import MeanImputation
from countsbench.model_cache import MANIFEST, ModelCache
from countsbench.registry import REGISTRY
from countsbench.safe_io import UnsafeFileError, load_numpy_pickle, tree_checksums
from countsbench.task import TaskDataMissing


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker's existence proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def saved_mean(directory: Path) -> MeanImputation:
    method = MeanImputation()
    method.gene_means = np.array([1.0, 2.0])
    method.save(directory)
    return method


def test_method_state_round_trips_without_pickle(tmp_path):
    method = saved_mean(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz", "method.json"]
    np.testing.assert_array_equal(MeanImputation.load(tmp_path).gene_means, method.gene_means)


def test_a_pickled_object_array_in_a_saved_method_is_refused(tmp_path):
    saved_mean(tmp_path)
    marker = tmp_path / "ran"
    payload = np.empty(1, dtype=object)
    payload[0] = Payload(marker)
    np.savez(tmp_path / "arrays.npz", a0=payload)  # numpy pickles object arrays
    with pytest.raises(UnsafeFileError, match="arrays.npz"):
        MeanImputation.load(tmp_path)
    assert not marker.exists()


def test_an_old_pickled_method_is_never_unpickled(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "method.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UnsafeFileError, match="method.json missing"):
        MeanImputation.load(tmp_path)
    assert not marker.exists()


def test_crafted_model_directory_through_impute_is_one_line(tmp_path):
    """``countsbench impute --model DIR``: a model whose method file is a pickle payload (checksums made
    to match, as an attacker would) is refused in one line, exit 2, nothing run or written."""
    from countsbench.api import MANIFEST as MODEL_MANIFEST

    model = tmp_path / "model"
    saved_mean(model / "method")
    marker = tmp_path / "ran"
    payload = np.empty(1, dtype=object)
    payload[0] = Payload(marker)
    np.savez(model / "method" / "arrays.npz", a0=payload)
    manifest = {"method": "mean", "config": {}, "genes": ["g0", "g1"], "vocabularies": {}, "cell_type_key": None}
    manifest["sha256"] = tree_checksums(model)
    (model / MODEL_MANIFEST).write_text(json.dumps(manifest))
    adata = anndata.AnnData(np.array([[1, 0], [0, 3]], dtype=np.float32))
    adata.var_names = ["g0", "g1"]
    adata.write_h5ad(tmp_path / "in.h5ad")
    command = [sys.executable, "-m", "countsbench", "impute", "--model", str(model), "--input"]
    command += [str(tmp_path / "in.h5ad"), "--output", str(tmp_path / "out.h5ad"), "--impute-zeros"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("countsbench: error: --model: model") and "arrays.npz" in lines[0]
    assert not marker.exists() and not (tmp_path / "out.h5ad").exists()


def test_truncated_model_manifest_is_one_line(tmp_path):
    from countsbench.api import MANIFEST as MODEL_MANIFEST

    (tmp_path / MODEL_MANIFEST).write_text('{"method": "me')
    with pytest.raises(UnsafeFileError, match="cannot be loaded"):
        FittedModel.load(tmp_path)


def test_crafted_training_checkpoint_does_not_run_and_training_restarts(tmp_path, capsys, one_thread):
    """A checkpoint is read with ``weights_only=True``: a payload is refused, reported, removed, and
    training starts from step 0, giving the same model as a run that never had the file."""
    cls = REGISTRY.methods.get("countsdiff").cls
    small = {"network": "mlp", "mlp_hidden": 8, "steps": 3, "batch_size": 4, "warmup_steps": 1}
    rng = np.random.default_rng(0)
    from countsbench.data import CountData

    data = CountData(rng.poisson(2.0, size=(12, 3)))
    clean = cls(**small)
    clean.fit(data, None, RunContext(seed=0, show_progress=False, output_dir=tmp_path / "clean"))
    checkpoint = tmp_path / "crafted" / "checkpoints" / "countsdiff.pt"
    checkpoint.parent.mkdir(parents=True)
    marker = tmp_path / "ran"
    torch.save({"step": Payload(marker)}, checkpoint)
    method = cls(**small)
    method.fit(data, None, RunContext(seed=0, show_progress=False, output_dir=tmp_path / "crafted"))
    assert not marker.exists()
    err = capsys.readouterr().err
    assert "countsbench: warning: training checkpoint" in err and "countsdiff.pt" in err
    for a, b in zip(clean.model.state_dict().values(), method.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_crafted_model_cache_is_refitted_not_loaded(tmp_path, capsys):
    """A model cache whose checksums match but whose state is a pickle payload: never run, refitted."""
    cache = tmp_path / "models" / "abc"
    saved_mean(cache)
    marker = tmp_path / "ran"
    payload = np.empty(1, dtype=object)
    payload[0] = Payload(marker)
    np.savez(cache / "arrays.npz", a0=payload)
    (cache / MANIFEST).write_text(json.dumps({"sha256": tree_checksums(cache, exclude=(MANIFEST,))}))
    assert ModelCache(cache).load(MeanImputation) is None
    assert not marker.exists() and not cache.exists()
    assert "countsbench: warning: cached model" in capsys.readouterr().err


def test_crafted_cifar_batch_does_not_run(tmp_path):
    from countsbench.tasks.images.cifar10 import read_batch

    marker = tmp_path / "ran"
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": Payload(marker), b"labels": [0]}))
    with pytest.raises(TaskDataMissing, match="refusing to load io.open"):
        read_batch(batch)
    assert not marker.exists()


def test_numpy_pickles_still_load(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": array, b"labels": [1, 2], b"name": "x"}, protocol=2))
    with open(path, "rb") as handle:
        loaded = load_numpy_pickle(handle, encoding="bytes")
    np.testing.assert_array_equal(loaded[b"data"], array)
    assert loaded[b"labels"] == [1, 2]


def test_ui_binds_to_loopback_and_warns_otherwise(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr("os.execve", lambda path, command, env: calls.append(command))
    assert main(["ui", "--results-dir", str(tmp_path)]) == 0
    assert calls[-1][calls[-1].index("--host") + 1] == "127.0.0.1"
    assert "warning" not in capsys.readouterr().err
    assert main(["ui", "--results-dir", str(tmp_path), "--host", "0.0.0.0"]) == 0
    assert calls[-1][calls[-1].index("--host") + 1] == "0.0.0.0"
    assert "countsbench: warning: --host 0.0.0.0 serves the UI beyond this machine" in capsys.readouterr().err
