import numpy as np

from countsbench import CountData, RunContext
from countsbench.methods.naive import ConditionalMeanImputation, MeanImputation, ZeroImputation

VOCAB = {"type": ("a", "b", "c")}


def hand_made():
    train = CountData(
        counts=np.array([[1, 10], [3, 0], [5, 7], [9, 9]]),
        valid=np.array([[True, True], [True, False], [True, True], [True, True]]),
        conditions={"type": np.array([0, 0, 1, 1])},
        vocabularies=VOCAB,
    )
    test = CountData(
        counts=np.array([[0, 4], [0, 0], [6, 0]]),
        conditions={"type": np.array([0, 1, 2])},  # type c never occurs in training
        vocabularies=VOCAB,
    )
    target = np.array([[True, False], [True, True], [False, True]])
    return train, test, target


def test_zero_imputation():
    _, test, target = hand_made()
    out = ZeroImputation().impute(test, target, RunContext())
    np.testing.assert_array_equal(out, [[0, 4], [0, 0], [6, 0]])


def test_mean_uses_valid_training_entries_only():
    train, test, target = hand_made()
    method = MeanImputation()
    method.fit(train, None, RunContext())
    # gene 0: (1+3+5+9)/4 = 4.5 -> 5 (half up); gene 1: invalid 0 excluded -> (10+7+9)/3 = 8.67 -> 9
    np.testing.assert_allclose(method.gene_means, [4.5, 26 / 3])
    np.testing.assert_array_equal(method.impute(test, target, RunContext()), [[5, 4], [5, 9], [6, 9]])


def test_conditional_mean_per_group_with_fallback():
    train, test, target = hand_made()
    method = ConditionalMeanImputation()
    method.fit(train, None, RunContext())
    # type a: gene0 (1+3)/2 = 2, gene1 10 (the 0 is invalid); type b: gene0 7, gene1 8;
    # type c: unseen -> gene means 4.5 -> 5 and 8.67 -> 9
    out = method.impute(test, target, RunContext())
    np.testing.assert_array_equal(out, [[2, 4], [7, 8], [6, 9]])


def test_conditional_mean_falls_back_when_a_group_has_no_valid_entry_for_a_gene():
    train = CountData(
        counts=np.array([[2, 0], [4, 6]]),
        valid=np.array([[True, False], [True, True]]),
        conditions={"type": np.array([0, 1])},
        vocabularies=VOCAB,
    )
    method = ConditionalMeanImputation()
    method.fit(train, None, RunContext())
    np.testing.assert_allclose(method.group_means[(0,)], [2.0, 6.0])  # gene 1 falls back to the gene mean
