"""``F.conv2d``, ``F.conv_transpose2d``, ``F.unfold``, ``F.fold``: PyTorch's signatures, arguments checked once.

Each checks its arguments (one error naming the rule, the value and the fix), turns them into a ``ConvGeometry``
and applies one op of ``chainrule.ops.conv``. Inputs are (N, C, H, W), or unbatched (C, H, W) as PyTorch allows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend.conv_geometry import ConvGeometry
from chainrule.ops import conv as _conv
from chainrule.ops.shape import Squeeze, Unsqueeze
from chainrule.tensor import Tensor

Pair = tuple[int, int]


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _as_input(x: Any) -> Any:
    return x if isinstance(x, (Tensor, np.ndarray)) else Tensor(x).data


def pair(op: str, name: str, value: Any, low: int) -> Pair:
    """An int or a pair of ints, each >= ``low``, as a pair; else an error naming ``op``, the rule and the value."""
    values = (value, value) if isinstance(value, (int, np.integer)) else value
    if (not isinstance(values, (tuple, list)) or len(values) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints (h, w), got {value!r}")
    if any(v < low for v in values):
        raise ValueError(f"{op}: {name} must be >= {low} in both dimensions, got {value!r}; pass e.g. "
                         f"{name}={max(low, 1)} or ({max(low, 1)}, {max(low, 1)})")
    return int(values[0]), int(values[1])


def _batched(op: str, x: np.ndarray, sizes: str) -> bool:
    """True for a batched input (N, ...), False for an unbatched one; raises for other dimensions."""
    full = len(sizes.split(","))
    if x.ndim == full:
        return True
    if x.ndim == full - 1:
        return False
    raise ValueError(f"{op}: expected a {full}-D input ({sizes}) or an unbatched {full - 1}-D one, got a {x.ndim}-D "
                     f"input of shape {x.shape}; reshape it, e.g. x.reshape({sizes})")


def _check_dtypes(op: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, channels: int) -> None:
    if x.dtype.kind != "f" or x.dtype != w.dtype:
        raise TypeError(f"{op}: input dtype {x.dtype} and weight dtype {w.dtype} must be the same floating type; "
                        f"convert the input (x.astype(np.{w.dtype})) or the model (model.to(np.{x.dtype}))")
    if b is not None and (b.shape != (channels,) or b.dtype != w.dtype):
        raise ValueError(f"{op}: expected a bias of shape ({channels},) and dtype {w.dtype}, got {b.shape} {b.dtype}")


def _groups(op: str, groups: Any, in_channels: int, out_channels: int | None = None) -> int:
    """groups, checked to divide the input channels and (for conv2d, whose weight gives them) the output ones."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be an int >= 1, got {groups!r}")
    if out_channels is None and in_channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input channels ({in_channels}); use a divisor of "
                         "them (groups=in_channels is depthwise)")
    if out_channels is not None and (in_channels % groups or out_channels % groups):
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({in_channels}) and the output "
                         f"channels ({out_channels}); use a divisor of both (groups=in_channels is depthwise)")
    return int(groups)


def _geometry(op: str, stride: Pair, padding: tuple[Pair, Pair], dilation: Pair, groups: int, in_hw: Pair,
              kernel_hw: Pair) -> ConvGeometry:
    geom = ConvGeometry(stride, padding, dilation, groups)
    try:
        geom.output_size(in_hw, kernel_hw)
    except ValueError as e:
        raise ValueError(f"{op}: {e}") from None
    return geom


