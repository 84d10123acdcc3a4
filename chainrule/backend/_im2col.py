"""The NumPy convolution: im2col + GEMM, the lecture's fast path (and chainrule's fallback without oneDNN).

Shapes: x (N, C, H, W), weight (O, C/G, kh, kw) with G = groups, y (N, O, Ho, Wo); K = kh * kw * C/G is a group's
patch length. Every GEMM goes through ``chainrule.backend.gemm`` (one BLAS for the whole step; float32 products
follow ``set_float32_matmul_precision``).

im2col. The input is viewed channels-last (N, H, W, C), padded once into a zero buffer when the geometry pads, and
``numpy.lib.stride_tricks.sliding_window_view`` turns it into the windows (N, Ho, Wo, kh, kw, C) without copying
(stride and dilation are slices of that view). Reshaping a block of those windows into the im2col matrix
(rows = N*Ho*Wo output positions, columns = G groups of K = (kh, kw, C/G) taps) is the one gathering copy; each
group's columns are a contiguous column block, so every group's product is one GEMM on views::

    y[rows, group g's O/G channels] = cols[rows, group g's K taps] @ w_g^T      (rows, K) x (K, O/G)

Depthwise convolutions (one input channel per group, at most ``_depthwise.MAX_MULTIPLIER`` outputs each) have no
GEMM worth the name: ``chainrule.backend._depthwise`` computes them with one multiply-add per kernel tap instead.

Memory. The im2col matrix is built for one block of output rows at a time, at most ``CHUNK_BYTES`` (64 MiB): whole
samples when one fits, else runs of output rows of one sample (a block never has less than one output row, so a
single row larger than the cap, (Wo * K) elements, is the one case that exceeds it). The backward passes use the
same blocks for their (rows, G*K) matrices.

Layouts (what each function returns):

- ``conv2d_forward`` -> y (N, O, Ho, Wo) with channels-last memory: the transpose (0, 3, 1, 2) of the GEMMs'
  C-contiguous (N, Ho, Wo, O) result, kept as it is (no reorder). A channels-last x (``x.transpose(0, 2, 3, 1)``
  C-contiguous, as the previous layer returns it) is read without a copy when the geometry does not pad; any other x
  is copied once into a channels-last (padded) buffer.
- ``conv2d_backward_data`` -> gx (N, C, H, W) channels-last: for stride 1 the forward's layout (it is computed as
  a forward convolution of the padded gy), for other strides a view into the (padded) channels-last buffer the
  columns were added into (col2im, one strided add per kernel tap).
- ``conv2d_backward_weight`` -> gw (O, C/G, kh, kw) C-contiguous (the parameters' own layout; a small copy), gb (O,).
- gy (N, O, Ho, Wo) is read as channels-last rows: free when it is channels-last (the forward's layout, kept by
  elementwise ops), else one copy.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chainrule.backend import _depthwise
from chainrule.backend.blas import gemm
from chainrule.backend.conv_geometry import ConvGeometry

CHUNK_BYTES = 64 * 2**20  # the cap on one im2col block (bytes)
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what this implementation computes

Pair = tuple[int, int]


def _channels_last(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """x (N, C, H, W) as (N, Hp, Wp, C), padded with zeros: the view x.transpose(0, 2, 3, 1) itself when it is
    C-contiguous and nothing is padded, else one copy."""
    xh = x.transpose(0, 2, 3, 1)
    (top, bottom), (left, right) = geom.padding
    if not (top or bottom or left or right):
        return xh if xh.flags.c_contiguous else np.ascontiguousarray(xh)
    n, h, w, c = xh.shape
    buf = np.zeros((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
    buf[:, top:top + h, left:left + w] = xh
    return buf


def _rows(gy: np.ndarray) -> np.ndarray:
    """gy (N, O, Ho, Wo) as the C-contiguous matrix (N*Ho*Wo, O): free for channels-last memory."""
    n, o, ho, wo = gy.shape
    return np.ascontiguousarray(gy.transpose(0, 2, 3, 1)).reshape(n * ho * wo, o)


def _windows(xh: np.ndarray, kernel_hw: Pair, out_hw: Pair, geom: ConvGeometry) -> np.ndarray:
    """The padded input's windows (N, Ho, Wo, kh, kw, C): a strided view, no copy."""
    (kh, kw), (ho, wo) = kernel_hw, out_hw
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    v = sliding_window_view(xh, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2))  # (N, H', W', C, span, span)
    v = v[:, :(ho - 1) * sh + 1:sh, :(wo - 1) * sw + 1:sw, :, ::dh, ::dw]
    return v.transpose(0, 1, 2, 4, 5, 3)


