"""k-nearest neighbours: the lecture's reference distances agree, the chunked engine agrees with them, votes and
tie-breaks follow the documented rules, and several k at once equal one k at a time."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.classifiers import KNearestNeighbor, _kernels
from conftest import make_blobs
from chainrule.classifiers.distances import (NeighborIndex, distances_no_loops, distances_one_loop,
                                             distances_two_loops, smallest_k)

RNG = np.random.default_rng(0)
needs_numba = pytest.mark.skipif(not _kernels.AVAILABLE, reason="numba is not installed (pip install numba)")
BACKENDS = [pytest.param(False, id="numpy"), pytest.param(True, id="numba", marks=needs_numba)]


def images(n: int, d: int = 70, seed: int = 0) -> np.ndarray:
    """uint8 rows with D not a multiple of the kernel width (exercises the padding)."""
    return np.random.default_rng(seed).integers(0, 256, (n, d), dtype=np.uint8)


# ---- reference distance functions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_two_one_and_no_loop_distances_agree(metric):
    X = RNG.standard_normal((7, 5))
    Xt = RNG.standard_normal((11, 5))
    two = distances_two_loops(X, Xt, metric)
    assert two.shape == (7, 11)
    np.testing.assert_allclose(distances_one_loop(X, Xt, metric), two, rtol=1e-12)
    np.testing.assert_allclose(distances_no_loops(X, Xt, metric), two, rtol=1e-10, atol=1e-12)
    # the definition, written out for one pair
    diff = X[2] - Xt[3]
    want = np.sqrt(diff @ diff) if metric == "l2" else np.abs(diff).sum()
    assert two[2, 3] == pytest.approx(want)


def test_reference_distances_reject_unknown_metric():
    with pytest.raises(ValueError, match="metric must be one of"):
        distances_two_loops(np.zeros((1, 2)), np.zeros((1, 2)), "cosine")


# ---- the engine --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_numba", BACKENDS)
@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_engine_matches_reference(metric, dtype, use_numba):
    if dtype == np.uint8:  # integers: many exact ties, all resolved by index
        train, test = images(45, seed=1), images(13, seed=2)
    else:  # floats: distinct distances (float32 scores order near-ties only up to rounding)
        train = RNG.standard_normal((45, 70)).astype(np.float32)
        test = RNG.standard_normal((13, 70)).astype(np.float32)
    ref = distances_two_loops(test, train, metric)
    index = NeighborIndex(train, metric, use_numba=use_numba)
    dist, idx = index.query(test, k=45, chunk_size=4)  # every neighbour, several chunks
    want_idx = np.lexsort((np.broadcast_to(np.arange(45), ref.shape), ref), axis=-1)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, want_idx, axis=1), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("use_numba", BACKENDS)
def test_uint8_l1_is_exact_integer_arithmetic(use_numba):
    # odd row counts and a row length that is not a multiple of 64 exercise the 2x4 tiles' edges and the padding
    train, test = images(131, d=200, seed=3), images(17, d=200, seed=4)
    dist, idx = NeighborIndex(train, "l1", use_numba=use_numba).query(test, k=5)
    exact = np.abs(test[:, None, :].astype(np.int64) - train[None, :, :].astype(np.int64)).sum(-1)
    np.testing.assert_array_equal(dist, np.take_along_axis(exact, idx, axis=1))
    np.testing.assert_array_equal(np.sort(exact, axis=1)[:, :5], dist)


@needs_numba
def test_compiled_l1_kernels_agree_with_numpy():
    a, b = images(9, d=128, seed=5), images(23, d=128, seed=6)
    want = np.abs(a[:, None, :].astype(np.int32) - b[None, :, :].astype(np.int32)).sum(-1)
    got = np.empty((9, 23), dtype=np.int32)
    np.testing.assert_array_equal(_kernels.l1_u8(a, b, got), want)
    loop = np.empty((9, 23), dtype=np.int32)
    _kernels._l1_u8_loop(a, b, loop)
    np.testing.assert_array_equal(loop, want)
    f32 = _kernels.l1_f32(a.astype(np.float32), b.astype(np.float32), np.empty((9, 23), dtype=np.float32))
    np.testing.assert_array_equal(f32, want)


@pytest.mark.parametrize("vnni", [pytest.param(True, id="vnni-int8"), pytest.param(False, id="float32-gemm")])
def test_l2_on_uint8_is_exact(vnni):
    # The int8 VNNI kernel is exact by construction; the float32 GEMM path is exact because the data are centred by
    # a rounded mean, so the GEMM sees small integers. Odd sizes exercise the 4 x 4 tiles' edges and the padding.
    if vnni and not _kernels.vnni_available():
        pytest.skip("needs numba and a CPU with AVX-512 VNNI")
    train, test = images(61, d=300, seed=7), images(9, d=300, seed=8)
    index = NeighborIndex(train, "l2", vnni=vnni)
    assert index.vnni == vnni
    dist, idx = index.query(test, k=61, chunk_size=5)
    exact_sq = ((test[:, None, :].astype(np.int64) - train[None, :, :].astype(np.int64)) ** 2).sum(-1)
    want = np.lexsort((np.broadcast_to(np.arange(61), exact_sq.shape), exact_sq), axis=-1)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(np.round(dist ** 2), np.take_along_axis(exact_sq, want, axis=1))
    # float queries that hold integers take the same path; other floats fall back to the float32 GEMM
    np.testing.assert_array_equal(index.query(test.astype(np.float64), k=3)[1], want[:, :3])
    shifted = test.astype(np.float64) + 0.25
    ref = distances_two_loops(shifted, train)
    np.testing.assert_array_equal(index.query(shifted, k=3)[1], np.argsort(ref, axis=1, kind="stable")[:, :3])


@pytest.mark.skipif(not _kernels.AVAILABLE or not _kernels.vnni_available(), reason="needs numba and AVX-512 VNNI")
def test_vnni_kernel_computes_minus_two_dot_products():
    a, b = images(9, d=128, seed=12), images(23, d=128, seed=13)
    got = _kernels.l2_u8(a, b, np.empty((9, 23), dtype=np.int32))
    np.testing.assert_array_equal(got, -2 * (a.astype(np.int64) @ b.view(np.int8).astype(np.int64).T))


@pytest.mark.parametrize("use_numba", BACKENDS)
@pytest.mark.parametrize("k", [1, 3, 6])
def test_smallest_k_orders_ties_by_index(k, use_numba):
    D = RNG.integers(0, 4, (50, 30)).astype(np.float32)  # many exact ties
    vals, idx = smallest_k(D.copy(), k, use_numba)
    want = np.lexsort((np.broadcast_to(np.arange(30), D.shape), D), axis=-1)[:, :k]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(vals, np.take_along_axis(D, want, axis=1))
    col = RNG.integers(0, 3, 30).astype(np.float32)  # a per-column offset (L2's ||b||^2), added while selecting
    vals, idx = smallest_k(D.copy(), k, use_numba, col)
    want = np.lexsort((np.broadcast_to(np.arange(30), D.shape), D + col), axis=-1)[:, :k]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(vals, np.take_along_axis(D + col, want, axis=1))


# ---- the estimator -----------------------------------------------------------------------------------------------


def blobs(n_per_class: int = 20, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The suite's one blobs (``conftest.make_blobs``), float64, with string labels."""
    X, y = make_blobs(n_per_class=n_per_class, d=d, classes=["cat", "dog", "frog"], seed=seed, scale=4.0)
    return X.astype(np.float64), y


