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

Sampling runs in a compiled kernel when numba is installed (``pip install numba``; ``CHAINRULE_NO_NUMBA=1`` turns
it off), else in NumPy (``_bilinear_numpy``: the readable reference, tested equal). Per batch of 256 32x32x3 float32
images the NumPy version costs ~80 ms (four fancy-index gathers of 262,144 rows; more than a bf16 training step), the
kernel well under 1 ms plus the per-image maps (``bench/ablate_mlp.py --augment-bench``).
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
                  shear: float = 0.0, translate: float = 0.0, flip: bool = False, fill: float = 0.0) -> np.ndarray:
    """Warp each image of ``images`` (N, H, W[, C]) by its own random affine map; returns float32 (N, H, W[, C])."""
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
    # A = R(theta) @ [[1, sh], [0, 1]] / s, applied to (mirror * x, y)
    a00, a01 = cos * mirror, (cos * sh - sin)
    a10, a11 = sin * mirror, (sin * sh + cos)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    xs = (np.arange(w, dtype=np.float32) - cx)[None, None, :]
    ys = (np.arange(h, dtype=np.float32) - cy)[None, :, None]
    col = lambda v: v.astype(np.float32)[:, None, None]  # noqa: E731  (N,) -> (N, 1, 1)
    src_x = col(a00) * xs + col(a01) * ys + col(cx + tx)  # (N, H, W)
    src_y = col(a10) * xs + col(a11) * ys + col(cy + ty)
    if _USE_NUMBA:
        flat = images.reshape(n, h, w, -1)
        out = np.empty(flat.shape, dtype=np.float32)
        _bilinear_kernel(np.ascontiguousarray(flat, dtype=np.float32), src_x, src_y, np.float32(fill), out)
        return out.reshape(images.shape)
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


_bilinear_kernel = njit(cache=True, nogil=True)(_bilinear_loops) if _USE_NUMBA else None


class RandomAffine:
    """``random_affine`` with fixed ranges, as a ``DataLoader`` augmentation: ``aug(images, rng)``."""

    def __init__(self, degrees: float = 0.0, scale: float = 0.0, shear: float = 0.0, translate: float = 0.0,
                 flip: bool = True, fill: float = 0.0):
        self.degrees, self.scale, self.shear, self.translate = degrees, scale, shear, translate
        self.flip, self.fill = flip, fill

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_affine(images, rng, self.degrees, self.scale, self.shear, self.translate, self.flip,
                             self.fill)

    def __repr__(self) -> str:
        return (f"RandomAffine(degrees={self.degrees}, scale={self.scale}, shear={self.shear}, "
                f"translate={self.translate}, flip={self.flip}, fill={self.fill})")
