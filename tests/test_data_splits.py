"""Seeded, stratified train/validation splits and k-fold partitions."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule.data import kfold, train_val_indices, train_val_split


def labels(sizes) -> np.ndarray:
    y = np.repeat(np.arange(len(sizes)), sizes)
    return np.random.default_rng(123).permutation(y)


def test_stratified_split_keeps_class_shares():
    y = labels([50, 30, 20])
    X = np.arange(len(y) * 2).reshape(len(y), 2)
    X_tr, y_tr, X_val, y_val = train_val_split(X, y, 0.2, seed=0)
    np.testing.assert_array_equal(np.bincount(y_val), [10, 6, 4])
    np.testing.assert_array_equal(np.bincount(y_tr), [40, 24, 16])
    # Rows stay paired with their labels and every sample lands in exactly one part.
    rows = np.concatenate([X_tr[:, 0], X_val[:, 0]]) // 2
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(y)))
    np.testing.assert_array_equal(np.concatenate([y_tr, y_val]), y[rows])


def test_indices_disjoint_covering_sorted_and_seeded():
    y = labels([7, 5, 9, 3])
    tr, val = train_val_indices(y, 6, seed=1)
    assert len(val) == 6 and len(tr) == len(y) - 6
    assert not np.intersect1d(tr, val).size
    np.testing.assert_array_equal(np.union1d(tr, val), np.arange(len(y)))
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(val) > 0)
    tr2, val2 = train_val_indices(y, 6, seed=1)
    np.testing.assert_array_equal(val, val2)
    seeds = {tuple(train_val_indices(y, 6, seed=s)[1]) for s in range(10)}
    assert len(seeds) > 5
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(train_val_indices(y, 0.25, seed=g1)[1],
                                  train_val_indices(y, 0.25, seed=g2)[1])


def test_largest_remainder_allocation_hits_requested_size():
    y = labels([3, 3, 3])
    for n_val in range(1, 9):
        _, val = train_val_indices(y, n_val, seed=0)
        assert len(val) == n_val
        counts = np.bincount(y[val], minlength=3)
        assert counts.max() - counts.min() <= 1


def test_unstratified_split():
    y = labels([90, 10])
    _, val = train_val_indices(y, 0.5, stratify=False, seed=0)
    assert len(val) == 50


def test_split_errors():
    y = labels([5, 5])
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        train_val_indices(y, 1.5)
    with pytest.raises(ValueError, match="between 1 and 9"):
        train_val_indices(y, 10)
    with pytest.raises(ValueError, match="length 3"):
        train_val_split(np.zeros((3, 2)), y)
    with pytest.raises(TypeError, match="seed"):
        train_val_indices(y, 2, seed=1.5)


@pytest.mark.parametrize("n,k", [(10, 2), (23, 5), (7, 7)])
def test_kfold_partitions(n, k):
    folds = list(kfold(n, k, seed=0))
    assert len(folds) == k
    vals = [v for _, v in folds]
    np.testing.assert_array_equal(np.sort(np.concatenate(vals)), np.arange(n))  # disjoint, covering
    for tr, val in folds:
        np.testing.assert_array_equal(np.union1d(tr, val), np.arange(n))
        assert not np.intersect1d(tr, val).size
    sizes = [len(v) for v in vals]
    assert max(sizes) - min(sizes) <= 1
    again = list(kfold(n, k, seed=0))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    other = list(kfold(n, k, seed=1))
    assert n == k or any(not np.array_equal(a[1], b[1]) for a, b in zip(folds, other))


def test_stratified_kfold_balances_each_class():
    y = labels([13, 7, 22])
    folds = list(kfold(len(y), 4, stratify_labels=y, seed=3))
    vals = [v for _, v in folds]
    np.testing.assert_array_equal(np.sort(np.concatenate(vals)), np.arange(len(y)))
    for c, size in enumerate([13, 7, 22]):
        per_fold = [int(np.sum(y[v] == c)) for v in vals]
        assert sum(per_fold) == size
        assert set(per_fold) <= {size // 4, -(-size // 4)}
    sizes = [len(v) for v in vals]
    assert max(sizes) - min(sizes) <= 1


def test_kfold_errors():
    with pytest.raises(ValueError, match=r"k must be an int in \[2, n=3\]"):
        list(kfold(3, 4))
    with pytest.raises(ValueError, match="stratify_labels"):
        list(kfold(4, 2, stratify_labels=np.zeros(3, int)))
