"""Max and average pooling over (..., H, W): the fast NumPy path, one vectorised pass per kernel tap.

A pooling window of (kh, kw) taps, ``dilation`` apart, slides over the padded input in steps of ``stride``
(``Window`` below, built by ``chainrule.nn._pool``). Tap (i, j) of every window at once is one strided view of
the padded input::

    xp[..., i*dh : i*dh + sh*(Ho-1) + 1 : sh, j*dw : j*dw + sw*(Wo-1) + 1 : sw]      (..., Ho, Wo)

so max pooling is the elementwise maximum of kh*kw such views and average pooling their sum, scaled: a loop over
the taps (4 for 2x2, 9 for 3x3), never over samples or positions. The views are zero-copy and ufuncs keep the
input's memory order, so a channels-last array (``x.transpose(0, 3, 1, 2)`` of an NHWC buffer, PyTorch's
channels_last) stays channels-last through forward and backward: nothing is reordered. (Windows of many taps that
tile the input, such as global pooling, are reduced as one (..., Ho, kh, Wo, kw) view instead: ``Window.tiled``.)
Where oneDNN runs (float32 (N, C, H, W) on the onednn convolution backend: ``chainrule.backend.fused.max_pool2d``),
max pooling's forward and backward are one oneDNN pass each with the same winners (``arg``), and the taps here are
the fallback and the reference it is tested against.

Max-pool gradient routing (PyTorch's CPU rule, checked against torch 2.13): each window's gradient goes to ONE
input position, the first maximum in row-major window order (tap (i, j) before (i, j+1) before (i+1, 0)); a window
holding NaN outputs NaN and routes to its last NaN (PyTorch's NCHW kernel; its channels_last kernel picks the
first); a window whose in-bounds values are all -inf routes to its first in-bounds position, never to padding.
``arg`` holds the number of each window's winning tap (one byte per output), ``indices`` (return_indices) the flat
position h * W + w in each input plane, as PyTorch's.

Twice differentiable, and more: every map here is linear given ``arg``. Max pooling's backward scatters with
``TapScatter`` whose backward gathers with ``TapGather`` (and back); average pooling's backward is
``AvgPoolBackward``, whose backward is ``AvgPool`` again. The winning taps are constants of higher derivatives
(max pooling is piecewise linear), as in PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.backend import fused
from chainrule.backend.conv_geometry import ConvGeometry
from chainrule.function import Function
from chainrule.tensor import Tensor


BLOCK_TAPS = 16  # windows with more taps that tile the input are reduced as blocks (``Window.blocks``)


@dataclass(frozen=True, eq=False)
class Window:
    """A pooling window over an input of ``in_hw``: ``geometry`` holds stride, dilation and the padding per side
    (ceil_mode's extra rows and columns included at the bottom and right); ``out_hw`` is the output size, and
    ``divisor`` (Ho, Wo) average pooling's per-output divisor (None for max pooling)."""

    kernel: tuple[int, int]
    geometry: ConvGeometry
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    divisor: np.ndarray | None = None

    @property
    def padded(self) -> bool:
        return any(v for side in self.geometry.padding for v in side)

    def taps(self, xp: np.ndarray) -> list[np.ndarray]:
        """The kh*kw strided views of the padded array ``xp`` (..., Hp, Wp), each (..., Ho, Wo), row-major.

        (Splitting xp into its sh * sw phases first, so that every tap is a contiguous slice, measured no faster
        overall on this project's machine: the split costs a copy of the input.)"""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.geometry.stride, self.geometry.dilation
        ho, wo = self.out_hw
        return [xp[..., i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
                for i in range(kh) for j in range(kw)]

    @property
    def tiled(self) -> bool:
        """Windows with more than ``BLOCK_TAPS`` taps that tile the input (stride = kernel, no dilation, no
        padding), such as global pooling: reduced as blocks (a loop over a thousand taps would cost a thousand
        ufunc calls)."""
        (kh, kw) = self.kernel
        return kh * kw > BLOCK_TAPS and self.geometry.stride == (kh, kw) and self.geometry.dilation == (1, 1) \
            and not self.padded

    def blocks(self, x: np.ndarray) -> np.ndarray | None:
        """x's tiles as a view (..., Ho, kh, Wo, kw) when ``tiled``, else None."""
        if not self.tiled:
            return None
        (kh, kw), (ho, wo) = self.kernel, self.out_hw
        return x[..., :ho * kh, :wo * kw].reshape(x.shape[:-2] + (ho, kh, wo, kw))

    def scatter_views(self, lead: tuple[int, ...], dtype: np.dtype, channels_last: bool) -> tuple[list, Any]:
        """(views, finish): zero-initialised tap views of a padded gradient to add each tap's gradient into, and
        a function returning the input-sized gradient once they are filled."""
        gxp = self.padded_zeros(lead, dtype, channels_last)
        return self.taps(gxp), lambda: self.crop(gxp)

    def pad(self, x: np.ndarray, fill: float) -> np.ndarray:
        """x (..., H, W) padded with ``fill`` in x's memory order (x itself when there is no padding)."""
        if not self.padded:
            return x
        (top, bottom), (left, right) = self.geometry.padding
        h, w = self.in_hw
        out = np.empty_like(x, shape=x.shape[:-2] + (h + top + bottom, w + left + right))
        out.fill(fill)
        out[..., top:top + h, left:left + w] = x
        return out

    def crop(self, xp: np.ndarray) -> np.ndarray:
        """The input-sized view of a padded array."""
        (top, _), (left, _) = self.geometry.padding
        h, w = self.in_hw
        return xp[..., top:top + h, left:left + w]

    def padded_zeros(self, lead: tuple[int, ...], dtype: np.dtype, channels_last: bool) -> np.ndarray:
        """Zeros of the padded input's shape, channels-last (an NHWC buffer seen as NCHW) if asked."""
        (top, bottom), (left, right) = self.geometry.padding
        hw = (self.in_hw[0] + top + bottom, self.in_hw[1] + left + right)
        if channels_last and len(lead) == 2:
            return np.zeros((lead[0], *hw, lead[1]), dtype=dtype).transpose(0, 3, 1, 2)
        return np.zeros(lead + hw, dtype=dtype)

    def first_in_bounds_tap(self) -> np.ndarray:
        """(Ho, Wo): the first tap of each window that falls inside the input (not in padding)."""
        firsts = []
        for o, s, d, (lo, _) in zip(self.out_hw, self.geometry.stride, self.geometry.dilation,
                                     self.geometry.padding):
            before = np.maximum(lo - np.arange(o) * s, 0)  # padded rows ahead of the input in each window
            firsts.append(-(-before // d))
        return firsts[0][:, None] * self.kernel[1] + firsts[1][None, :]

    def flat_indices(self, arg: np.ndarray) -> np.ndarray:
        """PyTorch's return_indices: the input position h * W + w of each output's winning tap (int64)."""
        kw = self.kernel[1]
        (sh, sw), (dh, dw) = self.geometry.stride, self.geometry.dilation
        (top, _), (left, _) = self.geometry.padding
        ho, wo = self.out_hw
        i, j = np.divmod(arg.astype(np.int64), kw)
        h = i * dh + (np.arange(ho) * sh - top)[:, None]
        w = j * dw + (np.arange(wo) * sw - left)[None, :]
        return h * self.in_hw[1] + w


# ---- max pooling ------------------------------------------------------------------------------------------------


def max_taps(x: np.ndarray, window: Window, want_arg: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(out, arg): the window maxima of x (..., H, W) and, if ``want_arg``, the number of each window's winning
    tap (uint8, or int32 past 256 taps; the rule above), in out's memory order."""
    fast = fused.max_pool2d(x, window, want_arg)  # one oneDNN pass where it runs (float32 on the onednn conv
    if fast is not None:                          # backend, no NaN or -inf in x), else the taps below
        return fast
    if window.tiled:
        return _max_blocks(window.blocks(x), want_arg)
    taps = window.taps(window.pad(x, -np.inf))
    if not want_arg:
        out = np.maximum(taps[0], taps[1]) if len(taps) > 1 else np.copy(taps[0])
        for view in taps[2:]:
            np.maximum(out, view, out=out)
        return out, None
    out = np.copy(taps[0])
    dtype = np.uint8 if len(taps) <= 256 else np.int32
    arg = np.zeros_like(out, dtype=dtype)
    better = np.empty_like(out, dtype=bool)
    step = np.empty_like(arg)
    for t, view in enumerate(taps[1:], start=1):
        np.greater(view, out, out=better)      # strictly greater: an equal later tap never takes over (first wins)
        np.maximum(out, view, out=out)         # (propagates NaN; NaN windows are fixed below)
        np.multiply(better, dtype(t), out=step)
        np.maximum(arg, step, out=arg)         # taps come in increasing order: the last improvement wins
    nan = np.isnan(out)
    inf = np.isneginf(out) if window.padded else None
    if nan.any() or (inf is not None and inf.any()):  # rare: NaN wins (its last one, as PyTorch's NCHW kernel) ...
        for t, view in enumerate(taps):
            np.copyto(arg, t, where=np.isnan(view))
        if inf is not None:  # ... and an all -inf window routes to its first in-bounds position, not to padding
            np.copyto(arg, window.first_in_bounds_tap().astype(dtype), where=inf)
    return out, arg


def _max_blocks(blocks: np.ndarray, want_arg: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``max_taps`` on tiles (..., Ho, kh, Wo, kw): the same maxima and winners (first maximum, last NaN)."""
    if not want_arg:
        return blocks.max(axis=(-3, -1)), None
    kh, kw = blocks.shape[-3], blocks.shape[-1]
    flat = np.moveaxis(blocks, -3, -2).reshape(blocks.shape[:-4] + (blocks.shape[-4], blocks.shape[-2], kh * kw))
    arg = flat.argmax(axis=-1)  # the first maximum (and the first NaN: NumPy's max is NaN-propagating)
    nan = np.isnan(flat)
    if nan.any():
        last_nan = kh * kw - 1 - nan[..., ::-1].argmax(axis=-1)
        arg = np.where(nan.any(axis=-1), last_nan, arg)
    out = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    return out, arg.astype(np.uint8 if kh * kw <= 256 else np.int32)


def is_channels_last(x: np.ndarray) -> bool:
    """True for an (N, C, H, W) array whose channels are adjacent in memory (PyTorch's channels_last)."""
    return x.ndim == 4 and x.shape[1] > 1 and abs(x.strides[1]) < abs(x.strides[3])


def scatter_taps(grad: np.ndarray, arg: np.ndarray, window: Window, channels_last: bool) -> np.ndarray:
    """The input-shaped array with each grad[..., o] added at its window's winning tap (max pool's backward), in
    the input's layout. Only the winners receive a gradient, even an inf or NaN one (as PyTorch)."""
    gx = fused.max_pool2d_backward(grad, arg, window, channels_last)  # one oneDNN pass where it runs
    if gx is not None:
        return gx
    if window.tiled:
        gx = window.padded_zeros(grad.shape[:-2], grad.dtype, channels_last)  # (no padding: input-sized)
        kh, kw = window.kernel
        chosen = np.where(arg[..., None] == np.arange(kh * kw), grad[..., None], 0)  # (..., Ho, Wo, kh*kw)
        window.blocks(gx)[...] = np.moveaxis(chosen.reshape(chosen.shape[:-1] + (kh, kw)), -2, -3)
        return gx
    views, finish = window.scatter_views(grad.shape[:-2], grad.dtype, channels_last)
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.geometry.stride, window.geometry.dilation
    disjoint = sh >= dh * (kh - 1) + 1 and sw >= dw * (kw - 1) + 1  # no input position in two windows
    # grad * (arg == t) is the fast mask, but inf * 0 and NaN * 0 would put NaN on the losing taps: a gradient with
    # inf or NaN (one sum finds it: the sum of finite numbers is finite or overflows) takes the masked additions
    with np.errstate(over="ignore", invalid="ignore"):
        masked = not np.isfinite(np.sum(grad))
    scratch = None if disjoint or masked else np.empty_like(grad)
    hit = np.empty_like(arg, dtype=bool)
    for t, view in enumerate(views):  # within one tap the positions are distinct: no collisions
        np.equal(arg, t, out=hit)
        if masked:
            np.add(view, grad, out=view, where=hit)
        elif disjoint:
            np.multiply(grad, hit, out=view)
        else:
            np.multiply(grad, hit, out=scratch)
            view += scratch
    return finish()


def gather_taps(x: np.ndarray, arg: np.ndarray, window: Window) -> np.ndarray:
    """x at each window's winning tap (the adjoint of ``scatter_taps``)."""
    out = np.zeros_like(arg, dtype=x.dtype)
    for t, view in enumerate(window.taps(window.pad(x, 0.0))):
        np.copyto(out, view, where=arg == t)
    return out


class MaxPool2d(Function):
    """x (..., H, W) -> (..., Ho, Wo), the maximum of each window; backward routes each gradient to the winner."""

    @staticmethod
    def forward(ctx, x, window=None):
        out, arg = max_taps(x, window, want_arg=ctx.needs_input_grad[0])  # the winners only if backward comes
        ctx.window, ctx.arg, ctx.cl = window, arg, is_channels_last(x)
        return out

    @staticmethod
    def backward(ctx, grad):
        return _scatter(grad, ctx.arg, ctx.window, ctx.cl)


class TapScatter(Function):
    """grad (..., Ho, Wo) -> (..., H, W): ``scatter_taps`` as an op (max pooling's backward on the graph)."""

    @staticmethod
    def forward(ctx, grad, arg=None, window=None, channels_last=False):
        ctx.arg, ctx.window, ctx.cl = arg, window, channels_last
        return scatter_taps(grad, arg, window, channels_last)

    @staticmethod
    def backward(ctx, g):
        return TapGather.apply(g, arg=ctx.arg, window=ctx.window) if isinstance(g, Tensor) else \
            gather_taps(g, ctx.arg, ctx.window)


class TapGather(Function):
    """x (..., H, W) -> (..., Ho, Wo): ``gather_taps`` as an op (the backward of ``TapScatter``)."""

    @staticmethod
    def forward(ctx, x, arg=None, window=None):
        ctx.arg, ctx.window, ctx.cl = arg, window, is_channels_last(x)
        return gather_taps(x, arg, window)

    @staticmethod
    def backward(ctx, g):
        return _scatter(g, ctx.arg, ctx.window, ctx.cl)


def _scatter(grad: Any, arg: np.ndarray, window: Window, channels_last: bool) -> Any:
    if isinstance(grad, Tensor):
        return TapScatter.apply(grad, arg=arg, window=window, channels_last=channels_last)
    return scatter_taps(grad, arg, window, channels_last)


# ---- average pooling --------------------------------------------------------------------------------------------


def avg_taps(x: np.ndarray, window: Window) -> np.ndarray:
    """The window sums of x (..., H, W) (zero padding) divided by ``window.divisor``."""
    if window.tiled:
        return window.blocks(x).sum(axis=(-3, -1)) * (1 / window.divisor).astype(x.dtype)
    taps = window.taps(window.pad(x, 0.0))
    out = np.add(taps[0], taps[1]) if len(taps) > 1 else np.copy(taps[0])
    for view in taps[2:]:
        np.add(out, view, out=out)
    out *= (1 / window.divisor).astype(x.dtype)
    return out


def spread_taps(grad: np.ndarray, window: Window, channels_last: bool) -> np.ndarray:
    """Average pooling's backward: each grad / divisor added to every tap of its window, in the input's layout."""
    g = grad * (1 / window.divisor).astype(grad.dtype)
    if window.tiled:
        gx = window.padded_zeros(grad.shape[:-2], grad.dtype, channels_last)
        window.blocks(gx)[...] = g[..., :, None, :, None]
        return gx
    views, finish = window.scatter_views(grad.shape[:-2], grad.dtype, channels_last)
    for view in views:
        view += g
    return finish()


class AvgPool2d(Function):
    """x (..., H, W) -> (..., Ho, Wo), each window's sum over its divisor (a linear map of x)."""

    @staticmethod
    def forward(ctx, x, window=None):
        ctx.window, ctx.cl = window, is_channels_last(x)
        return avg_taps(x, window)

    @staticmethod
    def backward(ctx, grad):
        if isinstance(grad, Tensor):
            return AvgPool2dBackward.apply(grad, window=ctx.window, channels_last=ctx.cl)
        return spread_taps(grad, ctx.window, ctx.cl)


class AvgPool2dBackward(Function):
    """grad (..., Ho, Wo) -> (..., H, W): ``spread_taps`` as an op; its backward is average pooling again."""

    @staticmethod
    def forward(ctx, grad, window=None, channels_last=False):
        ctx.window = window
        return spread_taps(grad, window, channels_last)

    @staticmethod
    def backward(ctx, g):
        return AvgPool2d.apply(g, window=ctx.window) if isinstance(g, Tensor) else avg_taps(g, ctx.window)
