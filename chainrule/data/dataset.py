"""The `Dataset` container returned by every loader, and the checks loaders run on their output."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DataError(ValueError):
    """A data file or array is not what the loader expected (the message names file and index)."""


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Arrays of one dataset, as NumPy arrays.

    Attributes:
        X_train: (N, ...) inputs. Image datasets use uint8 (N, H, W, C) in HWC order
            (CIFAR-10: (50000, 32, 32, 3)); toy sets use float32.
        y_train: (N,) int64 labels in [0, len(classes)).
        X_test, y_test: the official test split, or None when the source has none (an image
            folder, the shared JPEG archive, digits, spiral): carve a validation split from the
            training arrays with `train_val_split` instead.
        classes: class names; label k is ``classes[k]``.
        name: short description of where the data came from.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    classes: tuple[str, ...]
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        check_labels(self.y_train, len(self.classes), f"{self.name or 'dataset'} y_train",
                     n=len(self.X_train))
        if (self.X_test is None) != (self.y_test is None):
            raise DataError("X_test and y_test must both be arrays or both be None, got "
                            f"{type(self.X_test).__name__} and {type(self.y_test).__name__}")
        if self.X_test is not None:
            check_labels(self.y_test, len(self.classes), f"{self.name or 'dataset'} y_test",
                         n=len(self.X_test))
            if self.X_test.shape[1:] != self.X_train.shape[1:]:
                raise DataError(f"X_test samples have shape {self.X_test.shape[1:]} but X_train "
                                f"samples have shape {self.X_train.shape[1:]}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        def desc(a: np.ndarray | None) -> str:
            return "None" if a is None else f"{a.dtype}{list(a.shape)}"
        return (f"Dataset(name={self.name!r}, X_train={desc(self.X_train)}, "
                f"y_train={desc(self.y_train)}, X_test={desc(self.X_test)}, "
                f"y_test={desc(self.y_test)}, classes={len(self.classes)})")


def check_labels(y: np.ndarray, num_classes: int, where: str, n: int | None = None) -> None:
    """Raise DataError unless ``y`` is a 1-D int64 array of length ``n`` with values in range."""
    if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
        desc = f"{y.dtype}{list(y.shape)}" if isinstance(y, np.ndarray) else type(y).__name__
        raise DataError(f"{where}: expected a 1-D int64 label array, got {desc}")
    if n is not None and len(y) != n:
        raise DataError(f"{where}: expected {n} labels (one per sample), got {len(y)}")
    if len(y):
        bad = np.flatnonzero((y < 0) | (y >= num_classes))
        if len(bad):
            i = int(bad[0])
            raise DataError(f"{where}: expected labels in [0, {num_classes}), got {int(y[i])} "
                            f"at index {i}")


def check_images(X: np.ndarray, where: str, shape: tuple[int, ...] | None = None) -> None:
    """Raise DataError unless ``X`` is a uint8 (N, H, W, C) array (of sample ``shape`` if given)."""
    if not isinstance(X, np.ndarray) or X.dtype != np.uint8 or X.ndim != 4:
        desc = f"{X.dtype}{list(X.shape)}" if isinstance(X, np.ndarray) else type(X).__name__
        raise DataError(f"{where}: expected uint8 images of shape (N, H, W, C), got {desc}")
    if shape is not None and X.shape[1:] != tuple(shape):
        raise DataError(f"{where}: expected images of shape {tuple(shape)}, got {X.shape[1:]}")
