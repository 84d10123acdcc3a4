"""Histogram of oriented gradients (HOG), CS231n-style, vectorised over a batch of images.

For each image: convert to grayscale, take forward differences gx[r, c] = I[r, c+1] - I[r, c]
and gy[r, c] = I[r+1, c] - I[r, c] (zero in the last column / row), split the image into
``cell`` x ``cell`` cells, and for every cell average the gradient magnitudes falling in each of
``bins`` orientation bins over [0, 180) degrees (unsigned orientation). A 32x32 image gives
4 x 4 cells x 9 bins = 144 features, ordered (cell row, cell column, bin).

Differences from CS231n's ``hog_feature`` (``cs231n_compat=True`` reproduces it exactly):
- CS231n computes orientation as atan2(gy, gx + 1e-15) + 90 degrees and bins only [0, 180),
  which silently drops every gradient pointing left (gx < 0), about half of all edges. Here
  orientations are folded into [0, 180) so every gradient counts.
- CS231n's grayscale weights are (0.299, 0.587, 0.144) (a typo for ITU-R 601's 0.114).
- CS231n orders features (cell column, cell row, bin).
"""
from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

_LUMA = (0.299, 0.587, 0.114)
_LUMA_CS231N = (0.299, 0.587, 0.144)
_CHUNK = 1024  # images per pass: bounds the float64 temporaries (~8 MB per array)


def _check(images: np.ndarray, cell: int, bins: int) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ValueError(f"hog expects images (N, H, W, 3) RGB or (N, H, W[, 1]) grayscale, got "
                         f"shape {images.shape}")
    if not isinstance(cell, (int, np.integer)) or cell < 1:
        raise ValueError(f"cell must be a positive int, got {cell!r}")
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    if images.shape[1] < cell or images.shape[2] < cell:
        raise ValueError(f"images of size {images.shape[1]}x{images.shape[2]} are smaller than "
                         f"one {cell}x{cell} cell")
    return images


def _gray(images: np.ndarray, weights: tuple[float, float, float]) -> np.ndarray:
    """(n, H, W, 3) -> (n, H, W) float64 luma; (n, H, W) is just cast to float64."""
    if images.ndim == 3:
        return images.astype(np.float64)
    x = images.astype(np.float64)
    return x[..., 0] * weights[0] + x[..., 1] * weights[1] + x[..., 2] * weights[2]


def _bin_edges(bins: int) -> np.ndarray:
    """Orientation bin edges in degrees, computed as CS231n does: 180 / bins * i."""
    return np.array([180 / bins * i for i in range(bins + 1)])


def _bin_index(theta: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin b with edges[b] <= theta < edges[b + 1] (theta in [0, 180)); like searchsorted."""
    bins = len(edges) - 1
    b = np.clip((theta * (bins / 180.0)).astype(np.int64), 0, bins - 1)
    b -= theta < edges[b]                          # rounding put it one bin too high
    b += (theta >= edges[b + 1]) & (b < bins - 1)  # ... or one too low
    return b


def _hog_chunk(images: np.ndarray, cell: int, bins: int, compat: bool) -> np.ndarray:
    gray = _gray(images, _LUMA_CS231N if compat else _LUMA)
    n, h, w = gray.shape
    ncy, ncx = h // cell, w // cell
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, :, :-1] = np.diff(gray, axis=2)
    gy[:, :-1, :] = np.diff(gray, axis=1)
    gx = gx[:, :ncy * cell, :ncx * cell]
    gy = gy[:, :ncy * cell, :ncx * cell]
    mag = np.sqrt(gx ** 2 + gy ** 2)
    edges = _bin_edges(bins)
    if compat:
        theta = np.arctan2(gy, gx + 1e-15) * (180 / np.pi) + 90
        valid = (theta > 0) & (theta < edges[-1])
        mag = np.where(valid, mag, 0.0)
        theta = np.where(valid, theta, 0.0)
    else:
        theta = np.arctan2(gy, gx) * (180 / np.pi)
        theta = np.where(theta < 0, theta + 180.0, theta)
        theta = np.where(theta >= 180.0, 0.0, theta)  # -tiny + 180 rounds to 180 == 0 degrees
    b = _bin_index(theta, edges)
    # Flat histogram slot of every pixel: ((image * cells + cell) * bins + bin).
    cell_id = (np.arange(ncy * cell)[:, None] // cell) * ncx + np.arange(ncx * cell)[None, :] // cell
    slot = (np.arange(n)[:, None, None] * (ncy * ncx) + cell_id) * bins + b
    hist = np.bincount(slot.ravel(), weights=mag.ravel(), minlength=n * ncy * ncx * bins)
    hist = hist.reshape(n, ncy, ncx, bins) / (cell * cell)
    if compat:
        hist = hist.transpose(0, 2, 1, 3)
    return hist.reshape(n, -1)


def hog(images: np.ndarray, cell: int = 8, bins: int = 9, *, cs231n_compat: bool = False,
        batch_size: int = _CHUNK) -> np.ndarray:
    """HOG features of a batch: images (N, H, W, 3) or (N, H, W) -> float32 (N, F).

    F = (H // cell) * (W // cell) * bins (144 for 32x32 images with the defaults). Pixels
    beyond the last full cell are ignored. Each value is the mean, over the cell's pixels, of
    the gradient magnitude of pixels whose orientation falls in that bin. ``batch_size`` only
    bounds memory (images processed per pass). See the module docstring for
    ``cs231n_compat``.
    """
    images = _check(images, cell, bins)
    n = len(images)
    f = (images.shape[1] // cell) * (images.shape[2] // cell) * bins
    out = np.empty((n, f), dtype=np.float32)
    for i in range(0, n, batch_size):
        out[i:i + batch_size] = _hog_chunk(images[i:i + batch_size], cell, bins, cs231n_compat)
    return out


def hog_reference(image: np.ndarray, cell: int = 8, bins: int = 9) -> np.ndarray:
    """Slow per-image, per-pixel HOG (same definition as `hog`): (H, W[, 3]) -> float64 (F,)."""
    gray = _gray(_check(np.asarray(image)[None], cell, bins), _LUMA)[0]
    h, w = gray.shape
    ncy, ncx = h // cell, w // cell
    edges = _bin_edges(bins).tolist()
    hist = np.zeros((ncy, ncx, bins))
    for r in range(ncy * cell):
        for c in range(ncx * cell):
            gx = gray[r, c + 1] - gray[r, c] if c + 1 < w else 0.0
            gy = gray[r + 1, c] - gray[r, c] if r + 1 < h else 0.0
            theta = math.atan2(gy, gx) * (180 / math.pi)
            if theta < 0:
                theta += 180.0
            if theta >= 180.0:
                theta = 0.0
            b = min(bisect_right(edges, theta) - 1, bins - 1)
            hist[r // cell, c // cell, b] += math.sqrt(gx * gx + gy * gy)
    return (hist / (cell * cell)).ravel()
