"""``max_pool2d`` and ``avg_pool2d`` (re-exported by ``chainrule.nn.functional``) and their argument rules.

Input (N, C, H, W) or (C, H, W), as PyTorch; output (N, C, Ho, Wo) with, per axis (PyTorch's formula)::

    Ho = floor_or_ceil((H + 2 p - d (k - 1) - 1) / s) + 1

and in ceil_mode the last window must start inside the input or its left/top padding (else it is dropped).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend.conv_geometry import ConvGeometry
from chainrule.nn._conv import pair
from chainrule.nn._functions import pooling as _pool
from chainrule.tensor import Tensor

IntPair = Any  # an int or a pair of ints


def spatial_input(op: str, x: Any) -> np.ndarray:
    """The array of x, which must be a floating-point (N, C, H, W) or (C, H, W) input."""
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    if data.ndim not in (3, 4) or 0 in data.shape[-3:]:
        raise ValueError(f"{op}: expected a non-empty input of shape (N, C, H, W) or (C, H, W), got shape "
                         f"{data.shape}; add the missing axes, e.g. x[None, None] for one (H, W) image")
    if data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {data.dtype}; convert it, e.g. "
                        "x.astype(np.float32)")
    return data


def pool_extent(op: str, axis: str, size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """The output size along one axis, PyTorch's rule (ceil_mode drops a last window starting past the padding)."""
    span = d * (k - 1) + 1
    room = size + 2 * p - span
    if room < 0:
        raise ValueError(f"{op}: output {axis} would be smaller than 1: input {axis} {size} + padding {2 * p} is "
                         f"smaller than the kernel's extent {span}; pad the input, or use a smaller kernel_size "
                         "or dilation")
    n = (room + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (n - 1) * s >= size + p:
        n -= 1
    return n


def pool_args(op: str, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
              dilation: IntPair) -> tuple[tuple[int, int], ...]:
    """(kernel, stride, padding, dilation) as pairs, checked; stride None (or ()) is the kernel, as PyTorch."""
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None or (not isinstance(stride, (int, np.integer)) and len(stride) == 0) \
        else pair(op, "stride", stride, 1)
    pad = pair(op, "padding", padding, 0)
    dil = pair(op, "dilation", dilation, 1)
    for p, k in zip(pad, kernel):
        if p > k // 2:
            raise ValueError(f"{op}: padding {padding!r} is more than half the kernel {kernel_size!r}: pooling needs "
                             f"padding <= kernel_size // 2 (here {k // 2}), so that every window holds input; pass a "
                             "smaller padding or a larger kernel_size")
    return kernel, stride, pad, dil


def pool_window(op: str, in_hw: tuple[int, int], kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
                dilation: IntPair, ceil_mode: bool) -> _pool.Window:
    """Check the arguments and build the ``Window`` (ceil_mode's extra rows and columns are extra padding at the
    bottom and right: they hold no input, so they never win a max nor count in an average)."""
    kernel, stride, pad, dil = pool_args(op, kernel_size, stride, padding, dilation)
    out = tuple(pool_extent(op, axis, n, k, s, p, d, ceil_mode)
                for axis, n, k, s, p, d in zip("HW", in_hw, kernel, stride, pad, dil))
    extra = [max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
             for o, s, d, k, n, p in zip(out, stride, dil, kernel, in_hw, pad)]
    geometry = ConvGeometry(stride, ((pad[0], pad[0] + extra[0]), (pad[1], pad[1] + extra[1])), dil)
    assert geometry.output_size(in_hw, kernel) == out
    return _pool.Window(kernel, geometry, tuple(in_hw), out)


def _divisor(window: _pool.Window, pad: tuple[int, int], count_include_pad: bool,
             divisor_override: int | None) -> np.ndarray:
    """PyTorch's avg_pool2d divisor per output (Ho, Wo): the window clipped to input + padding (count_include_pad)
    or to the input alone, or ``divisor_override``."""
    counts = []
    for o, s, k, n, p in zip(window.out_hw, window.geometry.stride, window.kernel, window.in_hw, pad):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        counts.append(end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0))
    if divisor_override is not None:
        return np.full(window.out_hw, float(divisor_override))
    return (counts[0][:, None] * counts[1][None, :]).astype(np.float64)


def max_pool2d(x: Any, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Max over each kh x kw window (taps ``dilation`` apart, stride defaults to the kernel, -inf padding):
    x (N, C, H, W) -> (N, C, Ho, Wo). ``return_indices=True`` also returns PyTorch's indices (int64, the position
    h * W + w in each input plane). The gradient of a window goes to one input position: its first maximum in
    row-major order (see ``chainrule.nn._functions.pooling`` for NaN and -inf)."""
    data = spatial_input("max_pool2d", x)
    window = pool_window("max_pool2d", data.shape[-2:], kernel_size, stride, padding, dilation, ceil_mode)
    if not return_indices:
        return _pool.MaxPool2d.apply(x, window=window)
    _, arg = _pool.max_taps(data, window, want_arg=True)
    return _pool.TapGather.apply(x, arg=arg, window=window), window.flat_indices(arg)


def avg_pool2d(x: Any, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None) -> Any:
    """Mean over each kh x kw window (zero padding): x (N, C, H, W) -> (N, C, Ho, Wo). ``count_include_pad``
    counts padded positions in the divisor (not ceil_mode's extra ones, as PyTorch); ``divisor_override`` replaces
    the divisor."""
    data = spatial_input("avg_pool2d", x)
    bad = divisor_override is not None and (isinstance(divisor_override, bool) or divisor_override == 0
                                            or int(divisor_override) != divisor_override)
    if bad:
        raise ValueError(f"avg_pool2d: expected divisor_override as a nonzero integer or None, got "
                         f"{divisor_override!r}")
    window = pool_window("avg_pool2d", data.shape[-2:], kernel_size, stride, padding, 1, ceil_mode)
    pad = pair("avg_pool2d", "padding", padding, 0)
    divisor = _divisor(window, pad, count_include_pad, divisor_override)
    window = _pool.Window(window.kernel, window.geometry, window.in_hw, window.out_hw, divisor)
    return _pool.AvgPool2d.apply(x, window=window)


__all__ = ["max_pool2d", "avg_pool2d"]
