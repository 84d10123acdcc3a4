"""Reductions over ``axis`` (None, int or tuple) with ``keepdims``: sum, mean, max, min, var.

A 0-d tensor can be reduced over axis 0 (or -1), which gives its value, as in PyTorch. Empty tensors reduce like
NumPy's: the sum of no values is 0, the mean NaN, and max/min refuse an empty reduced axis (there is no maximum of
no values; PyTorch refuses too) but reduce the non-empty axes of an empty tensor to an empty result.
"""

from __future__ import annotations

import numpy as np

from chainrule.function import Function
from chainrule.ops import xp
from chainrule.ops._util import expand_reduced, normalize_axes, reduces_nothing


def _count(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> int:
    return int(np.prod(shape)) if axes is None else int(np.prod([shape[a] for a in axes]))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = normalize_axes("sum", axis, x.ndim)
        ctx.keepdims, ctx.shape = keepdims, x.shape
        return x.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return xp.broadcast_to(expand_reduced(grad, ctx.axes, ctx.keepdims), ctx.shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = normalize_axes("mean", axis, x.ndim)
        ctx.keepdims, ctx.shape = keepdims, x.shape
        return x.mean(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        g = expand_reduced(grad, ctx.axes, ctx.keepdims) / grad.dtype.type(_count(ctx.shape, ctx.axes))
        return xp.broadcast_to(g, ctx.shape)


class _Extremum(Function):
    """Max or min: the gradient goes to the winning elements, split evenly between ties. The forward saves which
    elements won (a boolean mask: the routing is a constant of the second derivative)."""

    reduce = staticmethod(np.max)

    @classmethod
    def _forward(cls, ctx, x, axis, keepdims):
        op = cls.__name__.lower()
        ctx.axes = normalize_axes(op, axis, x.ndim)
        if x.size == 0 and reduces_nothing(x.shape, ctx.axes):
            which = "all axes" if ctx.axes is None else f"axis {axis}"
            raise ValueError(f"{op}: cannot reduce {which} of a tensor of shape {x.shape}: the reduced axis is empty, "
                             f"and the {op}imum of no values is undefined; reduce over a non-empty axis")
        ctx.keepdims = keepdims
        out = cls.reduce(x, axis=ctx.axes, keepdims=True)
        if True in ctx.needs_input_grad:
            ctx.save_for_backward(x == out)
        return out if keepdims else np.squeeze(out, axis=ctx.axes)

    @staticmethod
    def backward(ctx, grad):
        (winners,) = ctx.saved_tensors
        share = winners / winners.sum(axis=ctx.axes, keepdims=True, dtype=grad.dtype)
        return expand_reduced(grad, ctx.axes, ctx.keepdims) * share.astype(grad.dtype, copy=False)


class Max(_Extremum):
    reduce = staticmethod(np.max)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return Max._forward(ctx, x, axis, keepdims)


class Min(_Extremum):
    reduce = staticmethod(np.min)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return Min._forward(ctx, x, axis, keepdims)


class Var(Function):
    """Variance with ``ddof`` (0: population, the default, as NumPy's; 1: sample, PyTorch's default, which PyTorch
    calls ``correction``); d var / dx = 2 (x - mean) / (n - ddof).

    Each reduction needs more than ``ddof`` values: with n - ddof <= 0 the variance is undefined (0 / 0, or a
    division by a negative count), and chainrule raises ValueError where PyTorch and NumPy return nan or inf with a
    warning.
    """

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, ddof=0):
        ctx.axes = normalize_axes("var", axis, x.ndim)
        n = _count(x.shape, ctx.axes)
        if n - ddof <= 0:
            raise ValueError(f"var: each reduction needs more than ddof={ddof} values (n - ddof > 0), got n={n}; "
                             "the variance of so few values is undefined")
        ctx.keepdims, ctx.scale = keepdims, 2.0 / (n - ddof)
        ctx.save_for_backward(x)
        return x.var(axis=ctx.axes, keepdims=keepdims, ddof=ddof)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        centered = x - x.mean(axis=ctx.axes, keepdims=True)  # recomputed: on the graph, it depends on x
        g = expand_reduced(grad, ctx.axes, ctx.keepdims)
        return g * centered * grad.dtype.type(ctx.scale)
