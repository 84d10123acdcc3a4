"""Padding, resizing and adaptive pooling over the last two axes (..., H, W).

- ``SeparableMap``: out = A @ x @ B.T for constant matrices A (Ho, H) and B (Wo, W). Nearest and bilinear
  interpolation and adaptive average pooling are all such separable linear maps (each row of A holds the weights
  of one output row: a one-hot for nearest, two weights for bilinear, 1/len over a bin for adaptive averaging).
  Its backward is the same map with A.T and B.T, so it is differentiable to any order. The matrices are dense:
  O(H * Ho + W * Wo) memory and two matrix products per (N, C) plane, cheap at CIFAR sizes (the GEMMs run in
  BLAS; nothing loops over samples).
- ``Pad`` / ``PadFold``: constant, reflect, replicate and circular padding of the last axes, and its adjoint (the
  gradient of each padded position added back to the input position it copies). Each padded position along an
  axis is a copy of one input position (``source_index``); only the border positions move data, so both loop
  over the pad width, never over samples. Layouts are kept (a channels-last input gives a channels-last output).
- ``AdaptiveMaxPool``: the maximum over PyTorch's adaptive bins, gathered by index; its gradient is an
  ``index_add`` at the winners (differentiable again, ``chainrule.ops.xp``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function
from chainrule.ops import xp
from chainrule.tensor import Tensor

# ---- separable linear maps ----------------------------------------------------------------------------------


def separable_map(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (Ho, H) @ x (..., H, W) @ b.T (W, Wo) -> (..., Ho, Wo), in x's dtype."""
    return np.matmul(np.matmul(a.astype(x.dtype, copy=False), x), b.T.astype(x.dtype, copy=False))


class SeparableMap(Function):
    """x (..., H, W) -> A @ x @ B.T (..., Ho, Wo) for constant A, B; backward: A.T @ grad @ B."""

    @staticmethod
    def forward(ctx, x, a=None, b=None):
        ctx.a, ctx.b = a, b
        return separable_map(x, a, b)

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, Tensor):
            return SeparableMap.apply(grad, a=ctx.a.T, b=ctx.b.T)
        return separable_map(grad, ctx.a.T, ctx.b.T)


# ---- padding -------------------------------------------------------------------------------------------------


def source_index(n: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """For an axis of n values padded by (lo, hi): the input position each of the lo + n + hi outputs copies
    (-1 for a constant)."""
    if mode == "constant":
        return np.concatenate([np.full(lo, -1), np.arange(n), np.full(hi, -1)])
    return np.pad(np.arange(n), (lo, hi), mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode])


def _at(ndim: int, axis: int, index: Any, others: dict[int, slice]) -> tuple:
    """An index selecting ``index`` along ``axis`` and ``others[a]`` along the other listed axes."""
    sel = [slice(None)] * ndim
    for a, s in others.items():
        sel[a] = s
    sel[axis] = index
    return tuple(sel)


def pad_array(x: np.ndarray, pads: list[tuple[int, int]], mode: str, value: float) -> np.ndarray:
    """x padded on its last len(pads) axes, pads[i] = (lo, hi) for axis -len(pads) + i, in x's memory order."""
    k = len(pads)
    axes = list(range(x.ndim - k, x.ndim))
    shape = list(x.shape)
    for a, (lo, hi) in zip(axes, pads):
        shape[a] += lo + hi
    out = np.empty_like(x, shape=tuple(shape))
    center = {a: slice(lo, lo + x.shape[a]) for a, (lo, hi) in zip(axes, pads)}
    if mode == "constant":
        out.fill(value)
        out[_at(x.ndim, axes[0], center[axes[0]], center)] = x
        return out
    out[_at(x.ndim, axes[0], center[axes[0]], center)] = x
    extent = dict(center)  # what is filled so far: whole along the axes already padded
    for a, (lo, hi) in zip(axes, pads):
        src = source_index(x.shape[a], lo, hi, mode)
        for p in list(range(lo)) + list(range(lo + x.shape[a], shape[a])):
            out[_at(x.ndim, a, p, extent)] = out[_at(x.ndim, a, lo + src[p], extent)]
        extent[a] = slice(None)
    return out


