"""ZCA whitening: the output is white (identity covariance up to eps), zero-phase (W symmetric), scale-free, and
carried by the classifiers that offer preprocessing="zca"."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule.classifiers import MLPClassifier, SoftmaxClassifier
from chainrule.data import NotFittedError, ZCAWhiten
from chainrule.data import whitening


def correlated(n: int = 4000, d: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) * np.linspace(0.2, 3.0, d)
    return rng.normal(size=(n, d)) @ mix + rng.normal(size=d) * 5


def test_whitened_covariance_is_identity_for_small_eps():
    X = correlated()
    zca = ZCAWhiten(eps=1e-8).fit(X)
    Xw = zca.transform(X)
    assert Xw.dtype == np.float32 and Xw.shape == X.shape
    Xw = Xw.astype(np.float64)
    np.testing.assert_allclose(Xw.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(Xw.T, bias=True), np.eye(X.shape[1]), atol=1e-3)
    np.testing.assert_allclose(zca.components_, zca.components_.T, atol=1e-6)  # zero-phase: W is symmetric


def test_matches_the_eigendecomposition_formula():
    X = correlated(500, 5, seed=1)
    eps = 0.5
    Xc = X - X.mean(0)
    lam, U = np.linalg.eigh(Xc.T @ Xc / len(X))
    W = U @ np.diag(1 / np.sqrt(lam + eps * lam.mean())) @ U.T
    got = ZCAWhiten(eps=eps).fit(X).transform(X)
    np.testing.assert_allclose(got, Xc @ W, rtol=1e-4, atol=1e-4)


def test_eps_is_relative_to_the_data_scale_and_images_keep_their_shape():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (400, 4, 4, 3), dtype=np.uint8)
    a = ZCAWhiten(eps=1.0).fit(images).transform(images[:7])
    b = ZCAWhiten(eps=1.0).fit(images / 255.0).transform(images[:7] / 255.0)
    assert a.shape == (7, 4, 4, 3) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=2e-4)


def test_blocks_do_not_change_the_result(monkeypatch):
    X = correlated(300, 4, seed=3)
    whole = ZCAWhiten().fit(X)
    monkeypatch.setattr(whitening, "_ROWS", 7)
    blocked = ZCAWhiten().fit(X)
    np.testing.assert_allclose(blocked.components_, whole.components_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(blocked.transform(X), whole.transform(X), rtol=1e-5, atol=1e-5)


def test_state_round_trip_and_errors():
    X = correlated(200, 4)
    zca = ZCAWhiten().fit(X)
    again = ZCAWhiten().load_state_dict(zca.state_dict())
    np.testing.assert_array_equal(again.transform(X), zca.transform(X))
    with pytest.raises(NotFittedError, match="ZCAWhiten is not fitted yet"):
        ZCAWhiten().transform(X)
    with pytest.raises(ValueError, match="fitted on samples of 4 features, got shape"):
        zca.transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        ZCAWhiten().fit(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="eps must be a finite number > 0, got 0"):
        ZCAWhiten(eps=0).fit(X)
    with pytest.raises(ValueError, match="every feature is constant"):
        ZCAWhiten().fit(np.ones((5, 3)))


def test_classifiers_fit_save_and_load_with_zca(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.integers(0, 256, (120, 6, 6, 3), dtype=np.uint8)
    y = rng.integers(0, 3, 120)
    mlp = MLPClassifier(preprocessing="zca", augment=True, hidden_sizes=(8,), epochs=2, random_state=0).fit(X, y)
    assert isinstance(mlp.preprocessor_, ZCAWhiten)
    mlp.save(tmp_path / "mlp.npz")
    np.testing.assert_array_equal(MLPClassifier.load(tmp_path / "mlp.npz").predict(X), mlp.predict(X))
    soft = SoftmaxClassifier(preprocessing="zca", iterations=20, random_state=0).fit(X, y)
    soft.save(tmp_path / "soft.npz")
    np.testing.assert_array_equal(SoftmaxClassifier.load(tmp_path / "soft.npz").predict(X), soft.predict(X))
    with pytest.raises(ValueError, match="augment='flip' on raw pixels cannot be combined with preprocessing='zca'"):
        SoftmaxClassifier(preprocessing="zca", augment="flip").fit(X, y)


def test_mlp_whitens_once_then_augments_whitened_images():
    # Under "zca" the training batches are whitened images that FlipCrop moved: with augmentation off, the model
    # sees exactly zca.transform(X); the batches of an augmenting run are flips/crops of those rows.
    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, (64, 4, 4, 3), dtype=np.uint8)
    y = np.arange(64) % 2
    mlp = MLPClassifier(preprocessing="zca", augment="flip", hidden_sizes=(4,), epochs=1, random_state=0)
    mlp.fit(X, y)
    white = mlp.preprocessor_.transform(X.reshape(64, -1)).reshape(64, 4, 4, 3)
    batch = white[:5]
    np.testing.assert_array_equal(mlp._batch_inputs(batch), batch.reshape(5, -1))


# ---- patch whitening of a first conv (patch_whitening_filters) --------------------------------------------------


def _patches_reference(x_nchw: np.ndarray, k: int) -> np.ndarray:
    """Every k x k patch of every image as a row (C k k), by explicit loops."""
    n, c, h, w = x_nchw.shape
    rows = [x_nchw[i, :, r:r + k, s:s + k].reshape(-1) for i in range(n) for r in range(h - k + 1)
            for s in range(w - k + 1)]
    return np.array(rows, dtype=np.float64)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_patch_filters_invert_the_patch_covariance(k):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3, 9, 8)) * np.array([1.0, 0.5, 2.0])[:, None, None]
    x[:, 1] += 0.8 * x[:, 0]  # correlated channels
    filters = whitening.patch_whitening_filters(x, k, eps=1e-3)
    d = 3 * k * k
    assert filters.shape == (2 * d, 3, k, k) and filters.dtype == np.float32
    np.testing.assert_array_equal(filters[d:], -filters[:d])
    patches = _patches_reference(x, k)
    cov = patches.T @ patches / len(patches)
    flat = filters[:d].reshape(d, d).astype(np.float64)
    # W^T W = U diag(1 / (lambda + eps)) U^T = (Sigma + eps I)^-1, whatever the eigenvectors' signs
    np.testing.assert_allclose(flat.T @ flat, np.linalg.inv(cov + 1e-3 * np.eye(d)), rtol=1e-4, atol=1e-4)
    coords = patches @ flat.T  # what the conv computes at every position: unit variance, decorrelated
    lam = np.linalg.eigvalsh(cov)[::-1]
    np.testing.assert_allclose(coords.T @ coords / len(coords), np.diag(lam / (lam + 1e-3)), atol=1e-4)
    assert np.all(np.diff(np.linalg.norm(flat, axis=1)) >= -1e-6)  # sorted by decreasing variance


def test_patch_filters_same_for_nhwc_and_for_any_chunking(monkeypatch):
    x = np.random.default_rng(1).normal(size=(10, 3, 6, 6)).astype(np.float32)
    nchw = whitening.patch_whitening_filters(x, 2)
    np.testing.assert_array_equal(whitening.patch_whitening_filters(x.transpose(0, 2, 3, 1), 2, data_format="NHWC"),
                                  nchw)
    monkeypatch.setattr(whitening, "_PATCHES", 1)  # one image per block
    chunked = whitening.patch_whitening_filters(x, 2, both_signs=False)
    assert chunked.shape == (12, 3, 2, 2)
    np.testing.assert_allclose(np.abs(chunked), np.abs(nchw[:12]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"kernel_size": 0}, "kernel_size must be an int in"),
    ({"kernel_size": 7}, "kernel_size must be an int in"),
    ({"eps": 0.0}, "eps must be a finite number > 0"),
    ({"data_format": "CHW"}, "data_format must be"),
])
def test_patch_filters_refuse_bad_arguments(kwargs, message):
    x = np.zeros((2, 3, 6, 6), np.float32)
    with pytest.raises(ValueError, match=message):
        whitening.patch_whitening_filters(x, **kwargs)
    with pytest.raises(ValueError, match="expects images"):
        whitening.patch_whitening_filters(np.zeros((2, 6, 6)))
