"""Small offline datasets for demos and tests: scikit-learn's 8x8 digits and CS231n's spiral."""
from __future__ import annotations

import numpy as np

from .dataset import Dataset


def load_digits() -> Dataset:
    """The 1,797 8x8 handwritten digits bundled with scikit-learn (no download).

    Returns:
        `Dataset` with X_train float32 (1797, 8, 8, 1) grayscale images with intensities in
        [0, 16] (scikit-learn's values), y_train int64 (1797,) in [0, 10), classes "0".."9",
        and no test split (X_test = y_test = None).
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:
        raise ImportError("load_digits needs scikit-learn, which ships the digits data: "
                          "pip install scikit-learn") from exc
    digits = sk_load_digits()
    X = digits.images.astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    return Dataset(X, y, None, None, tuple(str(k) for k in range(10)), name="digits (scikit-learn)")


def make_spiral(n: int = 100, classes: int = 3, noise: float = 0.2,
                seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """CS231n's 2-D spiral: ``classes`` interleaved arms of ``n`` points each.

    Arm j has radius r = linspace(0, 1, n) and angle t = linspace(4j, 4(j+1), n) + noise * z
    with z ~ N(0, 1); the point is (r sin t, r cos t). Not linearly separable.

    Returns:
        X: float32 (n * classes, 2), grouped by class; y: int64 (n * classes,).
    """
    if n < 1 or classes < 1:
        raise ValueError(f"make_spiral needs n >= 1 points per class and classes >= 1, got "
                         f"n={n}, classes={classes}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    r = np.tile(np.linspace(0.0, 1.0, n), classes)                          # (n * K,)
    start = 4.0 * np.arange(classes)[:, None]                               # (K, 1)
    t = (start + np.linspace(0.0, 4.0, n)[None, :]).ravel()
    t = t + noise * rng.standard_normal(n * classes)
    X = np.stack([r * np.sin(t), r * np.cos(t)], axis=1).astype(np.float32)
    y = np.repeat(np.arange(classes, dtype=np.int64), n)
    return X, y


def spiral_dataset(n: int = 100, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Dataset:
    """`make_spiral` wrapped as a `Dataset` (classes "0".."K-1", no test split)."""
    X, y = make_spiral(n, classes, noise, seed)
    return Dataset(X, y, None, None, tuple(str(k) for k in range(classes)),
                   name=f"spiral (n={n}, classes={classes}, noise={noise}, seed={seed})")