def test_fit_predict_and_kneighbors():
    X, y = blobs()
    knn = KNearestNeighbor(k=3).fit(X, y)
    assert knn.fit(X, y) is knn
    assert knn.n_samples_fit_ == 60 and knn.n_features_in_ == 6
    np.testing.assert_array_equal(knn.classes_, ["cat", "dog", "frog"])
    assert knn.score(X, y) == 1.0
    dist, idx = knn.kneighbors(X[:5], k=2)
    assert dist.shape == idx.shape == (5, 2)
    np.testing.assert_array_equal(idx[:, 0], np.arange(5))  # each point is its own nearest neighbour
    np.testing.assert_array_equal(dist[:, 0], 0.0)  # float64-refined: exactly 0
    assert np.all(np.diff(dist, axis=1) >= 0)
    ref = distances_two_loops(X[:5], X)
    np.testing.assert_allclose(dist[:, 1], np.sort(ref, axis=1)[:, 1], rtol=1e-4)


def test_images_are_flattened():
    X = RNG.integers(0, 256, (12, 4, 4, 3), dtype=np.uint8)
    y = np.arange(12) % 2
    knn = KNearestNeighbor().fit(X, y)
    assert knn.sample_shape_ == (4, 4, 3) and knn.X_fit_.dtype == np.uint8
    np.testing.assert_array_equal(knn.predict(X), y)
    np.testing.assert_array_equal(knn.predict(X.reshape(12, -1)), y)  # flat rows of the right length work too


