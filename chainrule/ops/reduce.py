"""Reductions over ``axis`` (None, int or tuple) with ``keepdims``: sum, mean, max, min, var."""

from __future__ import annotations

import numpy as np

from chainrule.function import Function
from chainrule.ops._util import expand_reduced, normalize_axes


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
        return np.broadcast_to(expand_reduced(grad, ctx.axes, ctx.keepdims), ctx.shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = normalize_axes("mean", axis, x.ndim)
        ctx.keepdims, ctx.shape = keepdims, x.shape
        return x.mean(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        g = expand_reduced(grad, ctx.axes, ctx.keepdims) / grad.dtype.type(_count(ctx.shape, ctx.axes))
        return np.broadcast_to(g, ctx.shape)


class _Extremum(Function):
    """Max or min: the gradient goes to the winning elements, split evenly between ties."""

    reduce = staticmethod(np.max)

    @classmethod
    def _forward(cls, ctx, x, axis, keepdims):
        ctx.axes = normalize_axes(cls.__name__.lower(), axis, x.ndim)
        if x.size == 0:
            raise ValueError(f"{cls.__name__.lower()}: cannot reduce an empty tensor of shape {x.shape}")
        ctx.keepdims = keepdims
        out = cls.reduce(x, axis=ctx.axes, keepdims=True)
        ctx.save_for_backward(x, out)
        return out if keepdims else np.squeeze(out, axis=ctx.axes)

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        winners = x == out
        share = winners / winners.sum(axis=ctx.axes, keepdims=True, dtype=x.dtype)
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
    """Variance with ``ddof`` (0: population, 1: sample); d var / dx = 2 (x - mean) / (n - ddof)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, ddof=0):
        ctx.axes = normalize_axes("var", axis, x.ndim)
        n = _count(x.shape, ctx.axes)
        if n - ddof <= 0:
            raise ValueError(f"var: need more than ddof={ddof} elements per reduction, got {n}")
        ctx.keepdims, ctx.scale = keepdims, 2.0 / (n - ddof)
        ctx.save_for_backward(x - x.mean(axis=ctx.axes, keepdims=True))
        return x.var(axis=ctx.axes, keepdims=keepdims, ddof=ddof)

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        g = expand_reduced(grad, ctx.axes, ctx.keepdims)
        return g * centered * grad.dtype.type(ctx.scale)
