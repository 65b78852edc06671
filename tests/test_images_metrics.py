"""Image metrics on real digits: the classifier, FID, IS and class accuracy, and the sample grid."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from scipy import linalg

from countsbench.evaluation import Evaluation, score
from countsbench.metrics.images.digits_classifier import ClassifierSettings, accuracy, train_classifier
from countsbench.metrics.images.extractor import extractor_for
from countsbench.metrics.images.features import _cache_path, generated_features
from countsbench.metrics.images.scores import frechet_distance, inception_score
from countsbench.registry import REGISTRY
from countsbench.tasks.images.grid import save_sample_grid
from countsbench.tracking import Tracker

IMAGE_METRICS = ["fid", "inception_score", "class_accuracy"]


@pytest.fixture(scope="module")
def digits():
    return REGISTRY.tasks.get("digits").factory().load()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache directory for the module: the classifier is trained once and loaded after that."""
    return tmp_path_factory.mktemp("image_cache")


@pytest.fixture(scope="module")
def classifier(digits, cache):
    return extractor_for(evaluation(digits, digits.test.dense(), cache_dir=cache)).network


def evaluation(digits, generated, truth=None, cache_dir=None) -> Evaluation:
    truth = digits.test if truth is None else truth
    return Evaluation(
        "generation",
        truth,
        generated,
        digits.train,
        options=digits.metric_options,
        label_key="label",
        cache_dir=cache_dir,
    )


def test_classifier_recognises_held_out_digits(digits, classifier):
    assert accuracy(classifier, digits.test, "label") > 0.95
    assert accuracy(classifier, digits.valid, "label") > 0.95


def test_classifier_training_is_deterministic(digits):
    settings = ClassifierSettings(epochs=1)
    first, again = (train_classifier(digits.valid, "label", settings) for _ in range(2))
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy())


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    """Reference FID with scipy's matrix square root."""
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = linalg.sqrtm(cx @ cy).real
    return float(np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(cx + cy - 2 * root))


def test_frechet_distance_matches_scipy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(500, 6)), rng.normal(0.3, 1.5, size=(400, 6)) @ rng.normal(size=(6, 6))
    assert frechet_distance(x, y) == pytest.approx(scipy_fid(x, y), rel=1e-6)


