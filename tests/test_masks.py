import numpy as np
import pytest

from countsbench.tasks.masks import default_slack, dropout_valid_mask, mcar_mask, mnar_mask
from countsbench.tasks.splits import stratified_split


def test_dropout_valid_mask_follows_scidpms_algorithm_1():
    counts = np.array([[0, 0, 5], [2, 0, 0], [0, 0, 0], [0, 1, 0]])
    types = np.array(["a", "a", "b", "b"])
    valid = dropout_valid_mask(counts, types)
    # type a: gene 0 expressed (zero at row 0 is a dropout), gene 1 never (zeros valid), gene 2 expressed
    # type b: gene 1 expressed (zero at row 2 is a dropout), genes 0 and 2 never (zeros valid)
    expected = np.array(
        [
            [False, True, True],
            [True, True, False],
            [True, False, True],
            [True, True, True],
        ]
    )
    np.testing.assert_array_equal(valid, expected)


def test_mcar_rate_and_seeding():
    valid = np.random.default_rng(0).random((400, 250)) < 0.4
    mask = mcar_mask(valid, 0.5, seed=3)
    assert not np.any(mask & ~valid)
    n = valid.sum()
    # binomial standard deviation of the selected share: sqrt(p(1-p)/n); allow 4 of them
    assert abs(mask.sum() / n - 0.5) < 4 * np.sqrt(0.25 / n)
    np.testing.assert_array_equal(mask, mcar_mask(valid, 0.5, seed=3))
    assert np.any(mask != mcar_mask(valid, 0.5, seed=4))
    with pytest.raises(ValueError, match="rate"):
        mcar_mask(valid, 1.5, seed=0)


def test_mnar_low_selects_low_values_per_gene_and_is_seeded():
    rng = np.random.default_rng(1)
    counts = rng.poisson(rng.gamma(1.0, 3.0, size=(1, 40)), size=(500, 40))
    valid = rng.random(counts.shape) < 0.8
    mask = mnar_mask(counts, valid, 0.25, seed=7, low=True)
    assert not np.any(mask & ~valid)
    per_gene = mask.sum(axis=0)
    np.testing.assert_array_equal(per_gene, np.floor(0.25 * valid.sum(axis=0)).astype(int))
    assert counts[mask].mean() < 0.6 * counts[valid].mean()
    # chosen values never exceed the (n + slack)-th smallest valid value of their gene
    for gene in range(counts.shape[1]):
        values = np.sort(counts[valid[:, gene], gene])
        n = per_gene[gene]
        assert counts[mask[:, gene], gene].max() <= values[n + default_slack(values.size) - 1]
    np.testing.assert_array_equal(mask, mnar_mask(counts, valid, 0.25, seed=7))
    high = mnar_mask(counts, valid, 0.25, seed=7, low=False)
    assert counts[high].mean() > 1.5 * counts[valid].mean()


def test_mnar_ties_do_not_favour_low_cell_indices():
    counts = np.zeros((1000, 1), dtype=int)  # all ties
    mask = mnar_mask(counts, np.ones_like(counts, dtype=bool), 0.25, seed=0)
    rows = np.flatnonzero(mask[:, 0])
    assert rows.size == 250
    assert abs(rows.mean() - 499.5) < 4 * 289 / np.sqrt(250)  # uniform over rows, not the first 250


def test_stratified_split_keeps_every_class_in_every_split():
    labels = np.array(["a"] * 8 + ["b"] * 100)
    train, valid, test = stratified_split(labels, (0.7, 0.1, 0.2), seed=0)
    assert len(set(train) | set(valid) | set(test)) == 108 and len(train) + len(valid) + len(test) == 108
    for part in (train, valid, test):
        assert set(labels[part]) == {"a", "b"}
    again = stratified_split(labels, (0.7, 0.1, 0.2), seed=0)
    np.testing.assert_array_equal(train, again[0])
