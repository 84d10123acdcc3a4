"""Finite but huge (or tiny) inputs: the estimators, distances and preprocessing give the model the data itself
gives, never a silently wrong one (digits x 1e30 in float32 used to score 10% with kNN: squares overflow)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from chainrule.classifiers import KNearestNeighbor, LinearSVM, MLPClassifier, SoftmaxClassifier
from chainrule.classifiers.distances import NeighborIndex, distances_no_loops, distances_two_loops
from chainrule.data import MeanImage, Standardize, ZCAWhiten, load_digits, train_val_split


@pytest.fixture(scope="module")
def digits():
    ds = load_digits()
    X = ds.X_train.reshape(len(ds.X_train), -1).astype(np.float32)
    return train_val_split(X, ds.y_train, 0.2, stratify=True, seed=0)


ESTIMATORS = {
    "knn-l2": lambda: KNearestNeighbor(k=1),
    "knn-l2-k3": lambda: KNearestNeighbor(k=3),
    "knn-l1": lambda: KNearestNeighbor(k=1, metric="l1"),
    "mlp-standardize": lambda: MLPClassifier(hidden_sizes=(32,), epochs=8, lr=1e-2, random_state=0),
    "mlp-zca": lambda: MLPClassifier(hidden_sizes=(32,), epochs=8, lr=1e-2, preprocessing="zca", random_state=0),
    "svm-standardize": lambda: LinearSVM(random_state=0),
    "svm-zca": lambda: LinearSVM(preprocessing="zca", random_state=0),
    "softmax-standardize": lambda: SoftmaxClassifier(random_state=0),
}


@pytest.mark.parametrize("scale", [1e30, 1e-30])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_scaled_digits_give_the_model_of_the_digits(digits, name, scale):
    """Digits x 1e30 (x 1e-30) in float32 train the model digits train, with no overflow or underflow warning."""
    X_tr, y_tr, X_val, y_val = digits
    reference = ESTIMATORS[name]().fit(X_tr, y_tr)
    expected = reference.score(X_val, y_val)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # overflow / underflow / invalid value
        est = ESTIMATORS[name]().fit(X_tr * np.float32(scale), y_tr)
        got = est.score(X_val * np.float32(scale), y_val)
    assert expected > 0.85
    assert abs(got - expected) <= 0.01, (got, expected)


def _normal_rows(seed: int, n: int, d: int = 16) -> np.ndarray:
    """Gaussian rows: unlike the digits' small integers, no two distances tie."""
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("scale", [1e30, 1e-30])
@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_knn_distances_scale_with_the_data(metric, scale):
    X_tr, X_q, y_tr = _normal_rows(0, 300), _normal_rows(1, 40), np.arange(300) % 3
    d_ref, i_ref = KNearestNeighbor(k=5, metric=metric).fit(X_tr, y_tr).kneighbors(X_q)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        knn = KNearestNeighbor(k=5, metric=metric).fit(X_tr * np.float32(scale), y_tr)
        d, i = knn.kneighbors(X_q * np.float32(scale))
    np.testing.assert_array_equal(i, i_ref)
    np.testing.assert_allclose(d, d_ref * scale, rtol=1e-5)


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("use_numba", [False, None])
@pytest.mark.parametrize("train_dtype", [np.float32, np.uint8])
def test_far_out_query_rows_rank_like_float64(metric, use_numba, train_dtype):
    """Query rows ~1e38 times the training scale (their float32 products with the training rows overflow) are
    ranked in their own scale (L2: by ||b||^2 - 2 a.b, in float64; against ||a||^2 ~ 1e76 the float64 distances
    themselves tie, and the chosen k are returned in distance order, ties by index; L1: the float64 sums tie
    too); ordinary rows in the same block are not affected. uint8 training rows (no float64 refinement): the
    chosen are the best to float32's precision."""
    X_tr, queries = _normal_rows(0, 300, d=10), _normal_rows(1, 6, d=10)  # d=10: uint8 rows get padded
    if train_dtype == np.uint8:
        X_tr = np.clip(X_tr * 40 + 128, 0, 255).astype(np.uint8)
    queries[::2] *= np.float32(3e38) / np.abs(queries[::2]).max()  # 2 a.b is far past float32's 3.4e38
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        dist, idx = NeighborIndex(X_tr, metric, use_numba=use_numba).query(queries, k=3)
    q64, t64 = queries.astype(np.float64), X_tr.astype(np.float64)
    ref = distances_no_loops(q64, t64, metric)
    rank = ref.copy()
    if metric == "l2":
        rank[::2] = (t64 * t64).sum(axis=1) - 2 * q64[::2] @ t64.T
    np.testing.assert_allclose(dist, np.take_along_axis(ref, idx, axis=1), rtol=1e-6)
    if train_dtype == np.uint8:  # no float64 refinement: the k chosen are the k best to float32's precision
        kth = np.sort(rank, axis=1)[:, 2:3]
        assert (np.take_along_axis(rank, idx, axis=1) <= kth + 1e-6 * np.abs(rank).max(axis=1, keepdims=True)).all()
        return
    chosen = np.argsort(rank, axis=1, kind="stable")[:, :3]  # the three nearest, then in the returned order:
    dists = np.take_along_axis(ref, chosen, axis=1)          # by float64 distance, ties by training index
    order = np.lexsort((chosen, dists), axis=1)
    np.testing.assert_array_equal(idx, np.take_along_axis(chosen, order, axis=1))
    np.testing.assert_allclose(dist, np.take_along_axis(dists, order, axis=1), rtol=1e-12)


