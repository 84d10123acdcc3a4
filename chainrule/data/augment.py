"""Data augmentation for image batches, vectorised over the batch.

Every function takes images (N, H, W, C) (or (N, H, W)) and a ``numpy.random.Generator``
and returns a new array of the same shape and dtype; the input is never modified. The same
generator state gives the same output, so a `DataLoader` that derives the generator from
(seed, epoch, batch) reproduces its augmented batches exactly, even after a resume.

    aug = Augment(flip=True, crop_padding=4, brightness=0.2)
    batch = aug(images, rng)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check_images(images: np.ndarray, fn: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"{fn} expects images of shape (N, H, W, C) or (N, H, W), got "
                         f"{images.shape}")
    return images


def random_flip(images: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability ``p``: (N, H, W, ...) -> same shape."""
    images = _check_images(images, "random_flip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    flip = rng.random(len(images)) < p
    out = images.copy()
    out[flip] = images[flip, :, ::-1]
    return out


def random_crop(images: np.ndarray, rng: np.random.Generator, padding: int = 4,
                fill: int | float = 0) -> np.ndarray:
    """Pad each image by ``padding`` pixels of ``fill`` on every side, then crop a random
    window of the original size (H, W): (N, H, W, ...) -> same shape.

    Offsets (dy, dx) are drawn uniformly from [0, 2 * padding] per image.
    """
    images = _check_images(images, "random_crop")
    if not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    n, h, w = images.shape[:3]
    if padding == 0:
        return images.copy()
    pad = [(0, 0), (padding, padding), (padding, padding)] + [(0, 0)] * (images.ndim - 3)
    padded = np.pad(images, pad, constant_values=fill)
    dy = rng.integers(0, 2 * padding + 1, size=n)
    dx = rng.integers(0, 2 * padding + 1, size=n)
    rows = (dy[:, None] + np.arange(h))[:, :, None]          # (N, H, 1)
    cols = (dx[:, None] + np.arange(w))[:, None, :]          # (N, 1, W)
    return padded[np.arange(n)[:, None, None], rows, cols]


def _gray(x: np.ndarray) -> np.ndarray:
    """Luma (ITU-R 601) of float (N, H, W, 3) images, keeping a channel axis: (N, H, W, 1)."""
    return np.dot(x, np.array([0.299, 0.587, 0.114], dtype=x.dtype))[..., None]


def color_jitter(images: np.ndarray, rng: np.random.Generator, brightness: float = 0.0,
                 contrast: float = 0.0, saturation: float = 0.0) -> np.ndarray:
    """Random brightness, contrast and saturation per image, applied in that order.

    Each factor f is drawn uniformly from [1 - s, 1 + s] (s = the argument; 0 turns it off):
    brightness scales pixels by f; contrast blends with the image's mean luma,
    m + f (x - m); saturation blends with each pixel's luma, g + f (x - g) (RGB only).
    uint8 images are rounded and clipped back to [0, 255]; float images are not clipped.
    Images (N, H, W, C) -> same shape and dtype.
    """
    images = _check_images(images, "color_jitter")
    for name, s in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {s}")
    if saturation and (images.ndim != 4 or images.shape[-1] != 3):
        raise ValueError(f"saturation jitter needs RGB images (N, H, W, 3), got {images.shape}")
    n = len(images)
    x = images.astype(np.float32) if images.dtype.kind != "f" else images.copy()

    def factors(s: float) -> np.ndarray:
        f = rng.uniform(1.0 - s, 1.0 + s, size=n).astype(x.dtype)
        return f.reshape((n,) + (1,) * (x.ndim - 1))

    if brightness:
        x *= factors(brightness)
    if contrast:
        luma = _gray(x) if x.ndim == 4 and x.shape[-1] == 3 else x
        m = luma.mean(axis=tuple(range(1, x.ndim)), keepdims=True)
        x = m + factors(contrast) * (x - m)
    if saturation:
        g = _gray(x)
        x = g + factors(saturation) * (x - g)
    if images.dtype == np.uint8:
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return x.astype(images.dtype, copy=False)


@dataclass(frozen=True)
class Augment:
    """A training-time augmentation pipeline: flip, then padded crop, then colour jitter.

    Call it as ``aug(images, rng)`` (images (N, H, W, C) -> same shape and dtype). Steps whose
    argument is off (False / 0) are skipped and draw no random numbers.
    """

    flip: bool = True
    crop_padding: int = 0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.asarray(images)
        if self.flip:
            out = random_flip(out, rng)
        if self.crop_padding:
            out = random_crop(out, rng, self.crop_padding)
        if self.brightness or self.contrast or self.saturation:
            out = color_jitter(out, rng, self.brightness, self.contrast, self.saturation)
        return out