def test_vote_ties_go_to_the_smallest_label():
    # One neighbour of each class at distances 1 and 2: with k=2 the vote is 1-1, and the smaller label wins even
    # though its point is farther away.
    X = np.array([[1.0], [-2.0]])
    y = np.array([7, 3])
    knn = KNearestNeighbor(k=2).fit(X, y)
    assert knn.predict([[0.0]])[0] == 3
    np.testing.assert_array_equal(knn.predict_proba([[0.0]]), [[0.5, 0.5]])
    knn.set_params(k=1)
    assert knn.predict([[0.0]])[0] == 7


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_equal_distances_are_ordered_by_training_index(metric):
    X = np.array([[3, 5], [1, 5], [3, 5], [2, 4], [2, 6]], dtype=np.uint8)  # all at distance 1 (L2) from (2, 5)
    knn = KNearestNeighbor(k=1, metric=metric).fit(X, ["b", "a", "c", "d", "e"])
    q = np.array([[2, 5]], dtype=np.uint8)
    dist, idx = knn.kneighbors(q, k=5)
    np.testing.assert_array_equal(idx, [[0, 1, 2, 3, 4]])
    np.testing.assert_array_equal(dist, [[1, 1, 1, 1, 1]])
    assert knn.predict(q)[0] == "b"
    # float inputs: exactly equal distances come back in index order too (after the float64 refinement)
    Xf = np.array([[1.0], [-1.0], [1.0]])
    _, idx = KNearestNeighbor(metric=metric).fit(Xf, [0, 1, 2]).kneighbors([[0.0]], k=3)
    np.testing.assert_array_equal(idx, [[0, 1, 2]])


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_predict_many_equals_predict_per_k(metric):
    X, y = blobs(seed=3)
    X += np.random.default_rng(9).standard_normal(X.shape) * 3  # overlapping classes: k matters
    knn = KNearestNeighbor(metric=metric).fit(X[::2], y[::2])
    many = knn.predict_many(X[1::2], ks=[1, 4, 7])
    assert sorted(many) == [1, 4, 7]
    for k, pred in many.items():
        np.testing.assert_array_equal(pred, knn.set_params(k=k).predict(X[1::2]))
    scores = knn.score_many(X[1::2], y[1::2], [1, 7])
    assert scores[7] == pytest.approx(np.mean(many[7] == y[1::2]))


def test_chunk_size_does_not_change_results():
    X, y = blobs(seed=4)
    Xq = np.random.default_rng(5).standard_normal((23, 6)) * 4
    a = KNearestNeighbor(k=5, chunk_size=1).fit(X, y).kneighbors(Xq)
    b = KNearestNeighbor(k=5, chunk_size=7).fit(X, y).kneighbors(Xq)
    c = KNearestNeighbor(k=5).fit(X, y).kneighbors(Xq)
    for got in (b, c):
        np.testing.assert_array_equal(got[1], a[1])
        np.testing.assert_allclose(got[0], a[0])


def test_metric_can_change_after_fit():
    X, y = blobs(seed=6)
    knn = KNearestNeighbor(metric="l2").fit(X, y)
    knn.set_params(metric="l1")
    fresh = KNearestNeighbor(metric="l1").fit(X, y)
    np.testing.assert_array_equal(knn.kneighbors(X[:4], 3)[1], fresh.kneighbors(X[:4], 3)[1])


def test_k_larger_than_training_set_is_an_error():
    X, y = blobs(n_per_class=2)
    knn = KNearestNeighbor(k=7).fit(X, y)
    with pytest.raises(ValueError, match=r"k=7 is larger than the number of training samples \(6\); use k <= 6"):
        knn.predict(X)
    with pytest.raises(ValueError, match="k=9 is larger"):
        knn.predict_many(X, [1, 9])
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        knn.kneighbors(X, k=0)


@pytest.mark.parametrize("params, message", [
    ({"metric": "cosine"}, r"metric must be one of \['l2', 'l1'\], got 'cosine'"),
    ({"k": 2.5}, "k must be an integer >= 1, got 2.5"),
    ({"chunk_size": 0}, "chunk_size must be an integer >= 1, got 0"),
])
def test_bad_hyperparameters_are_reported_at_fit(params, message):
    X, y = blobs()
    knn = KNearestNeighbor(**params)  # the contract: no validation in __init__
    with pytest.raises(ValueError, match=message):
        knn.fit(X, y)


