"""Stack several batch feature functions into one feature matrix (CS231n's extract_features), and
``HogColorFeatures``, the HOG + hue-histogram pipeline as a preprocessing step the classifiers save with them."""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np

from chainrule.progress import progress

from .color import color_histogram_hsv
from .hog import hog

FeatureFn = Callable[[np.ndarray], np.ndarray]


def extract_features(images: np.ndarray, feature_fns: Sequence[FeatureFn] = (hog, color_histogram_hsv),
                     *, batch_size: int = 2048) -> np.ndarray:
    """Concatenate features of a batch: images (N, H, W, C) -> float32 (N, F_1 + ... + F_k).

    Each function maps a batch (n, H, W, C) to (n, F_i), e.g. `hog`, `color_histogram_hsv`, or
    ``functools.partial(hog, cell=4)``. Images are processed ``batch_size`` at a time so the
    intermediate arrays stay small; the result is the same for any ``batch_size``.
    """
    images = np.asarray(images)
    if images.ndim < 2 or len(images) == 0:
        raise ValueError(f"extract_features expects a non-empty batch (N, H, W, C), got shape "
                         f"{images.shape}")
    if not feature_fns:
        raise ValueError("extract_features needs at least one feature function")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    out: np.ndarray | None = None
    desc = "features: " + " + ".join(_name(fn) for fn in feature_fns)
    with progress(len(images), desc, "images") as bar:
        for i in range(0, len(images), batch_size):
            chunk = images[i:i + batch_size]
            parts = []
            for fn in feature_fns:
                feats = np.asarray(fn(chunk))
                if feats.ndim != 2 or len(feats) != len(chunk):
                    name = getattr(fn, "__name__", repr(fn))
                    raise ValueError(f"feature function {name} must return ({len(chunk)}, F) for a "
                                     f"batch of {len(chunk)} images, got shape {feats.shape}")
                parts.append(feats)
            block = np.concatenate(parts, axis=1)
            if out is None:
                out = np.empty((len(images), block.shape[1]), dtype=np.float32)
            out[i:i + len(chunk)] = block
            bar.update(len(chunk))
    return out


def _name(fn: FeatureFn) -> str:
    """What a feature function is called in progress lines ("hog", "color_histogram_hsv", partials too)."""
    return getattr(getattr(fn, "func", fn), "__name__", type(fn).__name__)


class HogColorFeatures:
    """Images (N, H, W, 3) -> float32 (N, F): HOG (``cell`` x ``cell`` cells, 9 orientations) followed by a hue
    histogram of ``bins`` bins (CS231n's feature pipeline). Nothing is learned; a preprocessing step like those of
    ``chainrule.data`` (``fit``, ``transform``, ``state_dict``)."""

    def __init__(self, cell: int = 8, bins: int = 10):
        self.cell, self.bins = cell, bins

    def fit(self, X: np.ndarray) -> "HogColorFeatures":
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 4 or X.shape[-1] != 3:
            raise ValueError(f"features='hog_color' needs RGB images (N, H, W, 3), got samples of shape {X.shape[1:]}")
        return extract_features(X, (functools.partial(hog, cell=self.cell),
                                    functools.partial(color_histogram_hsv, bins=self.bins)))

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def n_features_out(self, image_shape: Sequence[int]) -> int:
        """F, the number of features of one image of shape (H, W, 3): (H // cell) * (W // cell) * 9 + bins."""
        h, w = int(image_shape[0]), int(image_shape[1])
        return (h // self.cell) * (w // self.cell) * 9 + self.bins

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def __repr__(self) -> str:
        return f"HogColorFeatures(cell={self.cell}, bins={self.bins})"

    def load_state_dict(self, state: dict[str, np.ndarray]) -> "HogColorFeatures":
        return self
