"""Metrics with a trained model: XGBoost cell-type accuracy on pbmc, scFID with a tiny cached scVI."""

from pathlib import Path

import numpy as np
import pytest

from countsbench.config import ConfigError
from countsbench.evaluation import Evaluation, score
from countsbench.metrics import scfid
from countsbench.registry import REGISTRY


@pytest.fixture(scope="session")
def pbmc():
    task = REGISTRY.tasks.get("pbmc_mcar").factory()
    return task.load(Path("."))


@pytest.fixture(scope="session")
def metric_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("metric-cache")


def pbmc_evaluation(data, prediction, cache_dir, **options):
    return Evaluation(
        "imputation",
        data.test,
        prediction,
        data.train,
        data.test_target,
        label_key="bulk_labels",
        cache_dir=cache_dir,
        options=options,
    )


def test_xgboost_accuracy_on_pbmc_is_about_point_eight_and_drops_after_zero_imputation(pbmc, metric_cache):
    untouched = score(pbmc_evaluation(pbmc, pbmc.test.dense(), metric_cache), ["xgboost_accuracy"], 0)
    zeroed = np.where(pbmc.test_target, 0, pbmc.test.dense())
    zero = score(pbmc_evaluation(pbmc, zeroed, metric_cache), ["xgboost_accuracy", "xgboost_macro_f1"], 0)
    assert 0.75 <= untouched["xgboost_accuracy"] <= 0.92  # SPEC: about 0.8 (measured here: 0.85)
    assert zero["xgboost_accuracy"] < untouched["xgboost_accuracy"] - 0.15  # SPEC: about 0.6
    assert (metric_cache / "xgboost").is_dir() and len(list((metric_cache / "xgboost").iterdir())) == 1


@pytest.fixture(scope="session")
def small_scvi(pbmc, metric_cache):
    """pbmc with the scVI embedding trained briefly (cached for the session)."""
    patch = pytest.MonkeyPatch()
    patch.setitem(scfid.SCVI_SETTINGS, "n_steps", 40)
    yield pbmc
    patch.undo()


@pytest.mark.scvi
def test_scfid_is_zero_for_identical_sets_and_grows_with_the_perturbation(small_scvi, metric_cache):
    data = small_scvi
    truth = data.test.dense()
    rng = np.random.default_rng(0)
    values = []
    for rate in (0.0, 0.3, 1.0):  # zero out a growing share of the targets
        hidden = data.test_target & (rng.random(truth.shape) < rate)
        values.append(score(pbmc_evaluation(data, np.where(hidden, 0, truth), metric_cache), ["scfid"], 0)["scfid"])
    assert values[0] == pytest.approx(0.0, abs=1e-8)
    assert values[0] < values[1] < values[2]
    assert len(list((metric_cache / "scvi").iterdir())) == 1  # one model, reused by every score


@pytest.mark.scvi
def test_pretrained_scvi_matches_genes_by_name_and_refuses_foreign_genes(small_scvi, metric_cache):
    data = small_scvi
    truth = data.test.dense()
    zeroed = np.where(data.test_target, 0, truth)
    default = score(pbmc_evaluation(data, zeroed, metric_cache), ["scfid"], 0)["scfid"]
    model_dir = next((metric_cache / "scvi").iterdir()) / "scvi"
    pretrained = score(pbmc_evaluation(data, zeroed, metric_cache, scvi_model=str(model_dir)), ["scfid"], 0)
    assert pretrained["scfid"] == pytest.approx(default, rel=1e-5)
    from dataclasses import replace

    renamed = replace(data.test, feature_names=tuple(f"other{j}" for j in range(data.test.n_features)))
    foreign = Evaluation("imputation", renamed, zeroed, data.train, data.test_target, options={"scvi_model": model_dir})
    with pytest.raises(ConfigError, match="genes"):
        score(foreign, ["scfid"], 0)
