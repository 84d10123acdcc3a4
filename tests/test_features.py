"""HOG and hue histograms: vectorised vs per-image references, and vs CS231n's features.py."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from chainrule.features import (HogColorFeatures, color_histogram_hsv, color_histogram_hsv_reference,
                                extract_features, hog, hog_reference)


def rgb(n=6, h=32, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def smooth_rgb(n=6, seed=0):
    """Blocky images: runs of equal pixels give many exact zeros / ties in gradients and hue."""
    small = rgb(n, 8, 8, seed)
    return np.repeat(np.repeat(small, 4, axis=1), 4, axis=2)


# ----------------------------------------------------------------------------- CS231n originals

def cs231n_hog_feature(im):
    """CS231n assignment 1 features.py hog_feature, verbatim apart from the imports."""
    from scipy.ndimage import uniform_filter

    image = np.dot(im[..., :3], [0.299, 0.587, 0.144]) if im.ndim == 3 else np.atleast_2d(im)
    sx, sy = image.shape
    orientations = 9
    cx, cy = (8, 8)
    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    gx[:, :-1] = np.diff(image, n=1, axis=1)
    gy[:-1, :] = np.diff(image, n=1, axis=0)
    grad_mag = np.sqrt(gx ** 2 + gy ** 2)
    grad_ori = np.arctan2(gy, (gx + 1e-15)) * (180 / np.pi) + 90
    n_cellsx = int(np.floor(sx / cx))
    n_cellsy = int(np.floor(sy / cy))
    orientation_histogram = np.zeros((n_cellsx, n_cellsy, orientations))
    for i in range(orientations):
        temp_ori = np.where(grad_ori < 180 / orientations * (i + 1), grad_ori, 0)
        temp_ori = np.where(grad_ori >= 180 / orientations * i, temp_ori, 0)
        cond2 = temp_ori > 0
        temp_mag = np.where(cond2, grad_mag, 0)
        orientation_histogram[:, :, i] = uniform_filter(temp_mag, size=(cx, cy))[
            round(cx / 2)::cx, round(cy / 2)::cy].T
    return orientation_histogram.ravel()


def cs231n_color_histogram_hsv(im, nbin=10, xmin=0, xmax=255, normalized=True):
    import matplotlib.colors

    bins = np.linspace(xmin, xmax, nbin + 1)
    hsv = matplotlib.colors.rgb_to_hsv(im / xmax) * xmax
    imhist, bin_edges = np.histogram(hsv[:, :, 0], bins=bins, density=normalized)
    return imhist * np.diff(bin_edges)


# ----------------------------------------------------------------------------- HOG

@pytest.mark.parametrize("make", [rgb, smooth_rgb])
def test_hog_matches_reference(make):
    X = make()
    out = hog(X)
    assert out.shape == (len(X), 4 * 4 * 9) and out.dtype == np.float32
    ref = np.stack([hog_reference(x) for x in X])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)


def test_hog_other_cells_bins_sizes_and_grayscale():
    g = np.random.default_rng(1).normal(100, 40, size=(3, 20, 27))
    out = hog(g, cell=4, bins=6)
    assert out.shape == (3, 5 * 6 * 6)
    ref = np.stack([hog_reference(x, cell=4, bins=6) for x in g])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(hog(g[..., None], cell=4, bins=6), out)  # (N, H, W, 1)
    np.testing.assert_allclose(hog(g, batch_size=2, cell=4, bins=6), out)


def test_hog_counts_edges_of_both_polarities():
    """A bright vertical bar: its left and right edges have gx of opposite signs and both
    land in the 0-degree bin (CS231n's version drops the gx < 0 edge)."""
    img = np.zeros((1, 16, 16), np.float64)
    img[:, :, 6:10] = 100.0  # edges between columns 5|6 (gx > 0) and 9|10 (gx < 0)
    feats = hog(img, cell=8, bins=9).reshape(2, 2, 9)
    # Each cell row has 8 edge pixels of magnitude 100 in each of the two cells: mean 12.5.
    np.testing.assert_allclose(feats[:, :, 0], 12.5)
    np.testing.assert_allclose(feats[:, :, 1:], 0)
    # CS231n order is (cell column, cell row, bin); its +90 degree shift puts these in bin 4.
    legacy = hog(img, cell=8, bins=9, cs231n_compat=True).reshape(2, 2, 9)
    np.testing.assert_allclose(legacy[0, :, 4], 12.5)  # left edge (column 5) kept
    np.testing.assert_allclose(legacy[1], 0)            # right edge (column 9, gx < 0) lost


def test_hog_cs231n_compat_matches_course_code():
    pytest.importorskip("scipy")
    X = np.concatenate([rgb(4, seed=3), smooth_rgb(4, seed=4)])
    ours = hog(X, cs231n_compat=True)
    theirs = np.stack([cs231n_hog_feature(x) for x in X])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


def test_hog_input_errors():
    with pytest.raises(ValueError, match="RGB"):
        hog(np.zeros((2, 8, 8, 4)))
    with pytest.raises(ValueError, match="smaller than one 8x8 cell"):
        hog(np.zeros((2, 4, 4)))


# ----------------------------------------------------------------------------- colour histogram

@pytest.mark.parametrize("make", [rgb, smooth_rgb])
def test_color_histogram_matches_reference(make):
    X = make()
    out = color_histogram_hsv(X)
    assert out.shape == (len(X), 10) and out.dtype == np.float32
    ref = np.stack([color_histogram_hsv_reference(x) for x in X])
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)