def fold_pad(grad: np.ndarray, pads: list[tuple[int, int]], mode: str) -> np.ndarray:
    """The adjoint of ``pad_array``: each padded position's gradient added to the input position it copies."""
    k = len(pads)
    axes = list(range(grad.ndim - k, grad.ndim))
    g = grad if mode == "constant" else grad.copy()
    extent = {a: slice(None) for a in axes}
    for a, (lo, hi) in reversed(list(zip(axes, pads))):
        n = grad.shape[a] - lo - hi
        if mode != "constant":
            src = source_index(n, lo, hi, mode)
            for p in list(range(lo)) + list(range(lo + n, grad.shape[a])):
                g[_at(g.ndim, a, lo + src[p], extent)] += g[_at(g.ndim, a, p, extent)]
        extent[a] = slice(lo, lo + n)
    return g[_at(g.ndim, axes[0], extent[axes[0]], extent)]


class Pad(Function):
    """x (..., H, W) -> padded (..., H + top + bottom, W + left + right); linear, backward ``PadFold``."""

    @staticmethod
    def forward(ctx, x, pads=(), mode="constant", value=0.0):
        ctx.pads, ctx.mode = pads, mode
        return pad_array(x, list(pads), mode, value)

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, Tensor):
            return PadFold.apply(grad, pads=ctx.pads, mode=ctx.mode)
        return fold_pad(grad, list(ctx.pads), ctx.mode)


class PadFold(Function):
    """The adjoint of ``Pad`` as an op (its backward on the graph); its own backward is ``Pad`` with zeros."""

    @staticmethod
    def forward(ctx, grad, pads=(), mode="constant"):
        ctx.pads, ctx.mode = pads, mode
        return np.array(fold_pad(grad, list(pads), mode))

    @staticmethod
    def backward(ctx, g):
        if isinstance(g, Tensor):
            return Pad.apply(g, pads=ctx.pads, mode=ctx.mode, value=0.0)
        return pad_array(g, list(ctx.pads), ctx.mode, 0.0)


# ---- adaptive max pooling ------------------------------------------------------------------------------------


def adaptive_bins(n: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive bins of an axis of n into out: [floor(i n / out), ceil((i + 1) n / out))."""
    i = np.arange(out)
    return (i * n) // out, -((-(i + 1) * n) // out)


def adaptive_max_index(x: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """(..., Ho, Wo) int64: the flat position h * W + w of each bin's maximum (the first in row-major order; a NaN
    wins, the last NaN), as PyTorch's return_indices."""
    h, w = x.shape[-2:]
    (hs, he), (ws, we) = adaptive_bins(h, out_hw[0]), adaptive_bins(w, out_hw[1])
    kh, kw = int((he - hs).max()), int((we - ws).max())
    # each bin's rows/columns, shorter bins repeating their last one (a repeat never beats the first occurrence)
    rows = np.minimum(hs[:, None] + np.arange(kh), he[:, None] - 1)              # (Ho, kh)
    cols = np.minimum(ws[:, None] + np.arange(kw), we[:, None] - 1)              # (Wo, kw)
    flat = (rows[:, None, :, None] * w + cols[None, :, None, :]).reshape(out_hw[0], out_hw[1], kh * kw)
    planes = x.reshape(x.shape[:-2] + (h * w,))
    vals = planes[..., flat]                                                     # (..., Ho, Wo, kh*kw)
    first = np.take_along_axis(np.broadcast_to(flat, vals.shape), vals.argmax(axis=-1)[..., None], axis=-1)[..., 0]
    nan = np.isnan(vals)
    if not nan.any():
        return first
    last_nan = np.where(nan, flat, -1).max(axis=-1)  # a NaN wins: the last one in row-major order, as PyTorch
    return np.where(last_nan >= 0, last_nan, first)


class AdaptiveMaxPool(Function):
    """x (..., H, W) -> (..., Ho, Wo): each bin's maximum, taken at ``index`` (from ``adaptive_max_index``)."""

    @staticmethod
    def forward(ctx, x, index=None):
        ctx.index, ctx.shape = index, x.shape
        planes = x.reshape(x.shape[:-2] + (-1,))
        lead = index.shape[:-2]
        flat = index.reshape(lead + (-1,))
        return np.take_along_axis(planes, flat, axis=-1).reshape(index.shape)

    @staticmethod
    def backward(ctx, grad):
        lead = ctx.index.shape[:-2]
        where = tuple(np.indices(lead + (1,), sparse=True)[:-1]) + (ctx.index.reshape(lead + (-1,)),)
        planes = xp.index_add(grad.reshape(lead + (-1,)), lead + (ctx.shape[-2] * ctx.shape[-1],), where)
        return planes.reshape(ctx.shape)