def _conv_padding(padding: Any, kernel_hw: Pair, stride: Pair, dilation: Pair) -> tuple[Pair, Pair]:
    """((top, bottom), (left, right)) from an int, a pair, "valid" or "same" (the extra pixel of an even span at the
    bottom/right, as PyTorch)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ValueError(f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        if stride != (1, 1):
            raise ValueError(f"conv2d: padding='same' needs stride 1 (PyTorch's rule), got stride={stride}; pass the "
                             "padding as numbers for a strided convolution")
        totals = [d * (k - 1) for d, k in zip(dilation, kernel_hw)]
        return (totals[0] // 2, totals[0] - totals[0] // 2), (totals[1] // 2, totals[1] - totals[1] // 2)
    ph, pw = pair("conv2d", "padding", padding, 0)
    return (ph, ph), (pw, pw)


def conv2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation: x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,) -> (N, O, Ho, Wo) with
    Ho = floor((H + top + bottom - dilation * (kh - 1) - 1) / stride) + 1 (likewise Wo).

    ``padding``: an int or (ph, pw) on both sides, ``"valid"`` (none) or ``"same"`` (output size = input size;
    stride 1; an even span puts its extra row/column at the bottom/right, as PyTorch). ``groups`` splits the
    channels into independent convolutions (groups = C: depthwise). The output is channels-last in memory on the
    NumPy backend (see ``chainrule.backend.conv``).
    """
    x, w = _as_input(input), _array(weight)
    xa = _array(x)
    batched = _batched("conv2d", xa, "N, C, H, W")
    if w.ndim != 4:
        raise ValueError(f"conv2d: expected a 4-D weight (out_channels, in_channels/groups, kh, kw), got shape "
                         f"{w.shape}")
    c = xa.shape[-3]
    g = _groups("conv2d", groups, c, w.shape[0])
    if w.shape[1] * g != c:
        raise ValueError(f"conv2d: the weight {w.shape} with groups={g} expects {w.shape[1] * g} input channels, "
                         f"but the input {xa.shape} has {c}; check in_channels (weight.shape[1] = in_channels/groups)")
    _check_dtypes("conv2d", xa, w, None if bias is None else _array(bias), w.shape[0])
    kernel = (int(w.shape[2]), int(w.shape[3]))
    s, d = pair("conv2d", "stride", stride, 1), pair("conv2d", "dilation", dilation, 1)
    geom = _geometry("conv2d", s, _conv_padding(padding, kernel, s, d), d, g, xa.shape[-2:], kernel)
    if not batched:
        x = Unsqueeze.apply(x, axis=0)
    y = _conv.Conv2d.apply(x, weight, bias, geom=geom)
    return y if batched else Squeeze.apply(y, axis=0)


def conv_transpose2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """The transpose of conv2d (the gradient of its input, "deconvolution"): x (N, Cin, H, W), weight
    (Cin, Cout/groups, kh, kw) (PyTorch's layout), bias (Cout,) -> (N, Cout, Ho, Wo) with
    Ho = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1.

    ``output_padding`` (smaller than the stride or the dilation) picks among the input sizes a strided conv2d maps
    to H: it adds rows/columns at the bottom/right.
    """
    x, w = _as_input(input), _array(weight)
    xa = _array(x)
    batched = _batched("conv_transpose2d", xa, "N, C, H, W")
    if w.ndim != 4:
        raise ValueError(f"conv_transpose2d: expected a 4-D weight (in_channels, out_channels/groups, kh, kw), got "
                         f"shape {w.shape}")
    c = xa.shape[-3]
    if w.shape[0] != c:
        raise ValueError(f"conv_transpose2d: the weight {w.shape} expects {w.shape[0]} input channels (its first "
                         f"axis), but the input {xa.shape} has {c}")
    g = _groups("conv_transpose2d", groups, c)
    _check_dtypes("conv_transpose2d", xa, w, None if bias is None else _array(bias), w.shape[1] * g)
    kernel = (int(w.shape[2]), int(w.shape[3]))
    s = pair("conv_transpose2d", "stride", stride, 1)
    d = pair("conv_transpose2d", "dilation", dilation, 1)
    p = pair("conv_transpose2d", "padding", padding, 0)
    op = pair("conv_transpose2d", "output_padding", output_padding, 0)
    for axis in range(2):
        if op[axis] >= s[axis] and op[axis] >= d[axis]:
            raise ValueError(f"conv_transpose2d: output_padding {op} must be smaller than the stride {s} or the "
                             f"dilation {d} in each dimension (PyTorch's rule); use output_padding < stride")
    out_hw = tuple((size - 1) * s[i] - 2 * p[i] + d[i] * (kernel[i] - 1) + op[i] + 1
                   for i, size in enumerate(xa.shape[-2:]))
    if min(out_hw) < 1:
        raise ValueError(f"conv_transpose2d: the output would be {out_hw} (< 1): padding {p} removes more than "
                         f"(H - 1) * stride + dilation * (k - 1) + 1 for an input of {xa.shape[-2:]}; pad less")
    geom = ConvGeometry(s, ((p[0], p[0]), (p[1], p[1])), d, g)
    if not batched:
        x = Unsqueeze.apply(x, axis=0)
    y = _conv.ConvTranspose2d.apply(x, weight, bias, in_hw=out_hw, geom=geom)
    return y if batched else Squeeze.apply(y, axis=0)