def _grouped(windows: np.ndarray, groups: int) -> np.ndarray:
    """(N, Ho, Wo, kh, kw, C) -> (N, Ho, Wo, G, kh, kw, C/G): each group's taps together (a view)."""
    n, ho, wo, kh, kw, c = windows.shape
    return windows.reshape(n, ho, wo, kh, kw, groups, c // groups).transpose(0, 1, 2, 5, 3, 4, 6)


def _weight_matrices(w: np.ndarray, groups: int) -> np.ndarray:
    """w (O, C/G, kh, kw) as G matrices (G, O/G, K) with K in the im2col's (kh, kw, C/G) order (a small copy)."""
    o, cg, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(groups, o // groups, cg, kh, kw).transpose(0, 1, 3, 4, 2)).reshape(
        groups, o // groups, kh * kw * cg)


def blocks(n: int, ho: int, row_bytes: int, cap: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """(n0, n1, h0, h1): blocks of output rows (samples n0:n1, output rows h0:h1) whose im2col matrix, at
    ``row_bytes`` per output row, fits in ``cap`` bytes (``CHUNK_BYTES``), in order; see the module docstring."""
    cap = CHUNK_BYTES if cap is None else cap
    sample = max(ho * row_bytes, 1)
    if sample <= cap:
        step = cap // sample
        for n0 in range(0, n, step):
            yield n0, min(n, n0 + step), 0, ho
        return
    step = max(1, cap // max(row_bytes, 1))
    for i in range(n):
        for h0 in range(0, ho, step):
            yield i, i + 1, h0, min(ho, h0 + step)


def _im2col(windows: np.ndarray, n0: int, n1: int, h0: int, h1: int, buf: list) -> np.ndarray:
    """The im2col matrix (rows, G*K) of one block: a view of the windows when their strides allow one (1x1 kernels
    on channels-last input), else the gathering copy, into one buffer reused by every block (``buf``: a list
    holding it, allocated on first use)."""
    block = windows[n0:n1, h0:h1]
    shape = (block.shape[0] * block.shape[1] * block.shape[2], int(np.prod(block.shape[3:])))
    try:
        return np.reshape(block, shape, copy=False)
    except (ValueError, TypeError):  # needs a copy (TypeError: NumPy < 2.1 has no copy=; copy then too)
        pass
    if not buf or buf[0].shape[0] < shape[0]:
        buf[:] = [np.empty(shape, dtype=block.dtype)]
    cols = buf[0][:shape[0]]
    np.copyto(cols.reshape(block.shape), block)
    return cols


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geom: ConvGeometry) -> np.ndarray:
    """y (N, O, Ho, Wo) = x (N, C, H, W) convolved with w (O, C/G, kh, kw), plus b (O,); channels-last memory."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    g = geom.groups
    og = o // g
    ho, wo = geom.output_size((h, wd), (kh, kw))
    windows = _windows(_channels_last(x, geom), (kh, kw), (ho, wo), geom)
    if _is_depthwise(w, g):
        return _depthwise.forward(windows, w, b, blocks).transpose(0, 3, 1, 2)
    windows = _grouped(windows, g)
    wm = _weight_matrices(w, g)
    k = wm.shape[2]
    y = np.empty((n, ho, wo, o), dtype=x.dtype)
    y2 = y.reshape(-1, o)
    buf: list = []
    for n0, n1, h0, h1 in blocks(n, ho, wo * g * k * x.itemsize):
        cols = _im2col(windows, n0, n1, h0, h1, buf)
        r0 = (n0 * ho + h0) * wo
        out = y2[r0:r0 + cols.shape[0]]
        for j in range(g):
            gemm(cols[:, j * k:(j + 1) * k], wm[j], trans_b=True, out=out[:, j * og:(j + 1) * og])
    if b is not None:
        y2 += b
    return y.transpose(0, 3, 1, 2)


def conv2d_backward_data(gy: np.ndarray, w: np.ndarray, in_hw: Pair, geom: ConvGeometry) -> np.ndarray:
    """gx (N, C, H, W), the gradient of the input of size ``in_hw`` from gy (N, O, Ho, Wo) (col2im of gy @ w).

    Stride 1: the forward convolution of gy, zero-padded by the dilated kernel span (less the forward's padding),
    with the kernel flipped and its channel axes swapped (one gather and one GEMM per block, like the forward).
    Other strides: col2im, one GEMM per block then one strided add per kernel tap (the padded gy of the first
    method would be mostly inserted zeros). gy may cover fewer output positions than ``geom`` gives for ``in_hw``
    (conv_transpose2d with an output_padding of at least the stride): the input pixels only the missing positions
    read get zero."""
    if geom.stride == (1, 1) and not _is_depthwise(w, geom.groups):
        return _backward_data_as_conv(gy, w, in_hw, geom)
    n, o, ho, wo = gy.shape
    _, cg, kh, kw = w.shape
    g = geom.groups
    og = o // g
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    (top, bottom), (left, right) = geom.padding
    h, wd = in_hw
    _check_covered(gy.shape[2:], in_hw, (kh, kw), geom)
    gx = np.zeros((n, h + top + bottom, wd + left + right, g * cg), dtype=gy.dtype)
    if _is_depthwise(w, g):
        _depthwise.data_grad(_rows(gy).reshape(n, ho, wo, o), w, gx, geom.stride, geom.dilation, blocks)
        return gx[:, top:top + h, left:left + wd].transpose(0, 3, 1, 2)
    wm = _weight_matrices(w, g)
    k = wm.shape[2]
    rows = _rows(gy)
    target = gx.reshape(gx.shape[:3] + (g, cg))  # (N, Hp, Wp, G, C/G), a view
    buf = None
    for n0, n1, h0, h1 in blocks(n, ho, wo * g * k * gy.itemsize):
        r0 = (n0 * ho + h0) * wo
        r1 = r0 + (n1 - n0) * (h1 - h0) * wo
        if buf is None:  # the first block is the largest
            buf = np.empty((r1 - r0, g * k), dtype=gy.dtype)
        cols = buf[:r1 - r0]
        for j in range(g):
            gemm(rows[r0:r1, j * og:(j + 1) * og], wm[j], out=cols[:, j * k:(j + 1) * k])
        taps = cols.reshape(n1 - n0, h1 - h0, wo, g, kh, kw, cg)
        for i in range(kh):  # col2im: each kernel tap's column block adds into the pixels it read
            row = h0 * sh + i * dh
            for jj in range(kw):
                col = jj * dw
                target[n0:n1, row:row + (h1 - h0 - 1) * sh + 1:sh, col:col + (wo - 1) * sw + 1:sw] += \
                    taps[:, :, :, :, i, jj]
    return gx[:, top:top + h, left:left + wd].transpose(0, 3, 1, 2)


def _backward_data_as_conv(gy: np.ndarray, w: np.ndarray, in_hw: Pair, geom: ConvGeometry) -> np.ndarray:
    """gx for stride 1: gx[j] = sum_i gy[j + pad - i*d] w[i] is a convolution of gy padded by d*(k-1) - pad at the
    top/left (cropped where that is negative) to (H + d*(k-1)) rows, with the flipped kernel."""
    n, o, ho, wo = gy.shape
    _, cg, kh, kw = w.shape
    g = geom.groups
    (dh, dw), ((top, _), (left, _)) = geom.dilation, geom.padding
    h, wd = in_hw
    span_h, span_w = dh * (kh - 1), dw * (kw - 1)
    buf = np.zeros((n, h + span_h, wd + span_w, o), dtype=gy.dtype)
    shift_h, shift_w = span_h - top, span_w - left  # where gy's row/column 0 lands in buf (may be < 0)
    src_h, src_w = max(0, -shift_h), max(0, -shift_w)
    dst_h, dst_w = max(0, shift_h), max(0, shift_w)
    rows, cols = min(ho - src_h, buf.shape[1] - dst_h), min(wo - src_w, buf.shape[2] - dst_w)
    if rows > 0 and cols > 0:
        buf[:, dst_h:dst_h + rows, dst_w:dst_w + cols] = gy.transpose(0, 2, 3, 1)[:, src_h:src_h + rows,
                                                                                 src_w:src_w + cols]
    flipped = w.reshape(g, o // g, cg, kh, kw)[..., ::-1, ::-1].transpose(0, 2, 1, 3, 4).reshape(g * cg, o // g,
                                                                                                 kh, kw)
    return conv2d_forward(buf.transpose(0, 3, 1, 2), flipped, None, ConvGeometry(dilation=geom.dilation, groups=g))


def conv2d_backward_weight(x: np.ndarray, gy: np.ndarray, kernel_hw: Pair, geom: ConvGeometry,
                           bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(gw (O, C/G, kh, kw), gb (O,) if ``bias`` else None) from x (N, C, H, W) and gy (N, O, Ho, Wo).

    gy may cover fewer output positions than ``geom`` gives (see ``conv2d_backward_data``)."""
    n, c, h, wd = x.shape
    _, o, ho, wo = gy.shape
    kh, kw = kernel_hw
    g = geom.groups
    og, cg = o // g, c // g
    _check_covered((ho, wo), (h, wd), kernel_hw, geom)
    windows = _windows(_channels_last(x, geom), kernel_hw, (ho, wo), geom)
    rows = _rows(gy)
    if cg == 1 and og <= _depthwise.MAX_MULTIPLIER:
        gw = _depthwise.weight_grad(windows, rows.reshape(n, ho, wo, o))
        return gw, (rows.sum(axis=0) if bias else None)
    windows = _grouped(windows, g)
    k = kh * kw * cg
    gw = np.zeros((g, og, k), dtype=x.dtype)
    buf: list = []
    for n0, n1, h0, h1 in blocks(n, ho, wo * g * k * x.itemsize):
        cols = _im2col(windows, n0, n1, h0, h1, buf)
        r0 = (n0 * ho + h0) * wo
        for j in range(g):
            gemm(rows[r0:r0 + cols.shape[0], j * og:(j + 1) * og], cols[:, j * k:(j + 1) * k], trans_a=True,
                 out=gw[j], beta=1.0)
    gw = np.ascontiguousarray(gw.reshape(g, og, kh, kw, cg).transpose(0, 1, 4, 2, 3)).reshape(o, cg, kh, kw)
    return gw, (rows.sum(axis=0) if bias else None)


def _is_depthwise(w: np.ndarray, groups: int) -> bool:
    """One input channel per group (groups = C) and few outputs per channel: ``_depthwise``'s per-tap path."""
    return w.shape[1] == 1 and w.shape[0] // groups <= _depthwise.MAX_MULTIPLIER


def _check_covered(out_hw: Pair, in_hw: Pair, kernel_hw: Pair, geom: ConvGeometry) -> None:
    full = geom.output_size(in_hw, kernel_hw)
    if out_hw[0] > full[0] or out_hw[1] > full[1]:
        raise ValueError(f"conv2d backward: the gradient covers {tuple(out_hw)} output positions but an input of "
                         f"{tuple(in_hw)} has only {full} with this geometry; pass the forward input's size")
