"""``adaptive_avg_pool2d``, ``adaptive_max_pool2d``, ``pad`` and ``interpolate`` (re-exported by
``chainrule.nn.functional``), with PyTorch's arguments and their checks.

Adaptive pooling splits each axis of n into ``out`` bins [floor(i n / out), ceil((i + 1) n / out)), as PyTorch. When
the bins are a regular grid (n divisible by out) this is ordinary pooling with kernel = stride = n / out, which
takes the zero-copy strided path of ``max_pool2d`` / ``avg_pool2d``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.backend.conv_geometry import ConvGeometry
from chainrule.nn._functions import pooling as _pool
from chainrule.nn._functions import resize as _resize
from chainrule.nn._pool import spatial_input
from chainrule.tensor import Tensor


def _out_hw(op: str, output_size: Any, in_hw: tuple[int, int]) -> tuple[int, int]:
    """output_size (an int, a pair; None in a pair keeps that input size) as a pair of ints >= 1."""
    sizes = (output_size, output_size) if isinstance(output_size, (int, np.integer)) or output_size is None \
        else tuple(output_size)
    if len(sizes) != 2:
        raise ValueError(f"{op}: expected output_size as an int or a pair (Ho, Wo), got {output_size!r}")
    out = tuple(n if s is None else s for s, n in zip(sizes, in_hw))
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in out):
        raise ValueError(f"{op}: expected output_size of integers >= 1, got {output_size!r}")
    return int(out[0]), int(out[1])


def _regular(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> _pool.Window | None:
    """The pooling Window of adaptive bins that are a regular grid, or None."""
    if any(n % o for n, o in zip(in_hw, out_hw)):
        return None
    k = (in_hw[0] // out_hw[0], in_hw[1] // out_hw[1])
    return _pool.Window(k, ConvGeometry(stride=k), tuple(in_hw), tuple(out_hw), np.full(out_hw, float(k[0] * k[1])))


def _bin_means(n: int, out: int) -> np.ndarray:
    """(out, n): row i averages adaptive bin i."""
    start, end = _resize.adaptive_bins(n, out)
    cols = np.arange(n)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return inside / (end - start)[:, None]


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Tensor:
    """Mean over PyTorch's adaptive bins: x (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo); ``output_size=1`` is global
    average pooling. A None in output_size keeps that input size."""
    data = spatial_input("adaptive_avg_pool2d", x)
    out_hw = _out_hw("adaptive_avg_pool2d", output_size, data.shape[-2:])
    window = _regular(data.shape[-2:], out_hw)
    if window is not None:
        return _pool.AvgPool2d.apply(x, window=window)
    return _resize.SeparableMap.apply(x, a=_bin_means(data.shape[-2], out_hw[0]),
                                      b=_bin_means(data.shape[-1], out_hw[1]))


def adaptive_max_pool2d(x: Any, output_size: Any, return_indices: bool = False) -> Any:
    """Max over PyTorch's adaptive bins: x (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo); ``return_indices`` adds
    PyTorch's indices (h * W + w). Gradients go to each bin's first maximum in row-major order, as ``max_pool2d``."""
    data = spatial_input("adaptive_max_pool2d", x)
    out_hw = _out_hw("adaptive_max_pool2d", output_size, data.shape[-2:])
    window = _regular(data.shape[-2:], out_hw)
    if window is not None and not return_indices:
        return _pool.MaxPool2d.apply(x, window=window)
    index = _resize.adaptive_max_index(data, out_hw)
    out = _resize.AdaptiveMaxPool.apply(x, index=index)
    return (out, index) if return_indices else out


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(x: Any, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last axes of x, PyTorch's order: ``pad=(left, right)`` pads the last axis, ``(left, right, top,
    bottom)`` the last two. ``mode``: "constant" (``value``, default 0; negative pads crop), "reflect" (mirror,
    edge not repeated; each pad < that size), "replicate" (edge repeated) or "circular" (wrap around; each pad <=
    that size). The non-constant modes pad one or two axes of a batched or channelled input, as PyTorch."""
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    pads = tuple(pad) if isinstance(pad, (tuple, list)) else None
    if pads is None or len(pads) % 2 or not pads or any(isinstance(p, bool) or not isinstance(p, (int, np.integer))
                                                        for p in pads):
        raise ValueError(f"pad: expected pad as a tuple of ints (left, right[, top, bottom, ...]), got {pad!r}")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: expected mode in {_PAD_MODES}, got {mode!r}")
    k = len(pads) // 2
    if k > data.ndim:
        raise ValueError(f"pad: pad {pads} pads {k} axes but the input has only {data.ndim} ({data.shape})")
    if mode != "constant":
        if value not in (None, 0, 0.0):
            raise ValueError(f"pad: value={value} applies to mode='constant' only, got mode={mode!r}")
        if k > 2 or data.ndim not in (k + 1, k + 2):
            raise ValueError(f"pad: mode={mode!r} takes 2 pad values for a (C, W) or (N, C, W) input and 4 for a "
                             f"(C, H, W) or (N, C, H, W) input (PyTorch's rule), got {len(pads)} values for input "
                             f"shape {data.shape}")
    per_axis = [(int(pads[2 * i]), int(pads[2 * i + 1])) for i in range(k)][::-1]  # first axis first
    dims = data.shape[data.ndim - k:]
    for (lo, hi), n, name in zip(per_axis, dims, ["H", "W"][-k:] if k <= 2 else [f"axis -{k - i}" for i in range(k)]):
        if mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the input's size {n} along "
                             f"{name}; pad less, or use mode='replicate'")
        if mode == "circular" and max(lo, hi) > n:
            raise ValueError(f"pad: circular padding ({lo}, {hi}) must be at most the input's size {n} along {name}")
        if mode != "constant" and min(lo, hi) < 0:
            raise ValueError(f"pad: negative padding ({lo}, {hi}) crops, which only mode='constant' does")
        if n + lo + hi < 1:
            raise ValueError(f"pad: padding ({lo}, {hi}) leaves nothing of the input's size {n} along {name}")
    if data.dtype.kind != "f":
        raise TypeError(f"pad: expected a floating-point input, got dtype {data.dtype}")
    if any(lo < 0 or hi < 0 for lo, hi in per_axis):  # crop first, then pad what is left
        crop = (Ellipsis,) + tuple(slice(max(0, -lo), n - max(0, -hi)) for (lo, hi), n in zip(per_axis, dims))
        x = (x if isinstance(x, Tensor) else Tensor(data))[crop]
        per_axis = [(max(lo, 0), max(hi, 0)) for lo, hi in per_axis]
    return _resize.Pad.apply(x, pads=tuple(per_axis), mode=mode, value=0.0 if value is None else float(value))


