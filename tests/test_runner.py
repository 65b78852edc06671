import json

import numpy as np
import pytest

from countsbench.config import ConfigError
from countsbench.registry import load_plugin
from countsbench.results import ResultsDirError, ResultStore, write_json_atomic
from countsbench.runner import CellRequest, run_cell


def test_atomic_json_write_leaves_no_temporary_and_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {(1, 2): 3})  # JSON keys must be strings: refused, old file intact
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    write_json_atomic(path, {"a": float("nan"), "b": [float("-inf")]})  # non-finite values kept as strings
    assert json.loads(path.read_text()) == {"a": "nan", "b": ["-inf"]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_successful_cell_is_recorded_and_resume_skips_it(results_dir):
    request = CellRequest("mean", "pbmc_mcar", seed=0, device="cpu")
    first = run_cell(request, results_dir, track=False)
    assert first["status"] == "ok" and first["aggregate"] == "single"
    stored = ResultStore(results_dir).load_success(first["cell_id"])
    assert stored["metrics"] == first["metrics"]
    assert set(stored["provenance"]) >= {"schema_version", "packages", "device", "cpu_threads", "data_checksums"}
    assert all(v.startswith("sha256:") for v in stored["provenance"]["data_checksums"].values())
    assert (results_dir / stored["outputs"]).exists()
    again = run_cell(request, results_dir, track=False, resume=True)
    assert again.get("skipped") and again["result_id"] == first["result_id"]


def test_a_cells_peak_memory_is_its_own_not_the_process_high_water_mark(results_dir):
    """The sequential executor runs cells one after another in one process: each reports the peak RSS
    since it started (`countsbench.memory`), not the largest any earlier work in the process reached."""
    import resource

    from countsbench.memory import reset_peak_rss, rss_mb

    if not reset_peak_rss():
        pytest.skip("PEAK RESET NOT TESTED: this system cannot reset a process' peak RSS (Linux /proc only)")
    ballast = np.ones(400 * 2**20 // 8)  # 400 MB written, so resident: the process' peak is >= now + 400 MB
    del ballast
    process_peak, before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss_mb("VmRSS")
    result = run_cell(CellRequest("mean", "pbmc_mcar", seed=0, device="cpu"), results_dir, track=False)
    assert result["status"] == "ok"
    # at least the resident memory the cell started with (50 MB of slack: the allocator may return some)
    assert before - 50 <= result["costs"]["peak_memory_mb"] < process_peak - 300


def test_cell_identity_depends_on_seed_and_config_not_on_order(results_dir):
    a = run_cell(CellRequest("conditional_mean", "pbmc_mcar", seed=0), results_dir, track=False)
    b = run_cell(CellRequest("conditional_mean", "pbmc_mcar", seed=1), results_dir, track=False)
    c = run_cell(
        CellRequest("conditional_mean", "pbmc_mcar", seed=0, overrides={"condition_keys": "bulk_labels"}),
        results_dir,
        track=False,
    )
    assert len({a["cell_id"], b["cell_id"], c["cell_id"]}) == 3
    assert c["variant"] == "conditional_mean[condition_keys=bulk_labels]" and a["variant"] == "conditional_mean"


def test_failure_is_recorded_and_earlier_results_stay_intact(results_dir, test_plugin):
    load_plugin(test_plugin)
    good = run_cell(CellRequest("mean", "pbmc_mcar"), results_dir, track=False)
    before = ResultStore(results_dir).result_path(good["cell_id"]).read_text()
    failed = run_cell(CellRequest("plugin_crashes", "pbmc_mcar"), results_dir, track=False)
    assert failed["status"] == "failed"
    assert "deliberate failure in fit" in failed["error"]["message"]
    records = list(ResultStore(results_dir).iter_results())
    assert {r["status"] for r in records} == {"ok", "failed"}
    assert ResultStore(results_dir).result_path(good["cell_id"]).read_text() == before


@pytest.mark.parametrize(
    "method,message", [("plugin_fractional", "non-integer"), ("plugin_overwrites", "changed observed")]
)
def test_contract_violations_are_failures(results_dir, test_plugin, method, message):
    load_plugin(test_plugin)
    result = run_cell(CellRequest(method, "pbmc_mcar"), results_dir, track=False)
    assert result["status"] == "failed" and message in result["error"]["message"]


def test_user_mistakes_fail_before_any_work(results_dir, tmp_path):
    with pytest.raises(ConfigError):
        run_cell(CellRequest("conditional_mean", "pbmc_mcar", overrides={"nope": "1"}), results_dir, track=False)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ResultsDirError, match="not writable"):
        run_cell(CellRequest("mean", "pbmc_mcar"), blocker / "results", track=False)
    assert not results_dir.exists()


def test_a_fitted_model_is_shared_by_tasks_on_the_same_data(results_dir):
    mcar = run_cell(CellRequest("mean", "pbmc_mcar"), results_dir, track=False)
    mnar = run_cell(CellRequest("mean", "pbmc_mnar"), results_dir, track=False)
    assert mcar["model_cache"]["fit_id"] == mnar["model_cache"]["fit_id"]
    assert not mcar["model_cache"]["reused"] and mnar["model_cache"]["reused"]
    fresh = run_cell(CellRequest("mean", "pbmc_mnar"), results_dir / "fresh", track=False, cache_models=False)
    assert fresh["metrics"] == mnar["metrics"]


def test_outputs_hold_the_imputation(results_dir):
    result = run_cell(CellRequest("zero", "pbmc_mcar"), results_dir, track=False)
    outputs = np.load(results_dir / result["outputs"])["outputs"]
    assert outputs.shape[0] == 1 and outputs.dtype == np.int64
