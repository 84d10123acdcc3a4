"""cross_validate and the fold logic: the same folds as chainrule.data.kfold, scores equal a plain loop."""

import numpy as np
import pytest

from chainrule.data import kfold, train_val_indices
from chainrule.tune import Diverged, cross_validate, make_folds
from tune_toys import ToyKNN, ToySoftmax, blobs


@pytest.fixture
def data(tune_data):
    return tune_data


def test_folds_are_chainrule_data_kfold_with_the_same_seed(data):
    X, y = data
    folds = make_folds(y, 5, seed=7)
    expected = list(kfold(len(y), 5, stratify_labels=y, seed=7))
    assert len(folds) == 5
    for (tr, va), (tr2, va2) in zip(folds, expected):
        np.testing.assert_array_equal(tr, tr2)
        np.testing.assert_array_equal(va, va2)
    # validation folds partition the data; each keeps the class balance (20 per class / 5 folds = 4 each)
    assert sorted(np.concatenate([va for _, va in folds]).tolist()) == list(range(len(y)))
    for tr, va in folds:
        assert np.bincount(y[va]).tolist() == [4, 4, 4]
        assert not set(tr) & set(va)
    assert make_folds(y, 5, seed=8)[0][1].tolist() != folds[0][1].tolist()


def test_holdout_is_train_val_indices(data):
    X, y = data
    ((tr, va),) = make_folds(y, "holdout", seed=3, val_size=0.25)
    tr2, va2 = train_val_indices(y, 0.25, seed=3)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(va, va2)


def test_string_labels_are_stratified_like_their_codes(data):
    X, y = data
    names = np.array(["cat", "dog", "emu"])[y]
    for (tr, va), (tr2, va2) in zip(make_folds(names, 4, seed=0), make_folds(y, 4, seed=0)):
        np.testing.assert_array_equal(va, va2)


def test_scores_equal_a_plain_loop_over_the_folds(data):
    X, y = data
    cv = cross_validate(ToyKNN(k=3), X, y, k=5, seed=2, n_jobs=1)
    expected = [ToyKNN(k=3).fit(X[tr], y[tr]).score(X[va], y[va]) for tr, va in kfold(len(y), 5, stratify_labels=y,
                                                                                        seed=2)]
    np.testing.assert_allclose(cv.scores, expected)
    assert cv.mean == pytest.approx(np.mean(expected)) and cv.std == pytest.approx(np.std(expected))
    assert cv.fit_times.shape == cv.score_times.shape == (5,)
    assert np.all(cv.fit_times >= 0) and np.all(cv.score_times > 0)
    assert "mean=" in repr(cv)


def test_real_knn_scores_equal_a_plain_loop():
    from chainrule.classifiers import KNearestNeighbor
    from chainrule.data import load_digits

    ds = load_digits()
    X, y = ds.X_train[:400], ds.y_train[:400]
    cv = cross_validate(KNearestNeighbor(k=3), X, y, k=4, seed=0, n_jobs=1)
    expected = [KNearestNeighbor(k=3).fit(X[tr], y[tr]).score(X[va], y[va])
                for tr, va in kfold(len(y), 4, stratify_labels=y, seed=0)]
    np.testing.assert_allclose(cv.scores, expected)
    assert 0.9 < cv.mean <= 1.0


def test_factory_params_and_parallel_workers_give_the_same_scores(data):
    X, y = data
    serial = cross_validate(ToySoftmax, X, y, k=4, seed=0, n_jobs=1, params={"lr": 0.3, "epochs": 15})
    parallel = cross_validate(ToySoftmax(lr=0.3, epochs=15), X, y, k=4, seed=0, n_jobs=2)
    np.testing.assert_array_equal(serial.scores, parallel.scores)
    assert serial.params == {"lr": 0.3, "epochs": 15}


def test_the_estimator_passed_in_is_never_fitted(data):
    X, y = data
    est = ToyKNN(k=1)
    cross_validate(est, X, y, k=3, n_jobs=1)
    assert not hasattr(est, "X_")


def test_k_larger_than_the_smallest_class_is_a_clear_error(data):
    X, y = data
    y = y.copy()
    y[:] = np.where(y == 2, 1, y)
    y[np.flatnonzero(y == 1)[:3]] = 2  # class 2 has 3 samples
    with pytest.raises(ValueError, match=r"k=5 stratified folds need at least 5 samples of every class, but class "
                                         r"2 has only 3; use k <= 3, or stratify=False"):
        cross_validate(ToyKNN(), X, y, k=5)
    cv = cross_validate(ToyKNN(), X, y, k=5, stratify=False, n_jobs=1)  # allowed without stratification
    assert cv.scores.shape == (5,)
    with pytest.raises(ValueError, match=r"needs 2 <= k <= 60"):
        cross_validate(ToyKNN(), X, y, k=61)
    with pytest.raises(ValueError, match="'holdout' or an int"):
        make_folds(y, "5")
    with pytest.raises(ValueError, match="same number of samples"):
        cross_validate(ToyKNN(), X[:10], y, k=3)


def test_a_diverging_configuration_raises_diverged(data):
    X, y = data
    with pytest.raises(Diverged, match="exploded|overflow|invalid"):
        cross_validate(ToySoftmax(lr=1e6), X, y, k=3, n_jobs=1)
