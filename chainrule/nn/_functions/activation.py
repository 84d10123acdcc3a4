"""Activation functions beyond the core's sigmoid/tanh/relu: leaky ReLU, ELU, both GELUs, and maxout.

All keep the input dtype: constants are Python floats, which NumPy treats as "weak" and never upcasts float32 with.
Their backward formulas serve ``create_graph`` too (``chainrule.ops.xp``); the GELUs recompute their saved
intermediates on the graph (``saved_on_graph``).
"""

from __future__ import annotations

import math

import numpy as np

from chainrule.backend import fused, gemm
from chainrule.function import Function
from chainrule.ops import xp

_ERF = None


def _erf(x: np.ndarray) -> np.ndarray:
    """erf elementwise in x's dtype: scipy's ufunc, imported on first use (it costs ~0.2 s at import); without
    scipy an exact but slow elementwise ``math.erf``."""
    global _ERF
    if _ERF is None:
        try:
            from scipy.special import erf as _ERF
        except ImportError:  # pragma: no cover - scipy is installed wherever the tests run
            vec = np.vectorize(math.erf, otypes=[np.float64])

            def _ERF(a: np.ndarray) -> np.ndarray:
                return vec(a).astype(a.dtype, copy=False)
    return _ERF(x)


class LeakyRelu(Function):
    """max(slope x, x) for 0 <= slope <= 1 (the lecture's max(0.1x, x) is slope 0.1); gradient 1 or slope."""

    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.slope = negative_slope
        return np.where(positive, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return xp.where(positive, grad, grad * ctx.slope)


class Elu(Function):
    """x for x > 0, alpha (e^x - 1) otherwise; the gradient there is out + alpha (expm1 of min(x, 0): no overflow)."""

    @staticmethod
    def forward(ctx, x, alpha=1.0):
        positive = x > 0
        out = np.where(positive, x, alpha * np.expm1(np.minimum(x, 0)))
        ctx.save_for_backward(positive, out)
        ctx.alpha = alpha
        return out

    @staticmethod
    def backward(ctx, grad):
        positive, out = ctx.saved_tensors
        return xp.where(positive, grad, grad * (out + ctx.alpha))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


class GeluTanh(Function):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh approximation of x Phi(x).

    d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2). The cubic is computed on x clipped to
    [-10, 10], where tanh is already exactly +-1 in float32 and float64, so huge inputs give x or 0, never inf/NaN.
    """

    @staticmethod
    def forward(ctx, x):
        xc = np.clip(x, -10, 10)
        t = np.tanh(_SQRT_2_OVER_PI * (xc + _GELU_CUBIC * xc * xc * xc))
        ctx.save_for_backward(x, xc, t)
        return 0.5 * x * (1 + t)

    @staticmethod
    def saved_on_graph(ctx, x, xc, t):
        x = ctx.parents[0]
        xc = x.clip(-10.0, 10.0)
        return x, xc, (_SQRT_2_OVER_PI * (xc + _GELU_CUBIC * xc * xc * xc)).tanh()

    @staticmethod
    def backward(ctx, grad):
        x, xc, t = ctx.saved_tensors
        local = 0.5 * (1 + t) + (0.5 * _SQRT_2_OVER_PI) * x * (1 - t * t) * (1 + 3 * _GELU_CUBIC * xc * xc)
        return grad * local


_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + _erf(x * _INV_SQRT_2))


class NormalCdf(Function):
    """Phi(x) = 0.5 (1 + erf(x / sqrt 2)), the standard normal CDF; d/dx = phi(x) = e^(-x^2/2) / sqrt(2 pi)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _normal_cdf(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with np.errstate(over="ignore", under="ignore"):
            return grad * (_INV_SQRT_2PI * xp.exp(-0.5 * x * x))


class GeluErf(Function):
    """The exact GELU: x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); d/dx = Phi(x) + x phi(x)."""

    @staticmethod
    def forward(ctx, x):
        y = fused.gelu_erf(x)  # one oneDNN pass where it runs (float32 on the onednn conv backend), else NumPy
        if y is not None:
            ctx.save_for_backward(x, None)  # its backward recomputes Phi in the same pass
            return y
        cdf = _normal_cdf(x)
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def saved_on_graph(ctx, x, cdf):
        x = ctx.parents[0]
        return x, NormalCdf.apply(x)

    @staticmethod
    def backward(ctx, grad):
        x, cdf = ctx.saved_tensors
        if cdf is None:  # the forward ran on oneDNN
            gx = fused.gelu_erf_backward(x, grad)
            if gx is not None:
                return gx
            cdf = _normal_cdf(x)
        with np.errstate(over="ignore", under="ignore"):
            pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
            return grad * (cdf + x * pdf)


class Maxout(Function):
    """Maxout over k affine maps computed by ONE matrix multiply.

    x (N, D), weight (D, k*M), bias (k*M,) or None -> y (N, M) with y[:, j] = max_p (x W_p + b_p)[:, j], where piece
    p is the column block W_p = weight[:, p*M:(p+1)*M]. Backward routes each gradient to the winning piece (the
    first one on ties) and then runs the linear backward on the routed (N, k*M) gradient.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None, pieces=2):
        z = gemm(x, weight)
        if bias is not None:
            z += bias
        n, m = z.shape[0], weight.shape[1] // pieces
        z3 = z.reshape(n, pieces, m)
        out = z3[:, 0].copy()
        winner = np.zeros((n, m), dtype=np.int8 if pieces < 128 else np.intp)
        for p in range(1, pieces):  # a loop over the k pieces, vectorised over samples and units
            better = z3[:, p] > out
            np.copyto(out, z3[:, p], where=better)
            np.copyto(winner, p, where=better)
        ctx.save_for_backward(x, weight, winner)
        ctx.pieces = pieces
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, winner = ctx.saved_tensors
        n, m = grad.shape
        pieces = ctx.pieces
        routed = winner[:, None, :] == np.arange(pieces)[None, :, None]  # (N, k, M): the winning piece, a constant
        dz = (grad.reshape(n, 1, m) * routed).reshape(n, pieces * m)
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = xp.gemm(dz, weight, trans_b=True) if need_x else None
        gw = xp.gemm(x, dz, trans_a=True) if need_w else None
        gb = dz.sum(axis=0) if need_b else None
        return gx, gw, gb
