"""The pointwise rows of the lecture's "PyTorch operators" slide: hardtanh, softplus, logsigmoid, glu, softshrink
and rrelu, each one node whose backward is its closed-form derivative, written with ``chainrule.ops.xp`` so that
it is differentiable again (masks are constants: every piecewise function here is smooth between its kinks).
"""

from __future__ import annotations

import numpy as np

from chainrule.function import Function
from chainrule.ops import concatenate as _concatenate
from chainrule.ops import xp
from chainrule.tensor import Tensor


class Hardtanh(Function):
    """clip(x, min_val, max_val); gradient 1 strictly inside (min_val, max_val), 0 outside (PyTorch's rule)."""

    @staticmethod
    def forward(ctx, x, min_val=-1.0, max_val=1.0):
        inside = (x > min_val) & (x < max_val)
        ctx.save_for_backward(inside)
        return np.clip(x, min_val, max_val)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside


def _softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + e^z) without overflow."""
    with np.errstate(under="ignore"):
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


class Softplus(Function):
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch's linear regime); gradient
    sigmoid(beta x), 1 in the linear regime."""

    @staticmethod
    def forward(ctx, x, beta=1.0, threshold=20.0):
        linear = x * beta > threshold
        ctx.save_for_backward(x, linear)
        ctx.beta = beta
        return np.where(linear, x, _softplus(x * beta) / beta)

    @staticmethod
    def backward(ctx, grad):
        x, linear = ctx.saved_tensors
        return xp.where(linear, grad, grad * xp.sigmoid(x * ctx.beta))


class LogSigmoid(Function):
    """log sigmoid(x) = -softplus(-x), never overflowing; gradient sigmoid(-x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return -_softplus(-x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * xp.sigmoid(-x)


class Glu(Function):
    """Gated linear unit: x split in halves a, b along ``dim`` -> a * sigmoid(b); the gradients are
    g sigmoid(b) for a and g a sigmoid(b) (1 - sigmoid(b)) for b, joined along ``dim``."""

    @staticmethod
    def forward(ctx, x, dim=-1):
        a, b = np.split(x, 2, axis=dim)
        ctx.save_for_backward(x)
        ctx.dim = dim
        return a * xp.sigmoid(b)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        h = x.shape[ctx.dim] // 2
        index = (slice(None),) * (ctx.dim % x.ndim)
        a, b = x[index + (slice(0, h),)], x[index + (slice(h, None),)]
        s = xp.sigmoid(b)
        ga, gb = grad * s, grad * a * s * (1 - s)
        if isinstance(ga, Tensor) or isinstance(gb, Tensor):
            return _concatenate([ga, gb], axis=ctx.dim)
        return np.concatenate([ga, gb], axis=ctx.dim)


class Softshrink(Function):
    """x - lambd above lambd, x + lambd below -lambd, 0 in between; gradient 1 outside [-lambd, lambd]."""

    @staticmethod
    def forward(ctx, x, lambd=0.5):
        outside = (x > lambd) | (x < -lambd)
        ctx.save_for_backward(outside)
        return np.where(outside, x - np.sign(x) * lambd, 0).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (outside,) = ctx.saved_tensors
        return grad * outside


class RRelu(Function):
    """Randomized leaky ReLU in training: x * noise, noise 1 where x >= 0 and a slope drawn uniformly from
    [lower, upper] per element elsewhere (``rrelu_noise``); the noise, an array argument, is a constant."""

    @staticmethod
    def forward(ctx, x, noise):
        ctx.save_for_backward(noise)
        return x * noise

    @staticmethod
    def backward(ctx, grad):
        (noise,) = ctx.saved_tensors
        return grad * noise, None


def rrelu_noise(x: np.ndarray, lower: float, upper: float, generator: np.random.Generator) -> np.ndarray:
    """The multiplier of each element: 1 where x >= 0, U(lower, upper) elsewhere (one draw per element)."""
    draw_dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float32
    slopes = generator.random(x.shape, dtype=draw_dtype) * (upper - lower) + lower
    return np.where(x >= 0, 1, slopes).astype(x.dtype, copy=False)
