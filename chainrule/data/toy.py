"""Small offline datasets for demos and tests: scikit-learn's 8x8 digits, CS231n's spiral and the 2-D sets of the
lectures' live demos (ConvNetJS, TensorFlow Playground): circles, XOR, Gaussian blobs and moons.

The 2-D generators all return X float32 (N, 2) inside about [-1, 1]^2 and y int64 (N,), are seeded, and take a
``noise`` whose meaning each docstring states; ``make_2d(name, n, ...)`` picks one by name (``TOY_2D``).
"""
from __future__ import annotations

import numpy as np

from chainrule.utils.seeding import as_generator

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
    rng = as_generator(seed)
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


# ---- the 2-D sets of the live demos ---------------------------------------------------------------------------------

def _check_2d(name: str, n: int, noise: float, min_n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < min_n:
        raise ValueError(f"{name} needs n >= {min_n} points, got n={n!r}")
    if not noise >= 0:  # also rejects nan
        raise ValueError(f"noise must be >= 0, got {noise}")


def _per_class(n: int, classes: int) -> np.ndarray:
    """n points over ``classes`` classes as evenly as possible (the first classes get the remainder)."""
    return np.full(classes, n // classes) + (np.arange(classes) < n % classes)


def make_circles(n: int = 200, noise: float = 0.1, seed: int | np.random.Generator = 0,
                 factor: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric classes: class 0 uniform in the disc of radius ``factor``, class 1 in the ring between
    radius ``factor + 0.2`` and 1 (TensorFlow Playground's "circle").

    ``noise`` is the standard deviation of Gaussian jitter added to both coordinates.

    Returns:
        X float32 (n, 2), y int64 (n,) with classes 0 and 1 alternating.
    """
    _check_2d("make_circles", n, noise, 2)
    if not 0.0 < factor < 0.8:
        raise ValueError(f"make_circles needs factor in (0, 0.8) so that the ring fits inside radius 1, got {factor}")
    rng = as_generator(seed)
    y = np.arange(n, dtype=np.int64) % 2
    u = rng.random(n)
    inner, ring_start = factor, factor + 0.2
    r = np.where(y == 0, inner * np.sqrt(u), np.sqrt(ring_start**2 + u * (1.0 - ring_start**2)))
    t = rng.uniform(0.0, 2.0 * np.pi, n)
    X = np.stack([r * np.cos(t), r * np.sin(t)], axis=1) + noise * rng.standard_normal((n, 2))
    return X.astype(np.float32), y


def make_xor(n: int = 200, noise: float = 0.1, seed: int | np.random.Generator = 0,
             margin: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """XOR: points uniform in [-1, 1]^2 away from the axes by ``margin``; class 1 where x * y < 0 (opposite
    quadrants share a class; no linear classifier separates them).

    ``noise`` is the standard deviation of Gaussian jitter added after labelling (points may cross the axes).
    """
    _check_2d("make_xor", n, noise, 2)
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"make_xor needs margin in [0, 1), got {margin}")
    rng = as_generator(seed)
    X = rng.uniform(margin, 1.0, (n, 2)) * rng.choice([-1.0, 1.0], size=(n, 2))
    y = (X[:, 0] * X[:, 1] < 0).astype(np.int64)
    X = X + noise * rng.standard_normal((n, 2))
    return X.astype(np.float32), y


def make_blobs(n: int = 200, centers: int = 2, noise: float = 0.1, seed: int | np.random.Generator = 0,
               radius: float = 0.5, spread: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """``centers`` isotropic Gaussian blobs, one per class, centred evenly on the circle of ``radius``.

    Each blob has standard deviation ``spread + noise`` (``noise`` widens them until they overlap).
    """
    _check_2d("make_blobs", n, noise, 1)
    if isinstance(centers, bool) or not isinstance(centers, (int, np.integer)) or centers < 1:
        raise ValueError(f"make_blobs needs centers >= 1, got {centers!r}")
    rng = as_generator(seed)
    y = np.repeat(np.arange(centers, dtype=np.int64), _per_class(n, centers))
    angle = 2.0 * np.pi * np.arange(centers) / centers + np.pi / 4
    mu = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)          # (centers, 2)
    X = mu[y] + (spread + noise) * rng.standard_normal((n, 2))
    return X.astype(np.float32), y


def make_moons(n: int = 200, noise: float = 0.1, seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles (scikit-learn's moons), scaled and centred to fit in about [-1, 1]^2.

    Class 0 is the upper moon (x, y) = (cos t, sin t), class 1 the lower one (1 - cos t, 0.5 - sin t),
    t uniform in [0, pi]; then (x - 0.5) * 0.6 and (y - 0.25) * 0.6. ``noise`` is the standard deviation of Gaussian
    jitter added at the end.
    """
    _check_2d("make_moons", n, noise, 2)
    rng = as_generator(seed)
    y = np.repeat(np.arange(2, dtype=np.int64), _per_class(n, 2))
    t = rng.uniform(0.0, np.pi, n)
    X = np.where((y == 0)[:, None], np.stack([np.cos(t), np.sin(t)], 1), np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
    X = (X - [0.5, 0.25]) * 0.6 + noise * rng.standard_normal((n, 2))
    return X.astype(np.float32), y


def _spiral_n(n: int, classes: int, noise: float, seed: int | np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    _check_2d("spiral", n, noise, classes)
    counts = _per_class(n, classes)
    if counts.min() == counts.max():
        return make_spiral(int(counts[0]), classes, noise, seed)
    X, y = make_spiral(int(counts.max()), classes, noise, seed)
    keep = np.concatenate([np.flatnonzero(y == c)[:counts[c]] for c in range(classes)])
    return X[keep], y[keep]


# name -> the class counts it supports
TOY_2D: dict[str, tuple[int, ...]] = {
    "spiral": (2, 3, 4, 5), "circles": (2,), "xor": (2,), "blobs": (2, 3), "moons": (2,),
}


def make_2d(name: str, n: int = 200, classes: int = 2, noise: float = 0.1,
            seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """One of the 2-D demo sets by name, ``n`` points in all (``TOY_2D`` lists the names and class counts).

    ``spiral`` takes 2-5 ``classes`` (``n`` split evenly; ``noise`` is its angle jitter), ``blobs`` 2 or 3; the
    others are two-class.

        >>> X, y = make_2d("spiral", 300, classes=3, noise=0.2, seed=0)
        >>> X.shape, sorted(set(y.tolist()))
        ((300, 2), [0, 1, 2])
    """
    if name not in TOY_2D:
        raise ValueError(f"unknown 2-D dataset {name!r}; expected one of {', '.join(TOY_2D)}")
    supported = TOY_2D[name]
    if classes not in supported:
        raise ValueError(f"{name} has {' or '.join(map(str, supported))} classes, got classes={classes!r}")
    if name == "spiral":
        return _spiral_n(n, classes, noise, seed)
    if name == "blobs":
        return make_blobs(n, classes, noise, seed)
    return {"circles": make_circles, "xor": make_xor, "moons": make_moons}[name](n, noise, seed)
