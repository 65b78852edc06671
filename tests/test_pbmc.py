import numpy as np
import pytest

from countsbench.registry import REGISTRY
from countsbench.tasks.masks import mcar_mask
from countsbench.tasks.pbmc import PBMC_CONDITION_KEY, read_pbmc68k


@pytest.fixture(scope="module")
def pbmc():
    return REGISTRY.tasks.get("pbmc_mcar").factory().load(None)


def test_counts_are_recovered_as_integers():
    dataset = read_pbmc68k()
    assert dataset.counts.shape == (700, 765)
    assert dataset.counts.dtype == np.int64 and dataset.counts.min() == 0
    # library sizes of the recovered counts match the file's n_counts (which they were derived from)
    assert dataset.counts.sum(axis=1).min() > 0


def test_split_is_70_10_20_stratified_with_shared_vocabularies(pbmc):
    sizes = [pbmc.train.n_samples, pbmc.valid.n_samples, pbmc.test.n_samples]
    assert sum(sizes) == 700 and abs(sizes[0] - 490) <= 5 and abs(sizes[2] - 140) <= 5
    vocab = pbmc.train.vocabularies[PBMC_CONDITION_KEY]
    assert len(vocab) == 10
    for split in (pbmc.valid, pbmc.test):
        assert split.vocabularies[PBMC_CONDITION_KEY] == vocab
        assert len(np.unique(split.conditions[PBMC_CONDITION_KEY])) == 10


def test_mcar_targets_are_half_of_the_valid_test_entries(pbmc):
    valid = pbmc.test.valid_mask()
    target = pbmc.test_target
    assert not np.any(target & ~valid)
    n = valid.sum()
    assert abs(target.sum() / n - 0.5) < 4 * np.sqrt(0.25 / n)
    # the mask is the task's, fixed: loading again gives the same targets
    again = REGISTRY.tasks.get("pbmc_mcar").factory().load(None)
    np.testing.assert_array_equal(target, again.test_target)
    assert np.any(target != mcar_mask(valid, 0.5, seed=99))


def test_mnar_targets_favour_low_values():
    data = REGISTRY.tasks.get("pbmc_mnar").factory().load(None)
    counts, valid, target = data.test.dense(), data.test.valid_mask(), data.test_target
    assert abs(target.sum() / valid.sum() - 0.25) < 0.02
    assert counts[target].mean() < 0.5 * counts[valid].mean()


def test_mnar_high_targets_favour_high_values_on_the_same_split():
    low = REGISTRY.tasks.get("pbmc_mnar").factory().load(None)
    data = REGISTRY.tasks.get("pbmc_mnar_high").factory().load(None)
    np.testing.assert_array_equal(data.test.dense(), low.test.dense())  # same split: models are shared
    counts, valid, target = data.test.dense(), data.test.valid_mask(), data.test_target
    assert not np.any(target & ~valid)
    assert abs(target.sum() / valid.sum() - 0.25) < 0.02
    assert counts[target].mean() > 2.0 * counts[valid].mean()
