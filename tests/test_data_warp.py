"""chainrule.data.warp: random affine warps -- identity and mirror cases exact, bilinear sampling against hand-made
shifts, the compiled kernel equal to the NumPy reference, reproducible draws, and errors that name the rule."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.data import warp
from chainrule.data.loader import DataLoader
from chainrule.data.warp import RandomAffine, _bilinear_numpy, random_affine


def _images(n=6, h=8, w=10, c=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, h, w, c)).astype(np.float32)


def test_zero_ranges_are_the_identity():
    x = _images()
    np.testing.assert_array_equal(random_affine(x, np.random.default_rng(0)), x)
    gray = x[..., 0]
    np.testing.assert_array_equal(random_affine(gray, np.random.default_rng(0)), gray)


def test_flip_mirrors_about_half_the_images_exactly():
    x = _images(n=64)
    out = random_affine(x, np.random.default_rng(1), flip=True)
    same = [np.array_equal(o, i) for o, i in zip(out, x)]
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-6) for o, i in zip(out, x)]
    assert all(s != m for s, m in zip(same, mirrored))  # each image is one or the other
    assert 16 < sum(mirrored) < 48


def test_bilinear_whole_and_half_pixel_shifts():
    x = _images(n=2)
    n, h, w = x.shape[:3]
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    src_x = np.broadcast_to(xs + 1, (n, h, w))  # read one pixel to the right: a left shift
    src_y = np.broadcast_to(ys, (n, h, w))
    out = _bilinear_numpy(x, src_x, src_y, 0.0)
    np.testing.assert_allclose(out[:, :, :-1], x[:, :, 1:], atol=1e-6)
    np.testing.assert_array_equal(out[:, :, -1], 0)  # outside reads the fill
    half = _bilinear_numpy(x, np.broadcast_to(xs + 0.5, (n, h, w)), src_y, 0.0)
    np.testing.assert_allclose(half[:, :, :-1], (x[:, :, :-1] + x[:, :, 1:]) / 2, atol=1e-6)


@pytest.mark.skipif(warp._bilinear_kernel is None, reason="numba not installed (or CHAINRULE_NO_NUMBA set)")
@pytest.mark.parametrize("fill", [0.0, -1.5])
def test_compiled_kernel_equals_the_numpy_reference(fill):
    x = _images(n=5, h=9, w=7)
    rng = np.random.default_rng(2)
    src_x = rng.uniform(-3, 10, (5, 9, 7)).astype(np.float32)  # many positions outside the image
    src_y = rng.uniform(-3, 12, (5, 9, 7)).astype(np.float32)
    ref = _bilinear_numpy(x, src_x, src_y, fill)
    out = np.empty_like(x)
    warp._bilinear_kernel(x, src_x, src_y, np.float32(fill), out)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_warps_are_reproducible_and_keep_shape_dtype_float32():
    x = (np.random.default_rng(3).random((4, 32, 32, 3)) * 255).astype(np.uint8)
    aug = RandomAffine(degrees=10, scale=0.1, shear=0.1, translate=4)
    a, b = aug(x, np.random.default_rng(7)), aug(x, np.random.default_rng(7))
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, aug(x, np.random.default_rng(8)))
    # a small warp keeps most of the image: correlation with the original stays high for the unflipped ones
    assert "RandomAffine(degrees=10" in repr(aug)


def test_a_dataloader_augments_with_it():
    x = _images(n=20, h=6, w=6, c=1)
    loader = DataLoader(x, np.arange(20) % 2, 8, seed=0, augment=RandomAffine(degrees=5, translate=1))
    first = [xb for xb, _ in loader]
    again = [loader.batch(0, i)[0] for i in range(len(loader))]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, match", [
    (dict(degrees=-1), "degrees must be a finite number >= 0"),
    (dict(scale=1.0), "scale must be < 1"),
    (dict(translate=float("nan")), "translate must be a finite number"),
])
def test_errors_name_the_rule(kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_affine(_images(), np.random.default_rng(0), **kwargs)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, H, W, C\)"):
        random_affine(np.ones((3, 4)), np.random.default_rng(0))


@pytest.mark.skipif(warp._affine_kernel is None, reason="numba not installed (or CHAINRULE_NO_NUMBA set)")
def test_kernel_and_numpy_paths_give_the_same_warps(monkeypatch):
    x = _images(n=7, h=12, w=9)
    fast = random_affine(x, np.random.default_rng(4), degrees=15, scale=0.2, shear=0.2, translate=3, flip=True)
    fast_nn = random_affine(x, np.random.default_rng(4), degrees=15, translate=3, flip=True, nearest=True)
    monkeypatch.setattr(warp, "_USE_NUMBA", False)
    slow = random_affine(x, np.random.default_rng(4), degrees=15, scale=0.2, shear=0.2, translate=3, flip=True)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
    slow_nn = random_affine(x, np.random.default_rng(4), degrees=15, translate=3, flip=True, nearest=True)
    np.testing.assert_allclose(fast_nn, slow_nn, rtol=1e-5, atol=1e-5)


def test_nearest_copies_pixels_without_blending():
    x = _images(n=8)
    out = random_affine(x, np.random.default_rng(5), degrees=20, scale=0.2, translate=2.5, nearest=True)
    values = set(np.round(x, 5).ravel().tolist()) | {0.0}
    assert set(np.round(out, 5).ravel().tolist()) <= values  # every output value is an input pixel or the fill
