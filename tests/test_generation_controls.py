"""The generation controls (`countsbench.methods.generation_controls`): memorise returns training rows of the asked
condition; independent_nb reproduces the training data's per-feature means and variances per condition.

Tolerances are 4 standard errors at the number of samples drawn (of a mean: sqrt(v / n); of a
variance: sqrt((m4 - v^2) / n), with the fourth central moment m4 estimated from the samples)."""

from __future__ import annotations

import numpy as np
import pytest

from countsbench import CountData, RunContext
from countsbench.methods.generation_controls import IndependentNegativeBinomial, MemorisingSampler
from countsbench.registry import REGISTRY
from countsbench.tasks.images.digits import DIGITS_MAX, DigitsTask
from countsbench.tasks.toy import ToyNegativeBinomialTask

VOCAB = {"type": ("a", "b", "c")}


def labelled(counts: np.ndarray, types: np.ndarray) -> CountData:
    return CountData(counts, conditions={"type": types}, vocabularies=VOCAB)


def two_types(n: int, rng: np.random.Generator) -> CountData:
    """Type a: NB features with means 0.5, 3 and 10 (variances 1.5, 7.5, 60) and a binomial one
    (mean 2, variance 1 < mean); type b: other means. Type c never occurs."""

    def nb(mean: float, size: float, k: int) -> np.ndarray:
        return rng.negative_binomial(size, size / (size + mean), k)

    a = np.stack([nb(0.5, 0.25, n), nb(3.0, 2.0, n), nb(10.0, 2.0, n), rng.binomial(4, 0.5, n)], axis=1)
    b = np.stack([nb(2.0, 1.0, n), nb(0.2, 0.5, n), nb(1.0, 5.0, n), rng.binomial(8, 0.5, n)], axis=1)
    return labelled(np.concatenate([a, b]), np.repeat([0, 1], n))


def test_controls_are_registered_for_generation():
    for name in ("memorise", "independent_nb"):
        spec = REGISTRY.methods.get(name)
        assert spec.role == "control" and spec.kinds == ("generation",) and spec.summary


def test_memorise_returns_training_rows_of_the_asked_condition():
    rng = np.random.default_rng(0)
    train = labelled(rng.integers(0, 1000, size=(60, 3)), np.repeat([0, 1, 2], 20))
    method = MemorisingSampler()
    method.fit(train, None, RunContext())
    asked = np.array([0] * 15 + [1] * 25 + [2] * 5)  # 25 of type b: more than its 20 training rows
    out = method.sample(len(asked), {"type": asked}, RunContext(seed=3))
    rows_of = {t: {tuple(r) for r in train.dense()[train.conditions["type"] == t]} for t in range(3)}
    assert all(tuple(r) in rows_of[t] for r, t in zip(out, asked, strict=True))
    assert len({tuple(r) for r in out[asked == 0]}) == 15  # without replacement within a group
    assert len({tuple(r) for r in out[asked == 1]}) == 20  # every row of the group before any repeat
    unseen = labelled(np.zeros((1, 3), int), np.array([0]))  # only type a in training
    method.fit(unseen, None, RunContext())
    assert method.sample(2, {"type": np.array([2, 2])}, RunContext()).tolist() == [[0, 0, 0]] * 2


def test_memorise_unconditional_is_a_permutation_of_the_training_split():
    data = ToyNegativeBinomialTask().sample_dataset()
    method = MemorisingSampler()
    method.fit(data.train, data.valid, RunContext())
    out = method.sample(data.train.n_samples, None, RunContext(seed=1))
    order = np.lexsort(out.T)
    expected = data.train.dense()[np.lexsort(data.train.dense().T)]
    np.testing.assert_array_equal(out[order], expected)
    assert not np.array_equal(out, data.train.dense())  # drawn in a random order


def test_independent_nb_matches_the_training_moments_per_condition():
    train = two_types(3000, np.random.default_rng(1))
    method = IndependentNegativeBinomial()
    method.fit(train, None, RunContext())
    n = 40_000
    for t in (0, 1):
        rows = train.dense()[train.conditions["type"] == t].astype(np.float64)
        mean, var = rows.mean(axis=0), rows.var(axis=0, ddof=1)
        np.testing.assert_allclose(method.means[method.groups.combos[(t,)]], mean)
        out = method.sample(n, {"type": np.full(n, t)}, RunContext(seed=2)).astype(np.float64)
        expected_var = np.where(var > mean, var, mean)  # binomial features (variance < mean) are Poisson
        assert np.all(np.abs(out.mean(axis=0) - mean) <= 4 * np.sqrt(expected_var / n))
        m4 = np.mean((out - out.mean(axis=0)) ** 4, axis=0)
        se_var = np.sqrt((m4 - out.var(axis=0) ** 2) / n)
        assert np.all(np.abs(out.var(axis=0, ddof=1) - expected_var) <= 4 * se_var)
    assert (var < mean)[3] and not (var < mean)[:3].any()  # the last feature took the Poisson fallback


def test_independent_nb_pools_every_row_for_an_unseen_condition():
    train = two_types(500, np.random.default_rng(4))
    method = IndependentNegativeBinomial()
    method.fit(train, None, RunContext())
    np.testing.assert_allclose(method.means[0], train.dense().mean(axis=0))
    np.testing.assert_allclose(method.variances[0], train.dense().var(axis=0, ddof=1))
    pooled = method.sample(5, {"type": np.full(5, 2)}, RunContext())  # type c: never in training
    assert pooled.shape == (5, 4) and pooled.dtype.kind == "i"


@pytest.mark.parametrize("cls", [MemorisingSampler, IndependentNegativeBinomial])
def test_controls_generate_images_within_the_pixel_range(cls, tmp_path):
    data = DigitsTask().sample_dataset()
    method = cls()
    method.fit(data.train, data.valid, RunContext())
    method.save(tmp_path)
    method = cls.load(tmp_path)
    labels = data.test.conditions["label"]
    out = method.sample(len(labels), {"label": labels}, RunContext(seed=5))
    assert out.shape == (data.test.n_samples, 64) and out.min() >= 0 and out.max() <= DIGITS_MAX
    assert np.array_equal(out, cls.load(tmp_path).sample(len(labels), {"label": labels}, RunContext(seed=5)))
    if cls is IndependentNegativeBinomial:
        draws = method.sample(20_000, {"label": np.zeros(20_000, int)}, RunContext())
        assert draws.max() == DIGITS_MAX  # the NB's tail is clamped at the data's maximum
