"""Augmentation: shapes, dtypes, determinism, the order of the random draws, and agreement with per-image
references (loops over the images, the way one would write it first)."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule.data import Augment, FlipCrop, color_jitter, random_crop, random_flip


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


def reference_flip_crop(X, seed, padding, fill=0):
    """Per image: flip with probability 1/2, pad by ``padding`` pixels of ``fill``, crop at (dy, dx); the draws in
    the documented order (all flips, then all dy, then all dx)."""
    g = rng(seed)
    flip = g.random(len(X)) < 0.5
    dy = g.integers(0, 2 * padding + 1, size=len(X)) if padding else np.zeros(len(X), int)
    dx = g.integers(0, 2 * padding + 1, size=len(X)) if padding else np.zeros(len(X), int)
    h, w = X.shape[1:3]
    out = np.empty_like(X)
    for i in range(len(X)):
        img = X[i, :, ::-1] if flip[i] else X[i]
        padded = np.full((h + 2 * padding, w + 2 * padding) + X.shape[3:], fill, X.dtype)
        padded[padding:padding + h, padding:padding + w] = img
        out[i] = padded[dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("padding", [0, 2, 4])
@pytest.mark.parametrize("channels", [3, None])
def test_flip_and_crop_match_the_per_image_reference(dtype, padding, channels):
    X = images(n=33, h=8, w=6, dtype=dtype)
    X = X if channels else X[..., 0]  # RGB (N, H, W, 3) and grayscale (N, H, W)
    before = X.copy()
    expected = reference_flip_crop(X, 9, padding)
    for out in (FlipCrop(padding)(X, rng(9)), Augment(flip=True, crop_padding=padding)(X, rng(9))):
        assert out.dtype == X.dtype and out.shape == X.shape and out.flags.c_contiguous
        np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(X, before)  # input untouched
    assert repr(FlipCrop(padding)) == f"FlipCrop(padding={padding})"


def test_random_draws_keep_their_order_and_steps_compose():
    """Augment draws exactly what its steps draw one after the other from one generator (the module docstring's
    order), so its output is pinned to the step functions' for every generator state."""
    X = images(n=32, h=8, w=8)
    g, mine = rng(11), rng(11)
    steps = color_jitter(random_crop(random_flip(X, g), g, 3), g, 0.2, 0.2, 0.2)
    np.testing.assert_array_equal(Augment(True, 3, 0.2, 0.2, 0.2)(X, mine), steps)
    assert mine.random() == g.random()  # and left the generator in the same state
    mine, ref = rng(5), rng(5)
    dy, dx = ref.integers(0, 5, size=len(X)), ref.integers(0, 5, size=len(X))  # a crop alone: dy, dx, no flips
    out = Augment(flip=False, crop_padding=2)(X, mine)
    assert mine.random() == ref.random()
    padded = np.pad(X, [(0, 0), (2, 2), (2, 2), (0, 0)])
    np.testing.assert_array_equal(out[7], padded[7, dy[7]:dy[7] + 8, dx[7]:dx[7] + 8])


def test_crop_fill_and_grayscale_match_the_reference():
    X = images(n=12, h=5, w=7, c=3)[..., 0]
    g = rng(3)
    out = random_crop(X, g, padding=3, fill=200)
    h = rng(3)
    dy, dx = h.integers(0, 7, size=12), h.integers(0, 7, size=12)
    for i in range(12):
        padded = np.full((11, 13), 200, np.uint8)
        padded[3:8, 3:10] = X[i]
        np.testing.assert_array_equal(out[i], padded[dy[i]:dy[i] + 5, dx[i]:dx[i] + 7])
    with pytest.raises(ValueError, match=r"fill must fit the images' dtype uint8 \(\[0, 255\]\), got 300"):
        random_crop(X, rng(0), padding=1, fill=300)