def test_memory_is_bounded_by_the_chunk():
    import tracemalloc

    train = images(2000, d=64, seed=10)
    test = images(400, d=64, seed=11)
    knn = KNearestNeighbor(k=3, chunk_size=50).fit(train, np.arange(2000) % 3)
    tracemalloc.start()
    knn.predict(test)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # a (50, 2000) float32 block is 400 kB; the full (400, 2000) matrix would be 3.2 MB in float32
    assert peak < 1.6e6, peak


# ---- augment="flip" -------------------------------------------------------------------------------------------------


def test_flip_augmentation_memorises_mirror_images():
    X = RNG.integers(0, 256, (6, 4, 5, 3), dtype=np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2])
    knn = KNearestNeighbor(augment="flip").fit(X, y)
    assert knn.n_train_ == 6 and knn.n_samples_fit_ == 12
    np.testing.assert_array_equal(knn.X_fit_[6:].reshape(6, 4, 5, 3), X[:, :, ::-1])
    np.testing.assert_array_equal(knn.y_fit_[6:], knn.y_fit_[:6])
    # A mirrored training image is now at distance 0 (row 6 + i), and is classified like the original;
    # without augmentation its nearest neighbour is some other image.
    mirrored = np.ascontiguousarray(X[:, :, ::-1])
    dist, idx = knn.kneighbors(mirrored, k=1)
    np.testing.assert_array_equal(idx[:, 0], np.arange(6) + 6)
    np.testing.assert_array_equal(dist[:, 0], 0.0)
    np.testing.assert_array_equal(knn.predict(mirrored), y)
    # Same as fitting the plain classifier on the training set plus its mirror images, explicitly.
    plain = KNearestNeighbor(k=3).fit(np.concatenate([X, mirrored]), np.concatenate([y, y]))
    q = RNG.integers(0, 256, (9, 4, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(knn.set_params(k=3).predict(q), plain.predict(q))


def test_flip_augmentation_needs_images():
    with pytest.raises(ValueError, match=r"augment='flip' mirrors images.*got samples of shape \(7,\)"):
        KNearestNeighbor(augment="flip").fit(np.zeros((4, 7)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"augment must be one of \[False, 'flip'\], got 'mirror'"):
        KNearestNeighbor(augment="mirror").fit(np.zeros((4, 2, 2)), [0, 1, 0, 1])


def test_flip_augmented_model_saves_only_the_originals(tmp_path):
    X = RNG.integers(0, 256, (8, 3, 4), dtype=np.uint8)
    y = np.arange(8) % 3
    knn = KNearestNeighbor(k=2, metric="l1", augment="flip").fit(X, y)
    knn.save(tmp_path / "knn.npz")
    with np.load(tmp_path / "knn.npz") as npz:
        assert npz["arrays/X_fit_"].shape == (8, 12)
    loaded = KNearestNeighbor.load(tmp_path / "knn.npz")
    np.testing.assert_array_equal(loaded.X_fit_, knn.X_fit_)
    q = RNG.integers(0, 256, (5, 3, 4), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.predict(q), knn.predict(q))


def _traced_peak(fn):
    """Peak bytes traced by tracemalloc (NumPy reports its arrays to it) while ``fn()`` runs."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_predict_proba_memory_is_chunk_times_m_whatever_k_and_the_number_of_queries(metric):
    rng = np.random.default_rng(0)
    M, C, chunk = 2000, 10, 64
    X = rng.integers(0, 256, size=(M, 16), dtype=np.uint8)
    y = rng.integers(0, C, size=M)
    Q = rng.integers(0, 256, size=(8000, 16), dtype=np.uint8)
    knn = KNearestNeighbor(k=1500, metric=metric, chunk_size=chunk).fit(X, y)
    expected = knn.predict_proba(Q[:100])  # warm up (compiled kernels), and the reference for the chunked rows
    for method in (knn.predict_proba, knn.predict, lambda q: knn.predict_many(q, [1, 1500])):
        peak = _traced_peak(lambda: method(Q))
        result_bytes = len(Q) * C * 8 * 2  # the (N, C) votes and the returned probabilities
        # O(chunk x M): the chunk's distance block and its neighbour lists (8-byte indices), a few times over.
        # Before: the (N, k) index and distance arrays alone were 2 x 8000 x 1500 x 8 = 192 MB.
        assert peak < result_bytes + 8 * chunk * M * 8, (method, peak)
    np.testing.assert_array_equal(knn.predict_proba(Q)[:100], expected)
    np.testing.assert_array_equal(knn.predict(Q), np.argmax(knn.predict_proba(Q), axis=1))
