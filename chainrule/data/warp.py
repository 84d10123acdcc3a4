"""Random affine warps of image batches (rotation, scale, shear, shift, mirror) with bilinear sampling, vectorised.

    warp = RandomAffine(degrees=10, scale=0.1, shear=0.1, translate=4, flip=True)
    batch = warp(images, rng)        # (N, H, W[, C]) -> same shape, float32 (uint8 input is converted)

Small deformations are the augmentation that carried fully-connected nets furthest on CIFAR-10 (Lin, Memisevic &
Konda 2015: ~70% -> ~78% with deformations). Each image gets its own inverse map from output pixel (x, y) to source
position, about the image centre c:

    src = A (p - c) + c + t,   A = R(theta) Sh(shear) / s,   with x mirrored first when flipped

theta ~ U(-degrees, degrees), s ~ U(1 - scale, 1 + scale), shear ~ U(-shear, shear) (x += shear * y),
t ~ U(-translate, translate)^2 pixels (sub-pixel shifts: bilinear sampling interpolates them), flip with
probability 0.5. Source positions outside the image read ``fill`` (0: the mean of whitened or centred images, so
warping after whitening pads with the mean, as ``FlipCrop``'s zero padding does). With every range 0 and no flip the
warp is the identity (tested), and a pure shift by whole pixels equals a padded crop.

Random numbers are drawn in a fixed order (theta, s, shear, tx, ty, flip: one ``rng.uniform``/``rng.random`` call
each, per batch), so equal generator states give equal batches -- what ``DataLoader`` needs for exact resumes.

Maps and sampling run in one compiled kernel when numba is installed (``pip install numba``;
``CHAINRULE_NO_NUMBA=1`` turns it off), else in NumPy (``_bilinear_numpy``: the readable reference, tested equal).
Per batch of 256 32x32x3 float32 images the NumPy version costs ~80 ms (four fancy-index gathers of 262,144 rows;
more than a bf16 training step), the kernel about as much as ``FlipCrop`` (``bench/ablate_mlp.py
--augment-bench``).
"""

from __future__ import annotations

import os

import numpy as np

try:  # optional, as for the kNN kernels
    from numba import njit
except ImportError:  # pragma: no cover - exercised where numba is absent
    njit = None

_USE_NUMBA = njit is not None and os.environ.get("CHAINRULE_NO_NUMBA", "") in ("", "0")


def random_affine(images: np.ndarray, rng: np.random.Generator, degrees: float = 0.0, scale: float = 0.0,
                  shear: float = 0.0, translate: float = 0.0, flip: bool = False, fill: float = 0.0,
                  nearest: bool = False) -> np.ndarray:
    """Warp each image of ``images`` (N, H, W[, C]) by its own random affine map; returns float32 (N, H, W[, C]).

    ``nearest`` samples the nearest source pixel instead of interpolating: no low-pass blur (bilinear sampling at a
    sub-pixel position averages neighbours, which training images then have and test images do not), at the cost of
    jagged edges."""
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"random_affine expects images of shape (N, H, W, C) or (N, H, W), got {images.shape}")
    for name, v in (("degrees", degrees), ("scale", scale), ("shear", shear), ("translate", translate)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"random_affine: {name} must be a finite number >= 0, got {v!r}")
    if scale >= 1:
        raise ValueError(f"random_affine: scale must be < 1 (factors are drawn from [1 - scale, 1 + scale]), got "
                         f"{scale!r}")
    n, h, w = images.shape[:3]
    theta = np.deg2rad(rng.uniform(-degrees, degrees, n))
    s = rng.uniform(1.0 - scale, 1.0 + scale, n)
    sh = rng.uniform(-shear, shear, n)
    tx = rng.uniform(-translate, translate, n)
    ty = rng.uniform(-translate, translate, n)
    mirror = np.where(rng.random(n) < 0.5, -1.0, 1.0) if flip else np.ones(n)
    cos, sin = np.cos(theta) / s, np.sin(theta) / s
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    # src = A (p - c) + c + t with A = R(theta) @ [[1, sh], [0, 1]] / s applied to (mirror * x, y): per image
    # (a00, a01, a10, a11, bx, by), src_x = a00 x + a01 y + bx on centred output coordinates x, y
    maps = np.stack([cos * mirror, cos * sh - sin, sin * mirror, sin * sh + cos, cx + tx, cy + ty], axis=1)
    if _USE_NUMBA:
        flat = images.reshape(n, h, w, -1)
        out = np.empty(flat.shape, dtype=np.float32)
        _affine_kernel(np.ascontiguousarray(flat, dtype=np.float32), maps.astype(np.float64), np.float32(fill),
                       bool(nearest), out)
        return out.reshape(images.shape)
    xs = (np.arange(w, dtype=np.float64) - cx)[None, None, :]
    ys = (np.arange(h, dtype=np.float64) - cy)[None, :, None]
    m = [maps[:, j, None, None] for j in range(6)]
    src_x = (m[0] * xs + m[1] * ys + m[4]).astype(np.float32)  # (N, H, W)
    src_y = (m[2] * xs + m[3] * ys + m[5]).astype(np.float32)
    if nearest:  # bilinear weights at whole-pixel positions copy one pixel
        src_x, src_y = np.floor(src_x + 0.5), np.floor(src_y + 0.5)
    return _bilinear_numpy(images, src_x, src_y, fill)


