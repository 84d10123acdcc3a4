"""Inverted dropout: multiply by a mask that is 0 with probability p and 1/(1-p) otherwise.

Scaling at training time keeps E[out] = x, so evaluation is the identity (no rescaling at test time).
"""

from __future__ import annotations

import numpy as np

from chainrule.function import Function


def dropout_mask(shape: tuple[int, ...], p: float, generator: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    """The pre-scaled keep mask: 1/(1-p) where a uniform draw is >= p, 0 elsewhere (all zeros for p = 1)."""
    dtype = np.dtype(dtype)
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float32
    u = generator.random(shape, dtype=draw_dtype)
    if p >= 1:
        return np.zeros(shape, dtype=dtype)
    return np.multiply(u >= p, dtype.type(1.0 / (1.0 - p)), dtype=dtype)


class Dropout(Function):
    """x (any shape) * mask (same shape, pre-scaled, not differentiable); backward is grad * mask (the mask, an
    array argument, is a constant of every derivative)."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None
