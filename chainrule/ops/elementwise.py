"""Elementwise functions: exp, log, sqrt, abs, tanh, sigmoid, relu, maximum/minimum, clip, where, astype."""

from __future__ import annotations

import numpy as np

from chainrule.function import Function
from chainrule.ops._util import unbroadcast


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
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
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
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
        return grad * np.sign(x)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
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


def _share(wins: np.ndarray, ties: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """1 where the first input wins, 0.5 on ties, 0 elsewhere, in the gradient's dtype."""
    share = np.asarray(wins, dtype=dtype)
    return np.where(ties, share.dtype.type(0.5), share)


class Maximum(Function):
    """The max gate routes the gradient to the larger input (split evenly on ties, as PyTorch does)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        share_a = _share(a > b, a == b, grad.dtype)
        ga = unbroadcast(grad * share_a, np.shape(a)) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * (1 - share_a), np.shape(b)) if ctx.needs_input_grad[1] else None
        return ga, gb


class Minimum(Function):
    """The min gate routes the gradient to the smaller input (split evenly on ties)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        share_a = _share(a < b, a == b, grad.dtype)
        ga = unbroadcast(grad * share_a, np.shape(a)) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * (1 - share_a), np.shape(b)) if ctx.needs_input_grad[1] else None
        return ga, gb


class Clip(Function):
    """x limited to [lo, hi] (either may be None); the gradient passes where lo <= x <= hi."""

    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        if lo is not None and hi is not None and np.any(np.asarray(lo) > np.asarray(hi)):
            raise ValueError(f"clip: expected min <= max, got min={lo}, max={hi}")
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        inside = np.ones(x.shape, dtype=bool)
        if ctx.lo is not None:
            inside &= x >= ctx.lo
        if ctx.hi is not None:
            inside &= x <= ctx.hi
        return grad * inside, None, None


class Where(Function):
    """``a`` where ``condition`` holds, else ``b`` (condition gets no gradient)."""

    @staticmethod
    def forward(ctx, condition, a, b):
        condition = np.asarray(condition, dtype=bool)
        ctx.save_for_backward(condition)
        ctx.a_shape, ctx.b_shape = np.shape(a), np.shape(b)
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        zero = np.zeros((), dtype=grad.dtype)
        ga = unbroadcast(np.where(condition, grad, zero), ctx.a_shape) if ctx.needs_input_grad[1] else None
        gb = unbroadcast(np.where(condition, zero, grad), ctx.b_shape) if ctx.needs_input_grad[2] else None
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
