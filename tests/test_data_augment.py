"""Augmentation: shapes, dtypes, determinism, and agreement with per-image references."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule.data import Augment, color_jitter, random_crop, random_flip


def images(n=16, h=6, w=5, c=3, dtype=np.uint8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c)).astype(dtype)


def rng(seed=0):
    return np.random.default_rng(seed)


def test_flip_matches_per_image_reference():
    X = images()
    before = X.copy()
    out = random_flip(X, rng(1))
    flip = rng(1).random(len(X)) < 0.5
    for i in range(len(X)):
        np.testing.assert_array_equal(out[i], X[i, :, ::-1] if flip[i] else X[i])
    assert 0 < flip.sum() < len(X)
    np.testing.assert_array_equal(X, before)  # input untouched
    np.testing.assert_array_equal(random_flip(X, rng(0), p=0.0), X)
    np.testing.assert_array_equal(random_flip(X, rng(0), p=1.0), X[:, :, ::-1])
    assert random_flip(X[..., 0], rng(0)).shape == X.shape[:3]


def test_crop_matches_per_image_reference():
    X = images()
    pad = 2
    out = random_crop(X, rng(4), padding=pad)
    g = rng(4)
    dy = g.integers(0, 2 * pad + 1, size=len(X))
    dx = g.integers(0, 2 * pad + 1, size=len(X))
    for i in range(len(X)):
        padded = np.zeros((6 + 2 * pad, 5 + 2 * pad, 3), np.uint8)
        padded[pad:pad + 6, pad:pad + 5] = X[i]
        np.testing.assert_array_equal(out[i], padded[dy[i]:dy[i] + 6, dx[i]:dx[i] + 5])
    assert out.shape == X.shape and out.dtype == X.dtype
    np.testing.assert_array_equal(random_crop(X, rng(0), padding=0), X)
    with pytest.raises(ValueError, match="padding"):
        random_crop(X, rng(0), padding=-1)


def test_color_jitter_reference_and_ranges():
    X = images(dtype=np.float32)
    out = color_jitter(X, rng(2), brightness=0.5)
    f = rng(2).uniform(0.5, 1.5, size=len(X)).astype(np.float32)
    np.testing.assert_allclose(out, X * f[:, None, None, None], rtol=1e-6)
    # Contrast keeps each image's mean luma; saturation leaves gray pixels alone.
    luma = lambda a: (a @ np.array([0.299, 0.587, 0.114], np.float32)).mean(axis=(1, 2))
    np.testing.assert_allclose(luma(color_jitter(X, rng(3), contrast=0.8)), luma(X), rtol=1e-4)
    gray = np.repeat(X[..., :1], 3, axis=-1)
    np.testing.assert_allclose(color_jitter(gray, rng(3), saturation=0.9), gray, rtol=1e-5,
                               atol=1e-3)
    U = images()
    out8 = color_jitter(U, rng(5), brightness=0.9, contrast=0.9, saturation=0.9)
    assert out8.dtype == np.uint8 and out8.shape == U.shape
    assert not np.array_equal(out8, U)
    with pytest.raises(ValueError, match="brightness"):
        color_jitter(U, rng(0), brightness=1.5)
    with pytest.raises(ValueError, match="RGB"):
        color_jitter(U[..., :1], rng(0), saturation=0.2)


def test_augment_pipeline_is_deterministic_per_generator_state():
    X = images(n=32, h=8, w=8)
    aug = Augment(flip=True, crop_padding=3, brightness=0.2, contrast=0.2, saturation=0.2)
    a, b = aug(X, rng(11)), aug(X, rng(11))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, aug(X, rng(12)))
    assert a.shape == X.shape and a.dtype == X.dtype
    np.testing.assert_array_equal(Augment(flip=False)(X, rng(0)), X)
    # Steps that are off draw nothing: flip-only equals random_flip with the same state.
    np.testing.assert_array_equal(Augment()(X, rng(6)), random_flip(X, rng(6)))
