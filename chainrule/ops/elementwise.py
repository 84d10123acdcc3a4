"""Elementwise functions: exp, log, sqrt, abs, tanh, sigmoid, relu, maximum/minimum, clip, where, astype.

The functions with floating results (exp, log, sqrt, tanh, sigmoid) compute integer inputs in float32, and the
ops with two or three operands (maximum, minimum, clip, where) promote them as the arithmetic does
(``chainrule.ops._util.promote``), as PyTorch does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function
from chainrule.ops import xp
from chainrule.ops._util import cast, promote, result_dtype, unbroadcast

_FLOAT = np.dtype(np.float32)
_ndarray = np.ndarray


def _floating(x: Any) -> np.ndarray:
    """``x`` itself if it is a floating-point array, an integer or boolean one in float32 (PyTorch's default)."""
    if type(x) is np.ndarray and x.dtype.kind == "f":
        return x
    x = np.asarray(x)
    return x if x.dtype.kind in "fc" else x.astype(_FLOAT)


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        if type(x) is not _ndarray or x.dtype.kind != "f":
            x = _floating(x)
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        if type(x) is not _ndarray or x.dtype.kind != "f":
            x = _floating(x)
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        if type(x) is not _ndarray or x.dtype.kind != "f":
            x = _floating(x)
        out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Abs(Function):
    """|x|; the gradient at 0 is 0 (the subgradient NumPy's sign gives)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * np.sign(xp.value(x))


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        if type(x) is not _ndarray or x.dtype.kind != "f":
            x = _floating(x)
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) computed from e^-|x| <= 1, so it never overflows (underflow to 0 is the right answer)."""
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        if type(x) is not _ndarray or x.dtype.kind != "f":
            x = _floating(x)
        out = stable_sigmoid(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        with np.errstate(under="ignore"):  # a saturated sigmoid has a slope that rounds to 0, which is right
            return grad * out * (1 - out)


class Relu(Function):
    """max(0, x): the gradient flows where the input was positive (0 at the kink)."""

    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out > 0)


def _share(loses: np.ndarray, ties: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The share of the gradient an input of the max (min) gate gets: 0 where it loses, 0.5 on ties, else 1.

    Where a comparison is false both ways (a NaN), both inputs get the whole gradient, as in PyTorch."""
    share = np.asarray(~loses, dtype=dtype)
    return np.where(ties, share.dtype.type(0.5), share)


class _Gate(Function):
    """Maximum or minimum of two operands. The forward saves who won (boolean masks: the routing is a constant of
    the second derivative); the backward routes the gradient, split evenly on ties."""

    @staticmethod
    def _forward(ctx, a, b, pick):
        a, b = promote(a, b)
        ctx.a_shape, ctx.b_shape = np.shape(a), np.shape(b)
        if True in ctx.needs_input_grad:
            ctx.save_for_backward(a < b, a > b, a == b)
        return pick(a, b)

    @staticmethod
    def _backward(ctx, grad, a_loses, b_loses):
        (ties,) = ctx.saved_tensors[2:]
        ga = unbroadcast(grad * _share(a_loses, ties, grad.dtype), ctx.a_shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * _share(b_loses, ties, grad.dtype), ctx.b_shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Maximum(_Gate):
    """The max gate routes the gradient to the larger input (split evenly on ties, as PyTorch does)."""

    @staticmethod
    def forward(ctx, a, b):
        return _Gate._forward(ctx, a, b, np.maximum)

    @staticmethod
    def backward(ctx, grad):
        less, greater, _ = ctx.saved_tensors
        return _Gate._backward(ctx, grad, less, greater)


class Minimum(_Gate):
    """The min gate routes the gradient to the smaller input (split evenly on ties)."""

    @staticmethod
    def forward(ctx, a, b):
        return _Gate._forward(ctx, a, b, np.minimum)

    @staticmethod
    def backward(ctx, grad):
        less, greater, _ = ctx.saved_tensors
        return _Gate._backward(ctx, grad, greater, less)


class Clip(Function):
    """x limited to [lo, hi]; either bound may be None, a number or a tensor (broadcast against x).

    The gradient passes to x where lo <= x <= hi, and to a tensor bound where it is active (x < lo for lo, x > hi
    for hi), as PyTorch's clamp. ``lo > hi`` anywhere raises: the result would not depend on x at all there.
    """

    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        if lo is None and hi is None:
            raise ValueError("clip: pass min, max or both")
        dtype = result_dtype(x, lo, hi)
        x = cast(x, dtype)
        lo = None if lo is None else cast(lo, dtype)
        hi = None if hi is None else cast(hi, dtype)
        if lo is not None and hi is not None and np.any(lo > hi):
            raise ValueError(f"clip: expected min <= max, got min={lo}, max={hi}")
        need_x, need_lo, need_hi = ctx.needs_input_grad
        if need_x or need_lo or need_hi:  # who gets the gradient: boolean masks, constants of the second derivative
            inside = None
            if need_x:
                inside = np.ones(x.shape, dtype=bool)
                if lo is not None:
                    inside &= x >= lo
                if hi is not None:
                    inside &= x <= hi
            ctx.save_for_backward(inside, x < lo if need_lo else None, x > hi if need_hi else None)
            ctx.lo_shape, ctx.hi_shape = np.shape(lo), np.shape(hi)
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        inside, below, above = ctx.saved_tensors
        gx = grad * inside if inside is not None else None
        glo = unbroadcast(grad * below, ctx.lo_shape) if below is not None else None
        ghi = unbroadcast(grad * above, ctx.hi_shape) if above is not None else None
        return gx, glo, ghi


class Where(Function):
    """``a`` where ``condition`` holds, else ``b`` (condition gets no gradient)."""

    @staticmethod
    def forward(ctx, condition, a, b):
        a, b = promote(a, b)
        condition = np.asarray(condition, dtype=bool)
        ctx.save_for_backward(condition)
        ctx.a_shape, ctx.b_shape = np.shape(a), np.shape(b)
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        zero = np.zeros((), dtype=grad.dtype)
        ga = unbroadcast(xp.where(condition, grad, zero), ctx.a_shape) if ctx.needs_input_grad[1] else None
        gb = unbroadcast(xp.where(condition, zero, grad), ctx.b_shape) if ctx.needs_input_grad[2] else None
        return None, ga, gb


class AsType(Function):
    """A dtype conversion (e.g. float32 <-> float64); the gradient is converted back."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.in_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.in_dtype), None
