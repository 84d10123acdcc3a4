"""Convolution ops: three linear maps and their transposes, each a small ``Function`` on ``chainrule.backend.conv``.

Shapes: x (N, C, H, W), w (O, C/G, kh, kw) with G = groups, gy (N, O, Ho, Wo); ``geom`` is a ``ConvGeometry``.

    Conv2d           y  = conv(x, w) + b                  backend.conv2d_forward
    ConvTranspose2d  x' = conv^T(gy, w) + b               backend.conv2d_backward_data   (conv2d's input gradient)
    ConvWeightGrad   gw = the weight gradient of conv     backend.conv2d_backward_weight (conv2d's weight gradient)
    Unfold           im2col: conv with one-hot kernels, x (N, C, H, W) -> (N, C*kh*kw, L)
    Fold             col2im: its transpose, (N, C*kh*kw, L) -> (N, C, H, W)

The three conv maps are bilinear, and each one's gradients are the other two (the lecture's "backward of a conv is
a conv"): <gy, conv(x, w)> = <conv^T(gy, w), x> = <gw(x, gy), w>. So every backward below is written with
``conv``, ``conv_transpose`` and ``conv_weight``, which run the backend on arrays and apply these ops on Tensors
(``create_graph``): every derivative of every order is again one of the three, and the graph stays small. Unfold and
Fold, linear in one input, are each other's gradient.

The ops take no backend branch: which implementation runs (NumPy im2col + GEMM, or oneDNN) is chosen once in
``chainrule.backend.conv``. Outputs keep the layout the backend returns (channels-last for the NumPy path).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import conv as backend
from chainrule.backend.conv_geometry import ConvGeometry
from chainrule.function import Function
from chainrule.ops.xp import _arrays

Pair = tuple[int, int]


def conv(x: Any, w: Any, geom: ConvGeometry, out_hw: Pair | None = None) -> Any:
    """conv(x, w) without bias, cropped to ``out_hw`` output positions when given: the backend on arrays, the
    ``Conv2d`` op on Tensors."""
    y = backend.conv2d_forward(x, w, None, geom) if _arrays(x, w) else Conv2d.apply(x, w, None, geom=geom)
    if out_hw is not None and tuple(y.shape[2:]) != tuple(out_hw):  # conv_transpose2d's output_padding >= stride
        y = y[:, :, :out_hw[0], :out_hw[1]]
    return y


def conv_transpose(gy: Any, w: Any, in_hw: Pair, geom: ConvGeometry) -> Any:
    """conv^T(gy, w) of spatial size ``in_hw``: the backend on arrays, the ``ConvTranspose2d`` op on Tensors."""
    if _arrays(gy, w):
        return backend.conv2d_backward_data(gy, w, in_hw, geom)
    return ConvTranspose2d.apply(gy, w, None, in_hw=tuple(in_hw), geom=geom)


def conv_weight(x: Any, gy: Any, kernel_hw: Pair, geom: ConvGeometry) -> Any:
    """The weight gradient of conv(x, .) for gy: the backend on arrays, the ``ConvWeightGrad`` op on Tensors."""
    if _arrays(x, gy):
        return backend.conv2d_backward_weight(x, gy, kernel_hw, geom, False)[0]
    return ConvWeightGrad.apply(x, gy, kernel_hw=tuple(kernel_hw), geom=geom)


def _weight_and_bias(x: Any, gy: Any, kernel_hw: Pair, geom: ConvGeometry, need_w: bool, need_b: bool) -> tuple:
    """(gw or None, gb or None); on arrays one backend call computes both."""
    if need_w and _arrays(x, gy):
        return backend.conv2d_backward_weight(x, gy, kernel_hw, geom, need_b)
    gw = conv_weight(x, gy, kernel_hw, geom) if need_w else None
    return gw, (gy.sum(axis=(0, 2, 3)) if need_b else None)


class Conv2d(Function):
    """x (N, C, H, W), w (O, C/G, kh, kw), b (O,) or None -> y (N, O, Ho, Wo)."""

    @staticmethod
    def forward(ctx, x, w, b=None, *, geom):
        ctx.geom = geom
        ctx.save_for_backward(x, w)
        return backend.conv2d_forward(x, w, b, geom)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[:2]
        need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        gx = conv_transpose(grad, w, x.shape[2:], ctx.geom) if need_x else None
        gw, gb = _weight_and_bias(x, grad, w.shape[2:], ctx.geom, need_w, need_b)
        return gx, gw, gb


class ConvTranspose2d(Function):
    """gy (N, O, Ho, Wo), w (O, C/G, kh, kw), b (C,) or None -> (N, C, H, W) with (H, W) = ``in_hw``: conv2d's
    input gradient as a map of its own (PyTorch's ``conv_transpose2d``, whose weight layout is exactly w's)."""

    @staticmethod
    def forward(ctx, gy, w, b=None, *, in_hw, geom):
        ctx.geom = geom
        ctx.save_for_backward(gy, w)
        out = backend.conv2d_backward_data(gy, w, in_hw, geom)
        if b is not None:
            out += b[:, None, None]  # our own buffer: in place keeps its layout
        return out

    @staticmethod
    def backward(ctx, grad):
        gy, w = ctx.saved_tensors
        need_gy, need_w = ctx.needs_input_grad[:2]
        need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        ggy = conv(grad, w, ctx.geom, gy.shape[2:]) if need_gy else None
        gw = conv_weight(grad, gy, w.shape[2:], ctx.geom) if need_w else None
        gb = grad.sum(axis=(0, 2, 3)) if need_b else None
        return ggy, gw, gb


class ConvWeightGrad(Function):
    """x (N, C, H, W), gy (N, O, Ho, Wo) -> gw (O, C/G, kh, kw): conv2d's weight gradient as a map of its own
    (it appears on the graph of a second derivative)."""

    @staticmethod
    def forward(ctx, x, gy, *, kernel_hw, geom):
        ctx.geom = geom
        ctx.save_for_backward(x, gy)
        return backend.conv2d_backward_weight(x, gy, kernel_hw, geom, False)[0]

    @staticmethod
    def backward(ctx, grad):
        x, gy = ctx.saved_tensors
        need_x, need_gy = ctx.needs_input_grad
        gx = conv_transpose(gy, grad, x.shape[2:], ctx.geom) if need_x else None
        ggy = conv(x, grad, ctx.geom, gy.shape[2:]) if need_gy else None
        return gx, ggy


_ONE_HOT: dict[tuple, np.ndarray] = {}


def one_hot_kernels(channels: int, kernel_hw: Pair, dtype: Any) -> np.ndarray:
    """The weight (C*kh*kw, 1, kh, kw) of im2col as a depthwise convolution: output channel c*kh*kw + p*kw + q
    copies tap (p, q) of input channel c (PyTorch's unfold order). Cached, read-only."""
    key = (channels, tuple(kernel_hw), np.dtype(dtype).str)
    w = _ONE_HOT.get(key)
    if w is None:
        kh, kw = kernel_hw
        eye = np.eye(kh * kw, dtype=dtype).reshape(kh * kw, 1, kh, kw)
        w = np.ascontiguousarray(np.broadcast_to(eye, (channels, kh * kw, 1, kh, kw))).reshape(-1, 1, kh, kw)
        w.flags.writeable = False
        _ONE_HOT[key] = w
    return w


class Unfold(Function):
    """im2col: x (N, C, H, W) -> (N, C*kh*kw, L), L = Ho*Wo, as PyTorch's ``unfold``; ``geom.groups`` is C."""

    @staticmethod
    def forward(ctx, x, *, kernel_hw, geom):
        ctx.kernel_hw, ctx.geom, ctx.in_hw = kernel_hw, geom, x.shape[2:]
        return _unfold(x, kernel_hw, geom)

    @staticmethod
    def backward(ctx, grad):
        if _arrays(grad):
            return _fold(grad, ctx.in_hw, ctx.kernel_hw, ctx.geom)
        return Fold.apply(grad, in_hw=ctx.in_hw, kernel_hw=ctx.kernel_hw, geom=ctx.geom)


class Fold(Function):
    """col2im: cols (N, C*kh*kw, L) -> (N, C, H, W) with (H, W) = ``in_hw``, overlaps summed (PyTorch's ``fold``)."""

    @staticmethod
    def forward(ctx, cols, *, in_hw, kernel_hw, geom):
        ctx.kernel_hw, ctx.geom, ctx.in_hw = kernel_hw, geom, in_hw
        return _fold(cols, in_hw, kernel_hw, geom)

    @staticmethod
    def backward(ctx, grad):
        if _arrays(grad):
            return _unfold(grad, ctx.kernel_hw, ctx.geom)
        return Unfold.apply(grad, kernel_hw=ctx.kernel_hw, geom=ctx.geom)


def _unfold(x: np.ndarray, kernel_hw: Pair, geom: ConvGeometry) -> np.ndarray:
    y = backend.conv2d_forward(x, one_hot_kernels(x.shape[1], kernel_hw, x.dtype), None, geom)
    return y.reshape(y.shape[0], y.shape[1], y.shape[2] * y.shape[3])  # (N, C*kh*kw, Ho, Wo) -> (.., L): a view


def _fold(cols: np.ndarray, in_hw: Pair, kernel_hw: Pair, geom: ConvGeometry) -> np.ndarray:
    n, ckk, _ = cols.shape
    w = one_hot_kernels(ckk // (kernel_hw[0] * kernel_hw[1]), kernel_hw, cols.dtype)
    out_hw = geom.output_size(in_hw, kernel_hw)
    return backend.conv2d_backward_data(cols.reshape(n, ckk, *out_hw), w, in_hw, geom)
