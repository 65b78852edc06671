"""Conditional scRNA generation (tasks/scrna_generation.py): the split, the per-type conditions the runner
asks for, the memorising control flagged by the memorisation rate, and the task through the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from countsbench.cli import main
from countsbench.metrics.memorisation import MEMORISATION_QUANTILE
from countsbench.results import ResultStore
from countsbench.runner import CellRequest, run_cell
from countsbench.tasks.pbmc import pbmc_mcar
from countsbench.tasks.scrna_generation import SCRNA_GENERATION_METRICS, pbmc_generate, synthetic_generate


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_generate().load(None)


def test_pbmc_generate_uses_the_split_of_pbmc_mcar_and_conditions_on_the_cell_type_only():
    data, imputation = pbmc_generate().load(None), pbmc_mcar().load(None)
    for split in ("train", "valid", "test"):
        ours, theirs = getattr(data, split), getattr(imputation, split)
        assert np.array_equal(ours.dense(), theirs.dense())
        assert ours.condition_keys == ("bulk_labels",) and ours.valid is None
        assert np.array_equal(ours.conditions["bulk_labels"], theirs.conditions["bulk_labels"])
    assert (data.train.n_samples, data.valid.n_samples, data.test.n_samples) == (490, 70, 140)
    assert data.test_target is None and len(data.cell_names["test"]) == 140


def test_synthetic_task_is_seeded_split_by_type_and_keeps_every_type_in_every_split(synthetic):
    again = synthetic_generate().load(None)
    assert np.array_equal(again.test.dense(), synthetic.test.dense())
    assert synthetic.train.condition_keys == ("cell_type",)  # the simulated batch is not a condition
    per_split = [np.bincount(getattr(synthetic, s).conditions["cell_type"], minlength=6) for s in ("train", "test")]
    assert np.all(per_split[1] > 0)
    np.testing.assert_allclose(per_split[1] / per_split[0], 0.2 / 0.7, atol=0.05)
    assert 0.4 < np.mean(synthetic.train.dense() == 0) < 0.8


def test_runner_asks_for_the_test_split_cells_of_each_type_and_memorise_is_flagged(results_dir, synthetic):
    results = {}
    for method in ("memorise", "independent_nb"):
        results[method] = run_cell(CellRequest(method, "synthetic_generate"), results_dir, track=False)
        assert results[method]["status"] == "ok", results[method]["error"]
        assert {key.split("/")[0] for key in results[method]["metrics"]} == set(SCRNA_GENERATION_METRICS)
    with np.load(ResultStore(results_dir).root / results["memorise"]["outputs"]) as stored:
        generated = stored["outputs"]
    types_test, types_train = synthetic.test.conditions["cell_type"], synthetic.train.conditions["cell_type"]
    assert len(generated) == synthetic.test.n_samples
    train_rows = {t: {tuple(r) for r in synthetic.train.dense()[types_train == t]} for t in range(6)}
    assert all(tuple(row) in train_rows[t] for row, t in zip(generated, types_test, strict=True))
    memorised = results["memorise"]["metrics"]["memorisation_rate"]
    independent = results["independent_nb"]["metrics"]["memorisation_rate"]
    n = synthetic.test.n_samples  # 4 binomial standard errors of a rate q over the generated cells
    slack = 4 * np.sqrt(MEMORISATION_QUANTILE * (1 - MEMORISATION_QUANTILE) / n)
    assert memorised > 0.9 and memorised > MEMORISATION_QUANTILE + slack
    assert independent < MEMORISATION_QUANTILE + slack and memorised - independent > 0.8


def test_synthetic_generate_end_to_end_through_the_cli(results_dir, capsys):
    args = ["run", "--method", "independent_nb", "--task", "synthetic_generate", "--results-dir", str(results_dir)]
    assert main(args) == 0
    args = ["leaderboard", "--task", "synthetic_generate", "--results-dir", str(results_dir), "--format", "markdown"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "independent_nb" in table and "memorisation_rate" in table and "prdc_precision" in table
    [record] = [json.loads(p.read_text()) for p in results_dir.rglob("result.json")]
    assert record["status"] == "ok" and record["task"] == "synthetic_generate"
