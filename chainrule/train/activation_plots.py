"""Pictures of what a conv net computes: a few images with their activation maps after each block (lecture 4's
"what do the layers see", ConvNetJS's activation view).

    maps = est.activation_maps(X_val[:4])           # [(4, C_i, H_i, W_i)] per block (ConvNetClassifier)
    plot_activation_maps(X_val[:4], maps, "plots/activations.png", names=["whiten", "block 1", ...])

One row per image: the image, then the first ``channels`` maps of every block, each map upsampled (nearest) to the
image's size and scaled to its own min..max (gray: dark = low, light = high).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from chainrule.train.plots import _image_grid, _rgb


def _resize_nearest(maps: np.ndarray, h: int, w: int) -> np.ndarray:
    """(n, c, mh, mw) -> (n, c, h, w), each pixel taking the map value under it."""
    rows = np.minimum((np.arange(h) * maps.shape[2]) // h, maps.shape[2] - 1)
    cols = np.minimum((np.arange(w) * maps.shape[3]) // w, maps.shape[3] - 1)
    return maps[:, :, rows][:, :, :, cols]


def plot_activation_maps(images: np.ndarray, maps: Sequence[np.ndarray], path: str | os.PathLike,
                         names: Sequence[str] | None = None, channels: int = 6, max_value: float | None = None,
                         title: str = "Activation maps after each block (first channels)") -> str:
    """Images (n, H, W, C) (C = 1 or 3; uint8, or floats shown on 0..``max_value``) and their activation maps
    ``maps[b]`` (n, C_b, H_b, W_b) -> one mosaic (see the module docstring); ``names`` labels the blocks."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"plot_activation_maps needs images (n, H, W, 1 or 3), got shape {images.shape}")
    if not maps or any(np.ndim(m) != 4 or len(m) != len(images) for m in maps):
        raise ValueError(f"plot_activation_maps needs one (n, C, H, W) array per block for n = {len(images)} "
                         f"images, got shapes {[np.shape(m) for m in maps]}")
    names = list(names) if names is not None else [f"block {i + 1}" for i in range(len(maps))]
    n, h, w = images.shape[:3]
    top = max_value if max_value is not None else (255.0 if images.dtype == np.uint8 else
                                                   float(images.max()) or 1.0)
    columns = [_rgb(np.clip(images.astype(np.float64) / top, 0.0, 1.0))[:, None]]  # (n, 1, h, w, 3)
    labels = ["image"]
    for name, m in zip(names, maps, strict=True):
        k = min(channels, m.shape[1])
        shown = _resize_nearest(np.asarray(m[:, :k], dtype=np.float64), h, w)  # (n, k, h, w)
        lo = shown.min(axis=(2, 3), keepdims=True)
        span = shown.max(axis=(2, 3), keepdims=True) - lo
        shown = np.where(span > 0, (shown - lo) / np.where(span > 0, span, 1.0), 0.0)
        columns.append(np.repeat(shown[..., None], 3, axis=-1))
        labels += [name] + [f"#{c}" for c in range(1, k)]  # the block's name over its first map
    grid = np.concatenate(columns, axis=1)  # (n, cols, h, w, 3)
    cols = grid.shape[1]
    above = labels + [""] * (cols * (n - 1))
    return _image_grid(grid.reshape(n * cols, h, w, 3), path, title, cols, 0.8, above=above)