def _bilinear_numpy(images: np.ndarray, src_x: np.ndarray, src_y: np.ndarray, fill: float) -> np.ndarray:
    """Sample images (N, H, W[, C]) at float positions (N, H, W) with bilinear weights; outside reads ``fill``."""
    n, h, w = images.shape[:3]
    flat = images.reshape(n * h * w, -1)
    if flat.dtype != np.float32:
        flat = flat.astype(np.float32)
    x0 = np.floor(src_x)
    y0 = np.floor(src_y)
    wx = (src_x - x0)[..., None]
    wy = (src_y - y0)[..., None]
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    base = (np.arange(n, dtype=np.int64) * (h * w))[:, None, None]
    out = np.zeros(src_x.shape + (flat.shape[1],), dtype=np.float32)
    for dy, wy_ in ((0, 1.0 - wy), (1, wy)):
        yy = y0 + dy
        for dx, wx_ in ((0, 1.0 - wx), (1, wx)):
            xx = x0 + dx
            inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            idx = base + np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1)
            vals = flat[idx]  # (N, H, W, C)
            weight = wy_ * wx_
            if fill == 0:
                weight = weight * inside[..., None]
            else:
                vals = np.where(inside[..., None], vals, np.float32(fill))
            out += weight * vals
    return out.reshape(images.shape)


def _bilinear_loops(images, src_x, src_y, fill, out):  # pragma: no cover - compiled by numba
    """The same sampling as ``_bilinear_numpy``, one output pixel at a time: images (N, H, W, C) float32."""
    n, h, w, c = images.shape
    for i in range(n):
        for r in range(h):
            for q in range(w):
                fx, fy = src_x[i, r, q], src_y[i, r, q]
                x0, y0 = int(np.floor(fx)), int(np.floor(fy))
                wx, wy = fx - x0, fy - y0
                for ch in range(c):
                    acc = np.float32(0.0)
                    for dy in range(2):
                        yy = y0 + dy
                        wgt_y = wy if dy else 1.0 - wy
                        for dx in range(2):
                            xx = x0 + dx
                            wgt = wgt_y * (wx if dx else 1.0 - wx)
                            if 0 <= xx < w and 0 <= yy < h:
                                acc += wgt * images[i, yy, xx, ch]
                            else:
                                acc += wgt * fill
                    out[i, r, q, ch] = acc


def _affine_loops(images, maps, fill, nearest, out):  # pragma: no cover - compiled by numba
    """``random_affine``'s sampling with the source positions computed per pixel from ``maps`` (N, 6)."""
    n, h, w = images.shape[0], images.shape[1], images.shape[2]
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    src_x = np.empty((1, h, w), dtype=np.float32)
    src_y = np.empty((1, h, w), dtype=np.float32)
    for i in range(n):
        a00, a01, a10, a11, bx, by = maps[i, 0], maps[i, 1], maps[i, 2], maps[i, 3], maps[i, 4], maps[i, 5]
        for r in range(h):
            y = r - cy
            for q in range(w):
                x = q - cx
                fx = np.float32(a00 * x + a01 * y + bx)
                fy = np.float32(a10 * x + a11 * y + by)
                if nearest:
                    fx, fy = np.floor(fx + np.float32(0.5)), np.floor(fy + np.float32(0.5))
                src_x[0, r, q] = fx
                src_y[0, r, q] = fy
        _bilinear_loops(images[i:i + 1], src_x, src_y, fill, out[i:i + 1])


if _USE_NUMBA:
    _bilinear_loops = njit(cache=True, nogil=True)(_bilinear_loops)
    _affine_kernel = njit(cache=True, nogil=True)(_affine_loops)
    _bilinear_kernel = _bilinear_loops
else:  # pragma: no cover
    _affine_kernel = _bilinear_kernel = None


class RandomAffine:
    """``random_affine`` with fixed ranges, as a ``DataLoader`` augmentation: ``aug(images, rng)``."""

    def __init__(self, degrees: float = 0.0, scale: float = 0.0, shear: float = 0.0, translate: float = 0.0,
                 flip: bool = True, fill: float = 0.0, nearest: bool = False):
        self.degrees, self.scale, self.shear, self.translate = degrees, scale, shear, translate
        self.flip, self.fill, self.nearest = flip, fill, nearest

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_affine(images, rng, self.degrees, self.scale, self.shear, self.translate, self.flip,
                             self.fill, self.nearest)

    def __repr__(self) -> str:
        return (f"RandomAffine(degrees={self.degrees}, scale={self.scale}, shear={self.shear}, "
                f"translate={self.translate}, flip={self.flip}, fill={self.fill}, nearest={self.nearest})")
