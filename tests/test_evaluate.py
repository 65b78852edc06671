"""``countsbench evaluate``: re-score saved outputs without retraining."""

import json

import numpy as np

from countsbench.cli import main
from countsbench.results import ResultStore
from countsbench.tracking import Tracker


def test_evaluate_rescores_saved_outputs_as_a_new_result_and_run(results_dir, capsys):
    run = ["run", "--method", "zero", "--task", "pbmc_mcar", "--results-dir", str(results_dir)]
    assert main(run) == 0
    (first,) = ResultStore(results_dir).iter_results()
    assert "xgboost_accuracy" in first["metrics"] and "mmd/bootstrap_se" in first["metrics"]
    replicates = first["bootstrap"]["values"]  # per-replicate values, 200 resamples (20 for the costly metrics)
    assert first["bootstrap"]["n_resamples"] == 200 and len(replicates["mmd"]) == 200
    assert len(replicates["sliced_wasserstein"]) == 20

    args = ["evaluate", first["cell_id"], "--metrics", "rmse,energy_distance_profiles", "--bootstrap", "3"]
    assert main([*args, "--results-dir", str(results_dir)]) == 0
    (second,) = ResultStore(results_dir).iter_results()  # the cell's result.json now holds the re-score
    assert second["rescored_from"] == first["result_id"] and second["result_id"] != first["result_id"]
    assert second["metrics"]["rmse"] == first["metrics"]["rmse"]  # same outputs, same truth
    assert (
        second["metrics"]["energy_distance_profiles"] > 0
        and "energy_distance_profiles/bootstrap_se" in second["metrics"]
    )
    assert second["metrics"]["xgboost_accuracy"] == first["metrics"]["xgboost_accuracy"]  # kept
    # re-scored metrics get their 3 new replicates, the others keep theirs (the same resampled cells)
    assert len(second["bootstrap"]["values"]["rmse"]) == 3 and len(second["bootstrap"]["values"]["mmd"]) == 200
    assert second["bootstrap"]["values"]["rmse"] == first["bootstrap"]["values"]["rmse"][:3]
    tracker = Tracker(results_dir)
    runs = tracker.client.search_runs([tracker.experiment_id("pbmc_mcar", create=False)])
    assert len([run for run in runs if "cell_id" in run.data.tags]) == 2  # the cell's runs (and a leaderboard run)
    (board,) = [run for run in runs if run.data.tags.get("countsbench.kind") == "leaderboard"]
    assert board.info.start_time > max(r.info.start_time for r in runs if r is not board)  # refreshed by evaluate


def test_evaluate_refuses_unknown_ids_and_outputs_that_do_not_fit(results_dir, capsys):
    assert main(["evaluate", "nope", "--results-dir", str(results_dir)]) == 2
    assert "does not exist" in capsys.readouterr().err and not results_dir.exists()  # a typo creates nothing
    run = ["run", "--method", "zero", "--task", "pbmc_mcar", "--results-dir", str(results_dir)]
    assert main(run) == 0
    assert main(["evaluate", "nope", "--results-dir", str(results_dir)]) == 2
    assert "no successful result 'nope'" in capsys.readouterr().err
    (result,) = ResultStore(results_dir).iter_results()
    outputs = results_dir / result["outputs"]
    saved = np.load(outputs)["outputs"]
    np.savez_compressed(outputs, outputs=saved + 1)  # observed entries no longer match the task's data
    before = json.loads(ResultStore(results_dir).result_path(result["cell_id"]).read_text())
    assert main(["evaluate", result["cell_id"], "--results-dir", str(results_dir), "--no-track"]) == 2
    assert "do not match" in capsys.readouterr().err
    after = json.loads(ResultStore(results_dir).result_path(result["cell_id"]).read_text())
    assert after == before  # nothing recorded is lost
