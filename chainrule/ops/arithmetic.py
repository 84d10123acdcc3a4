"""Elementwise arithmetic with NumPy broadcasting: add, sub, mul, div, neg, pow.

Operands of different dtypes are first converted to the result dtype by PyTorch's promotion rule
(``chainrule.ops._util.promote``): a float32 tensor stays float32 beside a number or a 0-d tensor of any dtype, and
an integer tensor takes the floating dtype of the other operand. The engine gives each gradient its input's dtype.
(The ops test for the common case of two arrays of one dtype inline: it is the hot path of every training step.)

The ops save their arguments as they were given (not the promoted copies): the backward formulas, which serve both
plain and ``create_graph`` backward passes (``chainrule.ops.xp``), then find the input Tensors behind them, and the
engine casts the gradients to the inputs' dtypes, as PyTorch's does.
"""

from __future__ import annotations

import numpy as np

from chainrule.function import Function
from chainrule.ops import xp
from chainrule.ops._util import promote, shape_of, unbroadcast

_FLOAT = np.dtype(np.float32)
_ndarray = np.ndarray


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        if type(a) is not _ndarray or type(b) is not _ndarray or a.dtype is not b.dtype:
            a, b = promote(a, b)
        ctx.a_shape, ctx.b_shape = shape_of(a), shape_of(b)
        return a + b

    @staticmethod
    def backward(ctx, grad):
        need_a, need_b = ctx.needs_input_grad
        shape = grad.shape  # (unbroadcast is called only where broadcasting happened: this is a hot path)
        ga = (grad if ctx.a_shape == shape else unbroadcast(grad, ctx.a_shape)) if need_a else None
        gb = (grad if ctx.b_shape == shape else unbroadcast(grad, ctx.b_shape)) if need_b else None
        return ga, gb


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        if type(a) is not _ndarray or type(b) is not _ndarray or a.dtype is not b.dtype:
            a, b = promote(a, b)
        ctx.a_shape, ctx.b_shape = shape_of(a), shape_of(b)
        return a - b

    @staticmethod
    def backward(ctx, grad):
        ga = unbroadcast(grad, ctx.a_shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-grad, ctx.b_shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        if type(a) is not _ndarray or type(b) is not _ndarray or a.dtype is not b.dtype:
            a, b = promote(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        ga = gb = None
        if need_a:  # a needs a gradient, so it is a Tensor's array (not a number)
            ga = grad * b
            if ga.shape != a.shape:
                ga = unbroadcast(ga, a.shape)
        if need_b:
            gb = grad * a
            if gb.shape != b.shape:
                gb = unbroadcast(gb, b.shape)
        return ga, gb


class Div(Function):
    """a / b; integer operands divide as float32 (true division, PyTorch's default floating dtype)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        a, b = promote(a, b)
        if (a if type(a) is np.ndarray else b).dtype.kind in "biu":  # promote made at least one of them an array
            a, b = np.asarray(a, dtype=_FLOAT), np.asarray(b, dtype=_FLOAT)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = unbroadcast(grad / b, shape_of(a)) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-grad * a / (b * b), shape_of(b)) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """a ** b for a tensor or number exponent, with PyTorch's gradients at the edges:

    d/da = b a^(b-1), and 0 where b == 0 (so x ** 0 has gradient 0 at x = 0, not 0 * inf);
    d/db = a^b log a, and 0 where a == 0 and b >= 0 (at a = 0 and b < 0 it is inf * -inf = -inf).
    """

    @staticmethod
    def forward(ctx, a, b):
        a2, b2 = promote(a, b)
        with np.errstate(divide="ignore"):  # 0 ** negative is inf, as in PyTorch (no warning)
            out = a2**b2
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        ga = gb = None
        av, bv = xp.value(a), xp.value(b)  # the masks at the edges are constants
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** negative, log(0), log(negative): as in torch
            if ctx.needs_input_grad[0]:
                local = b * a ** (b - 1)
                if np.any(bv == 0):
                    local = xp.where(bv == 0, 0, local)
                ga = unbroadcast(grad * local, shape_of(a))
            if ctx.needs_input_grad[1]:
                local = xp.where((av == 0) & (bv >= 0), 0, out * xp.log(a))
                gb = unbroadcast(grad * local, shape_of(b))
        return ga, gb
