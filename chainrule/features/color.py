"""Hue histograms (CS231n's ``color_histogram_hsv``), vectorised over a batch of images.

Each pixel's hue is computed as matplotlib's ``rgb_to_hsv`` does (on pixel / 255, hue in
[0, 1), gray pixels get hue 0), scaled by 255, and counted into ``bins`` equal bins over
[0, 255]; the counts are divided by the number of pixels, so every histogram sums to 1. This is
what CS231n's ``color_histogram_hsv(im, nbin=10, xmin=0, xmax=255, normalized=True)`` returns.
"""
from __future__ import annotations

from bisect import bisect_right

import numpy as np

_CHUNK = 1024
_XMAX = 255


def _check(images: np.ndarray, bins: int) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"color_histogram_hsv expects RGB images (N, H, W, 3), got shape "
                         f"{images.shape}")
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    return images


def _hue255(x: np.ndarray) -> np.ndarray:
    """Hue * 255 of RGB pixels x (..., 3) with values in [0, 1] (float64), as matplotlib."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx = x.max(axis=-1)
    delta = mx - x.min(axis=-1)
    pos = delta > 0
    safe = np.where(pos, delta, 1.0)
    # Later cases win ties, matching matplotlib's assignment order (red, green, blue).
    h = np.where(r == mx, (g - b) / safe, 0.0)
    h = np.where(g == mx, 2.0 + (b - r) / safe, h)
    h = np.where(b == mx, 4.0 + (r - g) / safe, h)
    h = np.where(pos, h, 0.0)
    return ((h / 6.0) % 1.0) * _XMAX


def _float_bins(rgb: np.ndarray, bins: int) -> np.ndarray:
    """Hue bin of RGB pixels (..., 3) in [0, 255], computed in float64 as CS231n does."""
    hue = _hue255(np.asarray(rgb, dtype=np.float64) / _XMAX)
    edges = np.linspace(0, _XMAX, bins + 1)
    b = np.clip((hue * (bins / _XMAX)).astype(np.int64), 0, bins - 1)
    b -= hue < edges[b]                          # same rule as np.histogram:
    b += (hue >= edges[b + 1]) & (b < bins - 1)  # edges[b] <= hue < edges[b + 1]
    return b


def _integer_bins(images: np.ndarray, bins: int) -> np.ndarray:
    """Hue bins of integer RGB images (n, H, W, 3) using exact integer arithmetic.

    With M = max, delta = M - min and the matplotlib case order (blue, then green, then red
    wins a tie for the max), hue * 6 * delta is the integer num = offset * delta + diff, taken
    mod 6 * delta. The bin is floor(bins * num / (6 * delta)). Float rounding can only change
    that when bins * num / (6 * delta) is exactly an integer (a pixel on a bin edge); those few
    pixels are re-binned with the float formula so results match CS231n bit for bit.
    """
    planes = np.moveaxis(images, -1, 0).astype(np.int32)  # (3, n, H, W), contiguous planes
    r, g, b = planes
    mx = np.maximum(np.maximum(r, g), b)
    delta = mx - np.minimum(np.minimum(r, g), b)
    is_b = b == mx
    is_g = (g == mx) & ~is_b
    num = np.where(is_b, r - g + 4 * delta, np.where(is_g, b - r + 2 * delta, g - b))
    six_delta = 6 * delta
    num += np.where(num < 0, six_delta, 0)
    np.maximum(six_delta, 1, out=six_delta)  # gray pixels: num == 0, bin 0
    scaled = num * bins if bins <= 1000 else num.astype(np.int64) * bins  # no int32 overflow
    out, rem = np.divmod(scaled, six_delta)
    edge = (rem == 0) & (num > 0)
    if edge.any():
        out[edge] = _float_bins(planes[:, edge].T, bins)
    return out


def _hist_chunk(images: np.ndarray, bins: int) -> np.ndarray:
    if images.dtype.kind in "ui":
        if images.size and (images.min() < 0 or images.max() > _XMAX):
            raise ValueError(f"color_histogram_hsv expects pixel values in [0, {_XMAX}], got "
                             f"[{images.min()}, {images.max()}]")
        b = _integer_bins(images, bins)
    else:
        if images.size and (np.nanmin(images) < 0 or np.nanmax(images) > _XMAX
                            or np.isnan(images).any()):
            raise ValueError(f"color_histogram_hsv expects pixel values in [0, {_XMAX}], got "
                             f"[{np.min(images):g}, {np.max(images):g}]")
        b = _float_bins(images, bins)
    n = len(images)
    slot = np.arange(n).reshape((n,) + (1,) * (b.ndim - 1)) * bins + b
    counts = np.bincount(slot.ravel(), minlength=n * bins).reshape(n, bins)
    return counts / (images.shape[1] * images.shape[2])


def color_histogram_hsv(images: np.ndarray, bins: int = 10, *,
                        batch_size: int = _CHUNK) -> np.ndarray:
    """Normalised hue histograms: RGB images (N, H, W, 3), values in [0, 255] -> float32 (N, bins).

    Rows sum to 1. ``batch_size`` only bounds memory (images processed per pass).
    """
    images = _check(images, bins)
    out = np.empty((len(images), bins), dtype=np.float32)
    for i in range(0, len(images), batch_size):
        out[i:i + batch_size] = _hist_chunk(images[i:i + batch_size], bins)
    return out


def color_histogram_hsv_reference(image: np.ndarray, bins: int = 10) -> np.ndarray:
    """Slow per-pixel version of `color_histogram_hsv`: (H, W, 3) -> float64 (bins,)."""
    image = _check(np.asarray(image)[None], bins)[0]
    edges = np.linspace(0, _XMAX, bins + 1).tolist()
    hist = np.zeros(bins)
    h, w, _ = image.shape
    for i in range(h):
        for j in range(w):
            r, g, b = (float(v) / _XMAX for v in image[i, j])
            mx, mn = max(r, g, b), min(r, g, b)
            delta = mx - mn
            hue = 0.0
            if delta > 0:
                if r == mx:
                    hue = (g - b) / delta
                if g == mx:
                    hue = 2.0 + (b - r) / delta
                if b == mx:
                    hue = 4.0 + (r - g) / delta
            hue = ((hue / 6.0) % 1.0) * _XMAX
            hist[min(bisect_right(edges, hue) - 1, bins - 1)] += 1
    return hist / (h * w)
