"""Helpers shared by the ops: undoing broadcasting and normalising axes."""

from __future__ import annotations

from typing import Any

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting expanded, so it has ``shape`` again.

    Broadcasting copies an input along new leading axes and along axes of size 1; the gradient of a copy is the sum
    of the copies' gradients ("copy gate: gradient adder").
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def normalize_axes(op: str, axis: Any, ndim: int) -> tuple[int, ...] | None:
    """``axis`` (None, int or tuple of ints, negatives allowed) as a sorted tuple of non-negative axes."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def expand_reduced(grad: np.ndarray, axes: tuple[int, ...] | None, keepdims: bool) -> np.ndarray:
    """Give the gradient of a reduction back its reduced axes (as size 1) so it broadcasts against the input."""
    if keepdims or axes is None:
        return grad
    return np.expand_dims(grad, axes)