def _window_args(op: str, kernel_size: Any, dilation: Any, padding: Any, stride: Any) -> tuple:
    k = pair(op, "kernel_size", kernel_size, 1)
    d, p, s = pair(op, "dilation", dilation, 1), pair(op, "padding", padding, 0), pair(op, "stride", stride, 1)
    return k, s, ((p[0], p[0]), (p[1], p[1])), d


def unfold(input: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> Tensor:
    """im2col (PyTorch's ``unfold``): x (N, C, H, W) -> (N, C*kh*kw, L), column l = the (padded) input patch under
    output position l (row-major over (Ho, Wo)), its rows ordered (c, p, q). ``conv2d(x, w)`` equals
    ``(w.reshape(O, -1) @ unfold(x, k)).reshape(N, O, Ho, Wo)``.

    Computed as a depthwise convolution with one-hot kernels, so it runs on the convolution backend: exact in
    float32 and float64 at the default float32 matmul precision ("highest"); "medium" rounds it to bfloat16.
    """
    x = _as_input(input)
    xa = _array(x)
    batched = _batched("unfold", xa, "N, C, H, W")
    if xa.dtype.kind != "f":
        raise TypeError(f"unfold: expected a floating-point input, got dtype {xa.dtype}")
    k, s, p, d = _window_args("unfold", kernel_size, dilation, padding, stride)
    geom = _geometry("unfold", s, p, d, xa.shape[-3], xa.shape[-2:], k)
    if not batched:
        x = Unsqueeze.apply(x, axis=0)
    y = _conv.Unfold.apply(x, kernel_hw=k, geom=geom)
    return y if batched else Squeeze.apply(y, axis=0)


def fold(input: Any, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
         stride: Any = 1) -> Tensor:
    """col2im (PyTorch's ``fold``), the transpose of ``unfold``: cols (N, C*kh*kw, L) -> (N, C, H, W) with
    (H, W) = ``output_size``; each column's patch is added back at its position, so overlapping patches sum
    (``fold(unfold(x))`` is x times the number of patches covering each pixel)."""
    cols = _as_input(input)
    ca = _array(cols)
    batched = _batched("fold", ca, "N, C*kh*kw, L")
    if ca.dtype.kind != "f":
        raise TypeError(f"fold: expected a floating-point input, got dtype {ca.dtype}")
    k, s, p, d = _window_args("fold", kernel_size, dilation, padding, stride)
    hw = pair("fold", "output_size", output_size, 1)
    ckk, length = ca.shape[-2:]
    if ckk % (k[0] * k[1]):
        raise ValueError(f"fold: the input's {ckk} rows must be C * kh * kw, a multiple of the kernel's {k[0] * k[1]} "
                         f"taps (kernel_size={k})")
    geom = _geometry("fold", s, p, d, ckk // (k[0] * k[1]), hw, k)
    blocks = geom.output_size(hw, k)
    if blocks[0] * blocks[1] != length:
        raise ValueError(f"fold: output_size {hw} with kernel_size {k}, stride {s}, padding {p[0][0], p[1][0]}, "
                         f"dilation {d} has {blocks[0]} x {blocks[1]} = {blocks[0] * blocks[1]} blocks, but the input "
                         f"has L = {length} columns; pass the output_size the columns were unfolded from")
    if not batched:
        cols = Unsqueeze.apply(cols, axis=0)
    y = _conv.Fold.apply(cols, in_hw=hw, kernel_hw=k, geom=geom)
    return y if batched else Squeeze.apply(y, axis=0)
