import numpy as np
import pytest
import scipy.sparse as sp

from countsbench.data import CountData, CountDataError, encode_categories


def test_dense_and_sparse_counts_are_accepted_and_stay_in_their_format():
    counts = np.array([[0, 2], [3, 0]])
    dense = CountData(counts=counts.astype(float))
    assert dense.counts.dtype == np.int64 and not dense.is_sparse
    sparse = CountData(counts=sp.csr_matrix(counts))
    assert sparse.is_sparse and sparse.counts.nnz == 2
    np.testing.assert_array_equal(sparse.dense(), counts)


@pytest.mark.parametrize(
    "counts,message",
    [
        (np.array([[1, -1]]), "non-negative"),
        (np.array([[1.5, 0.0]]), "integer-valued"),
        (np.array([[np.nan, 1.0]]), "NaN or infinite"),
        (np.array([[np.inf, 1.0]]), "NaN or infinite"),
        (np.array([1, 2]), "2-D"),
        (np.array([["a", "b"]]), "numeric"),
        (sp.csr_matrix(np.array([[0.0, -3.0]])), "non-negative"),
    ],
)
def test_invalid_counts_are_rejected(counts, message):
    with pytest.raises(CountDataError, match=message):
        CountData(counts=counts)


def test_masks_conditions_and_shapes_are_checked():
    counts = np.ones((2, 3), dtype=int)
    with pytest.raises(CountDataError, match="valid mask"):
        CountData(counts=counts, valid=np.ones((2, 2), dtype=bool))
    with pytest.raises(CountDataError, match="vocabulary"):
        CountData(counts=counts, conditions={"c": np.array([0, 1])})
    with pytest.raises(CountDataError, match="outside its vocabulary"):
        CountData(counts=counts, conditions={"c": np.array([0, 2])}, vocabularies={"c": ("a", "b")})
    with pytest.raises(CountDataError, match="feature names"):
        CountData(counts=counts, feature_names=("a",))
    with pytest.raises(CountDataError, match="sample_shape"):
        CountData(counts=counts, sample_shape=(2, 2))
    with pytest.raises(CountDataError, match="maximum"):
        CountData(counts=counts * 5, max_value=4)


def test_with_hidden_zeroes_targets_only():
    data = CountData(counts=np.array([[1, 2], [3, 4]]))
    target = np.array([[True, False], [False, True]])
    np.testing.assert_array_equal(data.with_hidden(target).dense(), [[0, 2], [3, 0]])
    sparse = CountData(counts=sp.csr_matrix(np.array([[1, 2], [3, 4]])))
    np.testing.assert_array_equal(sparse.with_hidden(target).dense(), [[0, 2], [3, 0]])
    assert sparse.with_hidden(target).is_sparse


def test_categories_share_the_training_vocabulary():
    (train, test), vocabulary = encode_categories([["b", "a", "b"], ["b", "b"]])
    assert vocabulary == ("a", "b")
    np.testing.assert_array_equal(train, [1, 0, 1])
    np.testing.assert_array_equal(test, [1, 1])  # codes do not restart per split (research-code bug 4)
    with pytest.raises(CountDataError, match="not in the training vocabulary"):
        encode_categories([["a"], ["c"]])
