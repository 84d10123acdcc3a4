"""Train/validation splits and k-fold cross-validation, seeded and (optionally) stratified.

Hyperparameters are chosen on validation data carved from the training set; the test split is
touched once at the end. All randomness comes from ``seed`` (an int or a
``numpy.random.Generator``), never from global state.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np

from chainrule.utils.seeding import as_generator

SeedLike = int | np.random.Generator


def _rng(seed: SeedLike) -> np.random.Generator:
    return as_generator(seed, allow_none=False)


def _labels(y: np.ndarray, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n or y.dtype.kind not in "iub":
        raise ValueError(f"{name} must be a 1-D integer array of length {n}, got "
                         f"{y.dtype}{list(y.shape)}")
    return y


def _val_count(val_size: int | float, n: int) -> int:
    if isinstance(val_size, (float, np.floating)):
        if not 0.0 < val_size < 1.0:
            raise ValueError(f"val_size as a fraction must be in (0, 1), got {val_size}")
        count = int(round(val_size * n))
    elif isinstance(val_size, (int, np.integer)) and not isinstance(val_size, bool):
        count = int(val_size)
    else:
        raise TypeError(f"val_size must be an int count or a float fraction, got {val_size!r}")
    if not 0 < count < n:
        raise ValueError(f"val_size={val_size} gives {count} validation samples out of {n}; "
                         f"need between 1 and {n - 1}")
    return count


def _stratified_counts(class_sizes: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` across classes proportionally to their sizes (largest remainder)."""
    exact = class_sizes * (total / class_sizes.sum())
    counts = np.floor(exact).astype(np.int64)
    short = total - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")  # ties: lower class index first
    counts[order[:short]] += 1
    return np.minimum(counts, class_sizes)


def train_val_indices(y: np.ndarray, val_size: int | float = 0.1, *, stratify: bool = True,
                      seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train_idx, val_idx) of a seeded split of N samples with labels ``y`` (N,).

    ``val_size`` is a count (int) or a fraction (float). With ``stratify`` each class keeps its
    share of samples in the validation set (largest-remainder rounding). Both index arrays
    are sorted, disjoint and together cover range(N).
    """
    y = _labels(y, len(np.asarray(y)), "y")
    n = len(y)
    n_val = _val_count(val_size, n)
    rng = _rng(seed)
    if stratify:
        classes, inverse, sizes = np.unique(y, return_inverse=True, return_counts=True)
        counts = _stratified_counts(sizes, n_val)
        # Shuffle once, then take the first counts[c] samples of each class.
        perm = rng.permutation(n)
        by_class = perm[np.argsort(inverse[perm], kind="stable")]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rank = np.arange(n) - np.repeat(starts, sizes)
        val_idx = by_class[rank < np.repeat(counts, sizes)]
    else:
        val_idx = rng.permutation(n)[:n_val]
    mask = np.zeros(n, dtype=bool)
    mask[val_idx] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


class Split(NamedTuple):
    """Result of `train_val_split` (unpacks as X_train, y_train, X_val, y_val)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


def train_val_split(X: np.ndarray, y: np.ndarray, val_size: int | float = 0.1, *,
                    stratify: bool = True, seed: SeedLike = 0) -> Split:
    """Split X (N, ...) and y (N,) into training and validation parts.

    Returns ``Split(X_train, y_train, X_val, y_val)``; samples keep their original order within
    each part. See `train_val_indices` for ``val_size``, ``stratify`` and ``seed``.
    """
    X = np.asarray(X)
    y = _labels(y, len(X), "y")
    train_idx, val_idx = train_val_indices(y, val_size, stratify=stratify, seed=seed)
    return Split(X[train_idx], y[train_idx], X[val_idx], y[val_idx])


def kfold(n: int, k: int = 5, *, stratify_labels: np.ndarray | None = None,
          seed: SeedLike = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (train_idx, val_idx) for each of ``k`` folds over ``n`` samples.

    The validation folds are disjoint, cover range(n) and differ in size by at most one.
    With ``stratify_labels`` (n,) each fold gets each class's samples in proportion (a class
    of m samples puts floor(m/k) or ceil(m/k) in every fold). Indices are sorted.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive number of samples, got {n!r}")
    if not isinstance(k, (int, np.integer)) or not 2 <= k <= n:
        raise ValueError(f"k must be an int in [2, n={n}], got {k!r}")
    rng = _rng(seed)
    perm = rng.permutation(n)
    if stratify_labels is not None:
        y = _labels(stratify_labels, n, "stratify_labels")
        # Deal each class's shuffled samples round-robin, continuing the count across classes
        # so every fold size is within one of n / k.
        perm = perm[np.argsort(y[perm], kind="stable")]
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[perm] = np.arange(n) % k
    for f in range(k):
        yield np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