def _interp_matrix(n: int, out: int, mode: str, align_corners: bool | None, scale: float | None) -> np.ndarray:
    """(out, n): PyTorch's source coordinates per output position, as weights. ``scale`` is 1 / scale_factor when
    one was given (PyTorch maps coordinates with it, not with n / out)."""
    ratio = scale if scale is not None else n / out
    dst = np.arange(out, dtype=np.float64)
    m = np.zeros((out, n))
    if mode == "nearest":  # in float32, as PyTorch's kernel (floorf(dst * scale)), so ties round the same way
        src = np.minimum(np.floor(dst.astype(np.float32) * np.float32(ratio)).astype(np.int64), n - 1)
        m[np.arange(out), src] = 1.0
        return m
    if align_corners:
        src = dst * ((n - 1) / (out - 1)) if out > 1 else np.zeros(out)
    else:
        src = np.maximum((dst + 0.5) * ratio - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    frac = src - i0
    np.add.at(m, (np.arange(out), i0), 1.0 - frac)
    np.add.at(m, (np.arange(out), i1), frac)
    return m


def interpolate(x: Any, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None) -> Tensor:
    """Resize x (N, C, H, W) or (C, H, W) to ``size`` (Ho, Wo) or by ``scale_factor`` (output floor(H * s); the
    source coordinates use 1 / scale_factor, or H / Ho with ``recompute_scale_factor=True``, as PyTorch).

    ``mode``: "nearest" (source floor(dst * scale)) or "bilinear" (PyTorch's half-pixel centres, or the corners
    aligned with ``align_corners=True``). Both are exact PyTorch float64 matches, differentiable to any order.
    """
    data = spatial_input("interpolate", x)
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"interpolate: expected mode 'nearest' or 'bilinear', got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners applies to mode='bilinear' only; leave it None for 'nearest'")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: pass exactly one of size and scale_factor")
    in_hw = data.shape[-2:]
    scales: tuple[float | None, float | None] = (None, None)
    if size is not None:
        out_hw = _out_hw("interpolate", size, in_hw)
    else:
        factors = (scale_factor, scale_factor) if not isinstance(scale_factor, (tuple, list)) else tuple(scale_factor)
        if len(factors) != 2 or any(not isinstance(f, (int, float)) or not f > 0 or not math.isfinite(f)
                                    for f in factors):
            raise ValueError(f"interpolate: expected scale_factor > 0 (a number or a pair), got {scale_factor!r}")
        out_hw = tuple(int(math.floor(n * f)) for n, f in zip(in_hw, factors))
        if min(out_hw) < 1:
            raise ValueError(f"interpolate: scale_factor {scale_factor!r} makes an output of {out_hw} from {in_hw}; "
                             "the output must be at least 1 x 1")
        if not recompute_scale_factor:
            scales = tuple(1.0 / f for f in factors)
    a = _interp_matrix(in_hw[0], out_hw[0], mode, align_corners, scales[0])
    b = _interp_matrix(in_hw[1], out_hw[1], mode, align_corners, scales[1])
    return _resize.SeparableMap.apply(x, a=a, b=b)


__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "pad", "interpolate"]
