"""softmax, log_softmax and logsumexp along an axis, stable for any finite input (shifted by the max)."""

from __future__ import annotations

import numpy as np

from chainrule.function import Function
from chainrule.ops._util import expand_reduced, normalize_axes


def stable_logsumexp(x: np.ndarray, axes, keepdims: bool = True) -> np.ndarray:
    """log(sum(exp(x))) over ``axes`` as m + log(sum(exp(x - m))): no overflow, and the sum is at least 1."""
    m = np.max(x, axis=axes, keepdims=True)
    with np.errstate(under="ignore"):
        out = m + np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axes)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        ctx.axis = axis
        with np.errstate(under="ignore"):
            e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # dL/dx_i = p_i (g_i - sum_j g_j p_j): the Jacobian diag(p) - p p^T applied without forming it.
        with np.errstate(under="ignore"):
            return out * (grad - np.sum(grad * out, axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        ctx.axis = axis
        out = x - stable_logsumexp(x, axis)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        with np.errstate(under="ignore"):
            return grad - np.exp(out) * np.sum(grad, axis=ctx.axis, keepdims=True)


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = normalize_axes("logsumexp", axis, x.ndim)
        ctx.keepdims = keepdims
        out = stable_logsumexp(x, ctx.axes)
        ctx.save_for_backward(x, out)
        return out if keepdims else np.squeeze(out, axis=ctx.axes)

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        with np.errstate(under="ignore"):
            softmax = np.exp(x - out)
        g = expand_reduced(grad, ctx.axes, ctx.keepdims)
        return g * softmax
