"""The estimator contract shared by all classifiers: parameters, cloning, labels, and the bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.data
from chainrule.classifiers import (DataConversionWarning, KNearestNeighbor, LinearSVM, NotFittedError,
                                   SoftmaxClassifier)

FAST = {"iterations": 50}
ESTIMATORS = [
    pytest.param(lambda: KNearestNeighbor(k=1), id="knn"),
    pytest.param(lambda: LinearSVM(**FAST, random_state=0), id="svm"),
    pytest.param(lambda: SoftmaxClassifier(**FAST, random_state=0), id="softmax"),
]


def data(n=30, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X[:, 0] > 0).astype(int)
    return X, y


# ---- parameters ---------------------------------------------------------------------------------------------------


def test_get_and_set_params_follow_init():
    knn = KNearestNeighbor(k=3)
    assert knn.get_params() == {"augment": False, "chunk_size": "auto", "k": 3, "metric": "l2"}
    assert knn.set_params(metric="l1", k=5) is knn
    assert (knn.k, knn.metric) == (5, "l1")
    with pytest.raises(ValueError, match=r"Invalid parameter 'kk' for estimator KNearestNeighbor. Valid parameters "
                                         r"are: \['augment', 'chunk_size', 'k', 'metric'\]"):
        knn.set_params(kk=1)
    assert set(LinearSVM().get_params()) == {
        "reg", "lr", "iterations", "epochs", "batch_size", "momentum", "optimizer", "schedule", "preprocessing",
        "augment", "margin", "init_scale", "engine", "random_state", "features", "hog_cell", "weight_decay"}
    assert "margin" not in SoftmaxClassifier().get_params()


def test_repr_shows_non_default_parameters():
    assert repr(KNearestNeighbor()) == "KNearestNeighbor()"
    assert repr(KNearestNeighbor(k=5, metric="l1")) == "KNearestNeighbor(k=5, metric='l1')"
    assert repr(LinearSVM(reg=0.5)) == "LinearSVM(reg=0.5)"


def test_sklearn_clone_and_grid_search_work():
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import GridSearchCV

    svm = LinearSVM(reg=0.5, random_state=1)
    twin = clone(svm)
    assert twin is not svm and twin.get_params() == svm.get_params()
    assert is_classifier(svm)
    X, y = data(60)
    search = GridSearchCV(KNearestNeighbor(), {"k": [1, 3]}, cv=3).fit(X, y)
    assert search.best_params_["k"] in (1, 3)


@pytest.mark.parametrize("make", ESTIMATORS)
def test_fit_does_not_touch_the_inputs_or_the_parameters(make):
    X, y = data()
    X.flags.writeable = False  # any in-place write would raise
    est = make()
    before = est.get_params()
    est.fit(X, y)
    assert est.get_params() == before


# ---- labels -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ESTIMATORS)
@pytest.mark.parametrize("labels", [
    np.array(["no", "yes"]), np.array([-3, 10]), np.array([0.0, 2.0]), np.array([False, True]),
    np.array(["no", "yes"], dtype=object)])
def test_any_hashable_labels_map_through_classes(make, labels):
    X, y = data()
    est = make().fit(X, labels[y])
    np.testing.assert_array_equal(est.classes_, labels)
    pred = est.predict(X)
    assert set(pred) <= set(labels)
    assert est.score(X, labels[y]) > 0.7


def test_column_vector_y_warns_and_works():
    X, y = data()
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        knn = KNearestNeighbor().fit(X, y[:, None])
    np.testing.assert_array_equal(knn.predict(X), y)


@pytest.mark.parametrize("make", ESTIMATORS)
@pytest.mark.parametrize("y, message", [
    (np.zeros(30, dtype=int), r"y has 1 class \(0\); \w+ needs samples of at least 2 classes"),
    (np.array([1, "a"] * 15, dtype=object), r"Mix of label input types \(number, str\)"),
    (np.linspace(0, 1, 30), r"Unknown label type: continuous.*got 0\.0344\d* at index 1"),
    (np.r_[np.nan, np.ones(29)], r"Input y contains NaN \(first at index 0\)"),
    (np.ones((30, 2)), r"y should be a 1d array, got an array of shape \(30, 2\)"),
    (np.arange(29) % 2, "X and y have inconsistent numbers of samples: X has 30, y has 29"),
    (None, "requires y to be passed, but the target y is None"),
])
def test_bad_labels(make, y, message):
    X, _ = data()
    with pytest.raises(ValueError, match=message):
        make().fit(X, y)


# ---- inputs ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ESTIMATORS)
def test_predicting_before_fit_is_an_error(make):
    est = make()
    X, _ = data()
    for method in ("predict", "decision_function", "predict_proba", "kneighbors", "score"):
        if hasattr(est, method):
            args = (X, np.zeros(30)) if method == "score" else (X,)
            with pytest.raises(NotFittedError, match=f"This {type(est).__name__} instance is not fitted yet"):
                getattr(est, method)(*args)


def test_not_fitted_error_is_also_the_data_modules_and_sklearns():
    import sklearn.exceptions

    with pytest.raises(chainrule.data.NotFittedError):
        KNearestNeighbor().predict(np.zeros((1, 2)))
    with pytest.raises(sklearn.exceptions.NotFittedError):  # sklearn is imported: the error is both
        KNearestNeighbor().predict(np.zeros((1, 2)))
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


@pytest.mark.parametrize("make", ESTIMATORS)
def test_bad_inputs(make):
    X, y = data()
    est = make().fit(X, y)
    name = type(est).__name__
    with pytest.raises(ValueError, match=f"X has 5 features, but {name} is expecting 4 features as input"):
        est.predict(np.zeros((2, 5)))
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"Input X contains NaN \(first at sample 3, feature 2\)"):
        est.predict(bad)
    bad[3, 2] = -np.inf
    with pytest.raises(ValueError, match=r"Input X contains infinity \(first at sample 3, feature 2\)"):
        make().fit(bad, y)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array instead"):
        est.predict(X[0])
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\) \(shape=\(0, 4\)\)"):
        est.predict(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        est.predict(X + 1j)
    with pytest.raises(ValueError, match="expects numeric X, got dtype <U1"):
        est.predict(np.full((2, 4), "a"))


def test_huge_finite_values_are_not_mistaken_for_infinity():
    X = np.full((4, 3), 1e308)  # the float64 sum overflows; the entries are finite
    X[::2] *= -1
    knn = KNearestNeighbor(metric="l1").fit(X / 1e300, [0, 1, 0, 1])
    assert knn.predict(X / 1e300).tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"values beyond the float32 range \(\|x\| <= 3.4e\+38\)"):
        KNearestNeighbor().fit(X, [0, 1, 0, 1])  # float32 would turn them into inf


def test_sparse_input_is_refused_clearly():
    import scipy.sparse

    X, y = data()
    with pytest.raises(TypeError, match="does not accept sparse input.*X.toarray()"):
        KNearestNeighbor().fit(scipy.sparse.csr_matrix(X), y)


def test_images_and_their_flat_rows_are_the_same_input():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (20, 2, 2, 3), dtype=np.uint8)
    y = np.arange(20) % 2
    svm = LinearSVM(**FAST, random_state=0).fit(X, y)
    np.testing.assert_array_equal(svm.decision_function(X), svm.decision_function(X.reshape(20, 12)))
    with pytest.raises(ValueError, match=r"X has 9 features, but LinearSVM is expecting 12 .*fitted on samples of "
                                         r"shape \(2, 2, 3\); got shape \(3, 3\)"):
        svm.predict(X[:, :, :, 0].reshape(20, 4)[:, None, :3].repeat(3, 1))


@pytest.mark.parametrize("cls", ["LinearSVM", "SoftmaxClassifier", "MLPClassifier"])
@pytest.mark.parametrize("fitted_before", [False, True])
def test_a_failed_fit_leaves_the_estimator_not_fitted(cls, fitted_before):
    from sklearn.exceptions import NotFittedError as SklearnNotFitted
    from sklearn.utils.validation import check_is_fitted

    import chainrule.classifiers as clf

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 5)).astype(np.float32), np.arange(60) % 3
    budget = {"epochs": 20, "preprocessing": None} if cls == "MLPClassifier" else {"iterations": 200}
    est = getattr(clf, cls)(lr=10.0, random_state=0, **budget)
    if fitted_before:
        est.set_params(lr=0.01).fit(X, y)
        est.set_params(lr=10.0)
    extra = {"reg": 10.0} if cls != "MLPClassifier" else {"optimizer": "sgd", "lr": 1e6}
    est.set_params(**extra)
    with pytest.raises(FloatingPointError, match="diverged|loss is inf|not finite"):
        est.fit(X * 1e3, y)
    assert vars(est) == {k: v for k, v in est.get_params().items()}  # a new estimator's state: nothing half-set
    for use in (est.predict, est.score, est.save):
        with pytest.raises(SklearnNotFitted, match=f"This {cls} instance is not fitted yet"):
            use(X, y) if use == est.score else use(X) if use == est.predict else use("never-written.npz")
    with pytest.raises(SklearnNotFitted):
        check_is_fitted(est)
    assert est.set_params(**({"lr": 0.01, "reg": 1e-3} if cls != "MLPClassifier" else
                             {"lr": 0.01, "weight_decay": 0.0})).fit(X, y).score(X, y) > 0.3
