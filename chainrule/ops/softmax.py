"""softmax, log_softmax and logsumexp along an axis, stable for any finite input (shifted by the max).

At the edges they give PyTorch's values: logsumexp of a row of -inf is -inf, with a +inf entry +inf, and over an
empty axis -inf (the log of an empty sum); softmax and log_softmax of an empty axis are empty.
"""

from __future__ import annotations

import numpy as np

from chainrule.function import Function
from chainrule.ops import xp
from chainrule.ops._util import expand_reduced, normalize_axes, reduces_nothing


def _shift_and_log_sum(x: np.ndarray, axes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The max ``m``, ``x - m`` and ``log(sum(exp(x - m)))`` over ``axes`` (``m`` and the log-sum keep the reduced
    axes as size 1). Nothing overflows, the sum is at least 1, and ``x - m`` is exact near the max, so results built
    from ``x - m`` do not cancel against a large ``m + log(...)`` (in float32 at |x| = 1e4 that loses 3 digits)."""
    m = np.max(x, axis=axes, keepdims=True)
    shifted = x - m
    with np.errstate(under="ignore"):  # exp of very negative numbers rounds to 0, which is right
        log_sum = np.log(np.sum(np.exp(shifted), axis=axes, keepdims=True))
    return m, shifted, log_sum


def stable_logsumexp(x: np.ndarray, axes, keepdims: bool = True) -> np.ndarray:
    """log(sum(exp(x))) over ``axes`` as m + log(sum(exp(x - m))): no overflow, and the sum is at least 1."""
    m, _, log_sum = _shift_and_log_sum(x, axes)
    out = m + log_sum
    return out if keepdims else np.squeeze(out, axis=axes)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        ctx.axis = axis
        if x.size == 0:  # nothing to normalise (np.max refuses an empty axis)
            ctx.save_for_backward(x)
            return np.array(x, copy=True)
        with np.errstate(under="ignore"):  # tiny probabilities round to 0, which is right
            e = np.exp(x - np.max(x, axis=axis, keepdims=True))
            out = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # dL/dx_i = p_i (g_i - sum_j g_j p_j): the Jacobian diag(p) - p p^T applied without forming it.
        with np.errstate(under="ignore"):
            return out * (grad - (grad * out).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        ctx.axis = axis
        if x.size == 0:
            ctx.save_for_backward(x)
            return np.array(x, copy=True)
        _, shifted, log_sum = _shift_and_log_sum(x, axis)
        out = shifted - log_sum
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        with np.errstate(under="ignore"):
            return grad - xp.exp(out) * grad.sum(axis=ctx.axis, keepdims=True)


def _finite_max(x: np.ndarray, axes) -> np.ndarray:
    """The max over ``axes`` (kept as size 1), with 0 where it is infinite (see LogSumExp)."""
    m = np.max(x, axis=axes, keepdims=True)
    return np.where(np.isinf(m), 0, m).astype(x.dtype, copy=False)


class LogSumExp(Function):
    """log(sum(exp(x))) over ``axis``: the max m is taken out first, except where m is infinite (then 0 is, as in
    PyTorch): a row of -inf gives log(0) = -inf instead of -inf - -inf = nan, and a +inf entry gives +inf.

    The backward is g times the softmax, exp(x - m - log_sum) from the saved ``x - m`` and ``log_sum``, which keeps
    the digits a large m would cost. On the graph (create_graph) both are recomputed from x with ops, m a constant:
    the result does not depend on it."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = normalize_axes("logsumexp", axis, x.ndim)
        ctx.keepdims = keepdims
        if x.size == 0 and reduces_nothing(x.shape, ctx.axes):
            log_sum = np.full(np.sum(x, axis=ctx.axes, keepdims=True).shape, -np.inf, dtype=x.dtype)
            ctx.save_for_backward(x, log_sum)
            return log_sum if keepdims else np.squeeze(log_sum, axis=ctx.axes)
        m = _finite_max(x, ctx.axes)
        shifted = x - m
        with np.errstate(under="ignore", divide="ignore"):  # exp underflows to 0 and log(0) = -inf: both right
            log_sum = np.log(np.sum(np.exp(shifted), axis=ctx.axes, keepdims=True))
        ctx.save_for_backward(shifted, log_sum)
        out = m + log_sum
        return out if keepdims else np.squeeze(out, axis=ctx.axes)

    @staticmethod
    def saved_on_graph(ctx, shifted, log_sum):
        x = ctx.parents[0]
        if x.data.size == 0 and reduces_nothing(x.shape, ctx.axes):
            return x, log_sum  # nothing to differentiate: the gradient is empty
        shifted = x - _finite_max(x.data, ctx.axes)
        return shifted, LogSumExp.apply(shifted, axis=ctx.axes, keepdims=True)

    @staticmethod
    def backward(ctx, grad):
        shifted, log_sum = ctx.saved_tensors
        g = expand_reduced(grad, ctx.axes, ctx.keepdims)
        with np.errstate(under="ignore", invalid="ignore"):  # nan where the result is infinite, as in PyTorch
            return g * xp.exp(shifted - log_sum)  # g times the softmax