def test_extreme_training_rows_against_the_two_loop_definition():
    """float32 rows near the top of float32's range (3e38, squares ~1e77) and near its subnormals."""
    rng = np.random.default_rng(0)
    for scale in (np.float32(3e37), np.float32(1e-37)):
        train = (rng.normal(size=(40, 8)) * scale).astype(np.float32)
        test = (rng.normal(size=(7, 8)) * scale).astype(np.float32)
        for metric in ("l2", "l1"):
            ref = distances_two_loops(test, train, metric)
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                dist, idx = NeighborIndex(train, metric).query(test, k=4)
            np.testing.assert_array_equal(idx, np.argsort(ref, axis=1, kind="stable")[:, :4])
            np.testing.assert_allclose(dist, np.sort(ref, axis=1)[:, :4], rtol=1e-12)


@pytest.mark.parametrize("scale", [1e300, 1e-300, 1e30, 1e-30])
def test_standardize_is_scale_free(scale):
    """float64 x 1e300 (squares overflow float64) or x 1e-300 (they underflow): the same standardised values; a
    tiny-but-varying feature is standardised, not taken for constant (an absolute floor made x 1e-30 constant)."""
    rng = np.random.default_rng(0)
    X = rng.normal(3, 2, size=(300, 5))
    X[:, 4] = 7.0  # constant: only centred
    dtype = np.float64 if abs(np.log10(scale)) > 38 else np.float32
    ref = Standardize().fit(X.astype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        step = Standardize().fit((X * scale).astype(dtype))
        out = step.transform((X * scale).astype(dtype))
    assert step.mean_.dtype == dtype and step.std_.dtype == dtype
    np.testing.assert_allclose(out, ref.transform(X.astype(dtype)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(step.std_[:4], X[:, :4].std(axis=0) * scale, rtol=1e-5)
    assert np.all(out[:, 4] == 0)


def test_mean_image_of_huge_float64():
    X = np.random.default_rng(0).uniform(1, 2, size=(2000, 3)) * 1e306  # the float64 sum is 3e309: inf
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        m = MeanImage().fit(X)
    np.testing.assert_allclose(m.mean_image_, X.mean(axis=0, dtype=np.longdouble).astype(np.float64), rtol=1e-12)


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_zca_is_scale_free(digits, scale):
    X_tr = digits[0]
    ref = ZCAWhiten().fit(X_tr).transform(X_tr[:50])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = ZCAWhiten().fit(X_tr * np.float32(scale)).transform(X_tr[:50] * np.float32(scale))
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
@pytest.mark.parametrize("preprocessing", [None, "center"])
def test_gradients_too_large_to_square_are_refused_not_trained_on(digits, preprocessing, optimizer):
    """Without standardisation, digits x 1e20 give gradients whose squares overflow float32 in Adam's / RMSProp's
    running average (then the weights silently stop moving: a wrong model). The step is undone and refused like a
    non-finite loss, naming the state, the parameter and the fix, with no NumPy warning."""
    from chainrule.train import NonFiniteError

    X_tr, y_tr, _, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NonFiniteError, match=r"the optimizer's state '\w+' of parameter '0.weight' overflowed.*"
                                                 r"preprocessing='standardize'"):
            MLPClassifier(hidden_sizes=(32,), epochs=2, preprocessing=preprocessing, optimizer=optimizer,
                          random_state=0).fit(X_tr * np.float32(1e20), y_tr)
