"""The images mode's datasets: loaded once per server, shared read-only by every tab, split into training images
and held-out images.

    data = load_image_data("digits")                # scikit-learn's 1,797 8x8 digits, offline
    data = load_image_data("folder:/path/cifar10")  # or cifar10:PATH, e.g. the CIFAR-10 JPEG archive
    X = data.batch(data.train[:20])                 # float32 (20, H, W, C): pixels in [0, 1] minus the mean image

Pixels are kept as the dataset stores them (uint8 for CIFAR-10: 150 MB for 50,000 images, once for all tabs)
and turned into model inputs a batch at a time, so a tab costs memory for its batches and its held-out images,
not for a float copy of the dataset. The model inputs are CS231n's: pixels scaled to [0, 1], minus the training
images' mean image; a linear model's weights are then its class templates in pixel space (lecture 2).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from chainrule.data.registry import get_dataset
from chainrule.data.splits import train_val_indices

HELD_OUT = {"digits": 300}  # held-out images per dataset (any other: HELD_OUT_DEFAULT)
HELD_OUT_DEFAULT = 500
MAX_IMAGE_SIDE = 64  # the playground's views and batches are sized for small images (8x8 digits, 32x32 CIFAR-10)


@dataclass(frozen=True)
class ImageData:
    """One dataset, split. ``X`` (N, H, W, C) as stored, ``scale`` what maps it to [0, 1], ``train`` / ``test``
    index arrays, ``mean`` the training images' mean image in [0, 1] (H, W, C)."""

    name: str
    X: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    scale: float
    train: np.ndarray
    test: np.ndarray
    mean: np.ndarray

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return tuple(self.X.shape[1:])  # type: ignore[return-value]

    def batch(self, idx: np.ndarray) -> np.ndarray:
        """float32 (n, H, W, C) model inputs of the images ``idx``: pixels in [0, 1] minus the mean image."""
        return (self.X[idx].astype(np.float32) * np.float32(self.scale) - self.mean).astype(np.float32)

    def pixels(self, idx: np.ndarray) -> np.ndarray:
        """uint8 (n, H, W, C) images as shown."""
        return np.rint(np.clip(self.X[idx].astype(np.float32) * self.scale, 0, 1) * 255).astype(np.uint8)


def make_image_data(name: str, X: np.ndarray, y: np.ndarray, classes: tuple[str, ...], scale: float,
                    held_out: int, seed: int = 0) -> ImageData:
    """Split ``X`` (N, H, W, C), ``y`` into training and ``held_out`` held-out images (stratified, seeded)."""
    if X.ndim != 4 or not 1 <= X.shape[-1] <= 4:
        raise ValueError(f"{name}: expected images (N, H, W, C) with 1 to 4 channels, got shape {X.shape}")
    if max(X.shape[1:3]) > MAX_IMAGE_SIDE:
        raise ValueError(f"{name}: the playground shows images of at most {MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE} "
                         f"pixels, got {X.shape[1]} x {X.shape[2]}; resize them (--image-size 32)")
    train, test = train_val_indices(y, min(held_out, len(y) // 5), stratify=True, seed=seed)
    mean = np.zeros(X.shape[1:], np.float64)
    for i in range(0, len(train), 4096):  # the mean image, in blocks (no float copy of the dataset)
        mean += X[train[i:i + 4096]].astype(np.float64).sum(axis=0)
    mean = (mean / len(train) * scale).astype(np.float32)
    return ImageData(name, X, y, tuple(classes), scale, train, test, mean)


def _load(spec: str, image_size: int | None) -> ImageData:
    if spec == "digits":
        ds = get_dataset("digits")
        return make_image_data("digits", ds.X_train, ds.y_train, ds.classes, 1 / 16, HELD_OUT["digits"])
    ds = get_dataset(spec, image_size=image_size) if spec.startswith("folder:") else get_dataset(spec)
    X = ds.X_train
    if X.dtype != np.uint8:
        raise ValueError(f"{spec}: expected uint8 images, got {X.dtype}")
    return make_image_data(spec, X, ds.y_train, ds.classes, 1 / 255, HELD_OUT_DEFAULT)


class ImageDatasets:
    """The image datasets a server offers, by the name the page shows ("digits", "cifar10"), each loaded on first
    use (in the asking tab's thread) and then shared."""

    def __init__(self, specs: dict[str, str] | None = None, image_size: int | None = None):
        self.specs = {"digits": "digits", **(specs or {})}
        self.image_size = image_size
        self._loaded: dict[str, ImageData] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def get(self, name: str) -> ImageData:
        with self._lock:  # one load per dataset, however many tabs ask at once
            if name not in self._loaded:
                self._loaded[name] = _load(self.specs[name], self.image_size)
            return self._loaded[name]

    def loader(self) -> Callable[[str], ImageData]:
        return self.get
