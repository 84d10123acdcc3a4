"""Left-right mirroring for the classifiers' ``augment="flip"``: the mirror image of flattened image rows, the same
mirror in a preprocessed space, and the two ``DataLoader`` augmentations the linear models train with.

    rows = mirror_rows(X, (32, 32, 3), "KNearestNeighbor")   # (N, D) -> the rows of the mirrored images
    perm, scale, shift = flip_map(prep, (32, 32, 3))         # flip(z) = z[:, perm] * scale + shift after prep
    DataLoader(Z, y, 256, augment=FlipRows(perm, scale, shift))   # a random half of each batch mirrored
    DataLoader(np.stack([F, F_mirror], axis=1), y, 256, augment=PickTwin())   # features: one of each pair
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.data.preprocessing import Standardize

__all__ = ["check_images", "mirror_rows", "flip_map", "FlipRows", "PickTwin"]


def check_images(sample_shape: tuple[int, ...], who: str) -> None:
    """``augment='flip'`` needs image samples (H, W) or (H, W, C); ValueError naming ``who`` otherwise."""
    if len(sample_shape) not in (2, 3):
        raise ValueError(f"{who}: augment='flip' mirrors images, so X must be (N, H, W) or (N, H, W, C); got samples "
                         f"of shape {sample_shape}: pass images, or use augment=False for feature vectors")


def mirror_rows(X: np.ndarray, sample_shape: tuple[int, ...], who: str) -> np.ndarray:
    """(N, D) rows of images of ``sample_shape`` -> the rows of the left-right mirrored images (same dtype)."""
    check_images(sample_shape, who)
    return np.ascontiguousarray(X.reshape(len(X), *sample_shape)[:, :, ::-1]).reshape(len(X), -1)


def flip_map(prep: Any, sample_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(perm, scale, shift) with flip(z) = z[:, perm] * scale + shift: a horizontal mirror of the images in the space
    of the fitted preprocessing ``prep`` (None, ``Standardize`` or ``MeanImage``): exactly what preprocessing the
    mirrored image gives."""
    perm = np.arange(int(np.prod(sample_shape))).reshape(sample_shape)[:, ::-1].reshape(-1)
    if prep is None:
        return perm, np.ones(1, np.float32), np.zeros(1, np.float32)
    if isinstance(prep, Standardize):
        mean, std = prep.mean_.astype(np.float64), prep.std_.astype(np.float64)
        return perm, (std[perm] / std).astype(np.float32), ((mean[perm] - mean) / std).astype(np.float32)
    mean = prep.mean_image_.reshape(-1).astype(np.float64)
    return perm, np.ones(1, np.float32), (mean[perm] - mean).astype(np.float32)


class FlipRows:
    """DataLoader augment: mirror a random half of a batch of preprocessed pixel rows, z -> z[perm] * scale + shift."""

    def __init__(self, perm: np.ndarray, scale: np.ndarray, shift: np.ndarray):
        self.perm, self.scale, self.shift = perm, scale, shift

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        xb = np.array(xb, dtype=np.float32)
        rows = np.flatnonzero(rng.random(len(xb)) < 0.5)
        mirrored = xb[rows][:, self.perm]
        mirrored *= self.scale
        mirrored += self.shift
        xb[rows] = mirrored
        return xb


class PickTwin:
    """DataLoader augment over (B, 2, D') rows (features of each image and of its mirror): one of the two each."""

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return xb[np.arange(len(xb)), (rng.random(len(xb)) < 0.5).astype(np.int64)]
