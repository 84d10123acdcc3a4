"""Preprocessing steps: statistics against NumPy, dtypes, state_dict round trips, errors."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule.data import (AppendBias, Compose, Flatten, MeanImage, NotFittedError,
                            Standardize)
from chainrule.data import preprocessing


def images(n=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 4, 5, 3), dtype=np.uint8)


def test_mean_image(monkeypatch):
    monkeypatch.setattr(preprocessing, "_CHUNK", 7)  # exercise the chunked reduction
    X = images()
    before = X.copy()
    m = MeanImage().fit(X)
    np.testing.assert_allclose(m.mean_image_, X.mean(axis=0), rtol=1e-6)
    out = m.transform(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(m.inverse_transform(out), X, atol=1e-4)
    np.testing.assert_array_equal(X, before)
    assert MeanImage().fit(X.astype(np.float64)).transform(X.astype(np.float64)).dtype == np.float64
    with pytest.raises(ValueError, match=r"shape \(4, 5, 3\), got \(5, 4, 3\)"):
        m.transform(X.reshape(40, 5, 4, 3))


def test_standardize_per_channel(monkeypatch):
    monkeypatch.setattr(preprocessing, "_CHUNK", 6)
    X = images().astype(np.float64)
    X[..., 2] = 9.0  # a constant channel stays finite
    s = Standardize().fit(X)
    np.testing.assert_allclose(s.mean_, X.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(s.std_[:2], X.std(axis=(0, 1, 2))[:2], rtol=1e-6)
    out = s.transform(X)
    np.testing.assert_allclose(out[..., :2].mean(axis=(0, 1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(out[..., :2].std(axis=(0, 1, 2)), 1, rtol=1e-5)
    assert np.isfinite(out).all()
    feats = np.random.default_rng(1).normal(3, 2, size=(50, 7))
    np.testing.assert_allclose(Standardize().fit_transform(feats).std(axis=0), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="3 channels"):
        s.transform(X[..., :2])


def test_flatten_and_bias_trick():
    X = images()
    flat = Flatten().fit(X)
    out = flat.transform(X)
    assert out.shape == (40, 60) and out.dtype == np.float32
    np.testing.assert_array_equal(flat.inverse_transform(out), X)
    Xb = AppendBias().transform(out)
    assert Xb.shape == (40, 61)
    np.testing.assert_array_equal(Xb[:, -1], 1)
    np.testing.assert_array_equal(Xb[:, :-1], out)
    # The bias trick: W x + b == [W b] [x 1].
    W, b = np.random.default_rng(0).normal(size=(60, 3)), np.arange(3.0)
    np.testing.assert_allclose(Xb @ np.vstack([W, b]), out @ W + b, rtol=1e-5)
    with pytest.raises(ValueError, match="2-D"):
        AppendBias().transform(X)


def test_compose_cs231n_pipeline_and_state_round_trip():
    X_train, X_val = images(seed=1), images(n=10, seed=2)
    prep = Compose([MeanImage(), Flatten(), AppendBias()])
    out = prep.fit_transform(X_train)
    expected = np.hstack([(X_train - X_train.mean(axis=0)).reshape(40, -1), np.ones((40, 1))])
    np.testing.assert_allclose(out, expected, atol=1e-4)
    state = prep.state_dict()
    assert sorted(state) == ["0.mean_image", "1.sample_shape"]
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    restored = Compose([MeanImage(), Flatten(), AppendBias()]).load_state_dict(state)
    np.testing.assert_array_equal(restored.transform(X_val), prep.transform(X_val))
    np.testing.assert_array_equal(restored(X_val), prep(X_val))
    with pytest.raises(KeyError, match="missing"):
        Compose([MeanImage(), Flatten()]).load_state_dict({"1.sample_shape": state["1.sample_shape"]})
    with pytest.raises(KeyError, match="do not belong"):
        Compose([MeanImage()]).load_state_dict(state)


def test_not_fitted():
    with pytest.raises(NotFittedError, match="MeanImage is not fitted"):
        MeanImage().transform(images())
    with pytest.raises(NotFittedError):
        Standardize().state_dict()