def tie_heavy(n=4, seed=5):
    """Low-contrast colours: many hues fall exactly on bin edges (e.g. hue = 0.1)."""
    rng = np.random.default_rng(seed)
    return (100 + rng.integers(0, 6, size=(n, 16, 16, 3))).astype(np.uint8)


@pytest.mark.parametrize("bins", [10, 7, 12])
def test_color_histogram_exact_on_bin_edges(bins):
    X = tie_heavy()
    ref = np.stack([color_histogram_hsv_reference(x, bins) for x in X])
    np.testing.assert_allclose(color_histogram_hsv(X, bins), ref, rtol=1e-6)
    # The float path (float input) agrees with the exact integer path.
    np.testing.assert_allclose(color_histogram_hsv(X.astype(np.float32), bins), ref, rtol=1e-6)


def test_color_histogram_matches_cs231n():
    pytest.importorskip("matplotlib")
    X = np.concatenate([rgb(3, 16, 16, seed=6), tie_heavy(3, seed=7),
                        smooth_rgb(2, seed=8)[:, :16, :16]])
    theirs = np.stack([cs231n_color_histogram_hsv(x) for x in X])
    np.testing.assert_allclose(color_histogram_hsv(X), theirs, rtol=1e-6, atol=1e-9)


def test_color_histogram_primary_colours():
    X = np.zeros((4, 2, 2, 3), np.uint8)
    X[0, ..., 0] = 255       # red: hue 0 -> bin 0
    X[1, ..., 1] = 255       # green: hue 1/3 -> 85 -> bin 3
    X[2, ..., 2] = 255       # blue: hue 2/3 -> 170 -> bin 6
    X[3] = 128               # gray: hue 0 -> bin 0
    out = color_histogram_hsv(X)
    assert out.argmax(axis=1).tolist() == [0, 3, 6, 0]
    np.testing.assert_array_equal(out.max(axis=1), 1)
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        color_histogram_hsv(np.full((1, 2, 2, 3), 300.0))


# ----------------------------------------------------------------------------- extract_features

def test_extract_features_stacks_and_chunks():
    X = rgb(7)
    feats = extract_features(X, batch_size=3)
    np.testing.assert_allclose(feats, np.hstack([hog(X), color_histogram_hsv(X)]), rtol=1e-6)
    assert feats.shape == (7, 154) and feats.dtype == np.float32
    custom = extract_features(X, [partial(hog, cell=4), partial(color_histogram_hsv, bins=5)])
    assert custom.shape == (7, 8 * 8 * 9 + 5)
    with pytest.raises(ValueError, match="must return"):
        extract_features(X, [lambda b: b.reshape(-1)])


def test_hog_color_features_step():
    X = rgb(5, 24, 20)
    step = HogColorFeatures(cell=4, bins=7)
    feats = step.fit_transform(X)
    np.testing.assert_array_equal(feats, np.hstack([hog(X, cell=4), color_histogram_hsv(X, bins=7)]))
    assert feats.shape == (5, step.n_features_out((24, 20, 3))) == (5, 6 * 5 * 9 + 7)
    assert step.state_dict() == {} and step.load_state_dict({}) is step
    assert repr(step) == "HogColorFeatures(cell=4, bins=7)"
    with pytest.raises(ValueError, match=r"needs RGB images \(N, H, W, 3\), got samples of shape \(24, 20\)"):
        step.transform(X[..., 0])