def test_fid_is_near_zero_for_halves_of_the_data_and_large_for_noise(digits, cache):
    pixels = np.concatenate([digits.train.dense(), digits.valid.dense(), digits.test.dense()])
    labels = np.concatenate([d.conditions["label"] for d in (digits.train, digits.valid, digits.test)])
    order = np.random.default_rng(0).permutation(len(pixels))
    half_a, half_b = order[: len(order) // 2], order[len(order) // 2 :]
    truth = digits.test.subset(np.arange(0))  # a template with the digits' shape and vocabularies
    truth = type(truth)(
        pixels[half_a], conditions={"label": labels[half_a]}, vocabularies=truth.vocabularies,
        sample_shape=truth.sample_shape, max_value=truth.max_value,
    )  # fmt: skip
    same = score(evaluation(digits, pixels[half_a], truth, cache_dir=cache), ["fid"])["fid"]
    halves = score(evaluation(digits, pixels[half_b], truth, cache_dir=cache), ["fid"])["fid"]
    noise_images = np.random.default_rng(1).integers(0, 17, size=(len(half_b), 64))
    noise = score(evaluation(digits, noise_images, truth, cache_dir=cache), ["fid"])["fid"]
    assert same == pytest.approx(0.0, abs=1e-6)
    # Two samples of ~900 images differ only by sampling noise: far below what noise images score.
    assert halves < 0.05 * noise and noise > 100


def test_inception_score_bounds(digits, cache):
    n_classes = 10
    real = score(evaluation(digits, digits.test.dense(), cache_dir=cache), ["inception_score"])["inception_score"]
    assert 1.0 <= real <= n_classes and real > 0.9 * n_classes  # confident, balanced classes
    uniform = inception_score(np.zeros((50, n_classes)))
    assert uniform == pytest.approx(1.0)
    one_class = inception_score(np.tile(np.eye(n_classes)[0] * 50, (50, 1)))
    assert one_class == pytest.approx(1.0, abs=1e-6)
    rng = np.random.default_rng(0)
    random_logits = inception_score(rng.normal(scale=5.0, size=(200, n_classes)))
    assert 1.0 <= random_logits <= n_classes


def test_class_accuracy_compares_with_the_classes_asked_for(digits, cache):
    real = digits.test.dense()
    exact = score(evaluation(digits, real, cache_dir=cache), ["class_accuracy"])["class_accuracy"]
    assert exact > 0.95
    # Rows shuffled: each sample answers some other class's request (about 10% agree by chance).
    shuffled = real[np.random.default_rng(0).permutation(len(real))]
    chance = score(evaluation(digits, shuffled, cache_dir=cache), ["class_accuracy"])["class_accuracy"]
    n = len(real)
    assert chance < 0.1 + 4 * np.sqrt(0.1 * 0.9 / n)


def test_real_features_are_cached_on_disk_and_reused(digits, cache):
    generated = digits.test.dense()[:100]
    first = evaluation(digits, generated, truth=digits.valid, cache_dir=cache)
    fid = score(first, ["fid"])["fid"]
    path = _cache_path(first, extractor_for(first))
    assert path.is_file() and len(list((cache / "digits_classifier").iterdir())) == 1
    with np.load(path) as stored:
        features, logits = stored["features"], stored["logits"]
    assert features.shape == (digits.valid.n_samples, 64)
    np.savez(path, features=features + 1.0, logits=logits)  # a later evaluation must read this file
    second = evaluation(digits, generated, truth=digits.valid, cache_dir=cache)
    assert score(second, ["fid"])["fid"] != pytest.approx(fid)
    assert np.array_equal(generated_features(second)[0], generated_features(first)[0])


def test_generated_values_are_scored_clipped_to_the_data_range(digits, cache):
    real = digits.test.dense()
    too_bright = score(evaluation(digits, real + 100, cache_dir=cache), ["fid"])["fid"]
    clipped = score(evaluation(digits, np.clip(real + 100, 0, 16), cache_dir=cache), ["fid"])["fid"]
    assert too_bright == pytest.approx(clipped)


def test_sample_grid_has_a_row_per_class(digits, tmp_path):
    path = save_sample_grid(digits.test, digits.test.dense(), tmp_path / "grid.png")
    with Image.open(path) as picture:
        assert picture.height == 4 * (10 * 9 + 1)  # 10 class rows of 8 pixels plus gaps, enlarged 4x
        assert picture.width == 4 * (2 * (10 * 9 + 1) + 8)  # generated, a white gap, real


def test_cli_runs_a_tiny_digits_generation_with_image_metrics_and_a_grid(digits, cache, results_dir, one_thread):
    from countsbench.cli import main

    # Reuse this module's trained classifier (the results directory's metric cache) to keep the test fast.
    shutil.copytree(cache / "digits_classifier", results_dir / "cache" / "digits_classifier")
    settings = ["steps=10", "n_steps=2", "unet_channels=8,16", "batch_size=16"]
    args = ["run", "--method", "countsdiff", "--task", "digits", "--results-dir", str(results_dir)]
    assert main(args + [item for pair in settings for item in ("--set", pair)]) == 0
    (path,) = (results_dir / "cells").glob("*/result.json")
    result = json.loads(path.read_text())
    assert result["status"] == "ok", result["error"]
    metrics = result["metrics"]
    assert metrics["fid"] > 0 and 1 <= metrics["inception_score"] <= 10 and 0 <= metrics["class_accuracy"] <= 1
    assert result["metric_directions"]["fid"] == "minimize"
    assert result["metric_directions"]["class_accuracy"] == "maximize"
    grid = path.parent / "artifacts" / "samples_by_class.png"
    with Image.open(grid) as picture:
        assert picture.size == (4 * (2 * (10 * 9 + 1) + 8), 4 * (10 * 9 + 1))
    artifacts = [a.path for a in Tracker(results_dir).client.list_artifacts(result["mlflow_run_id"])]
    assert "samples_by_class.png" in artifacts
