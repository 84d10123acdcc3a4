"""Naive convolution (CS231n's ``conv_forward_naive`` / ``conv_backward_naive``): loops over output positions.

Readable, slow, float64: they define what the im2col path (``chainrule.backend._im2col``) and every other
implementation must compute, and the tests hold them against each other and against PyTorch. Plain NumPy, off the
autograd graph. Shapes: x (N, C, H, W), w (O, C/groups, kh, kw), b (O,), y (N, O, Ho, Wo); ``stride``,
``dilation`` are (sh, sw), (dh, dw) and ``padding`` is ((top, bottom), (left, right)).
"""

from __future__ import annotations

import numpy as np

Pair = tuple[int, int]


def _pad(x: np.ndarray, padding: tuple[Pair, Pair]) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), padding[0], padding[1]))


def _out_size(size: int, k: int, s: int, d: int, pad: Pair) -> int:
    return (size + pad[0] + pad[1] - d * (k - 1) - 1) // s + 1


def conv2d_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: Pair = (1, 1),
                 padding: tuple[Pair, Pair] = ((0, 0), (0, 0)), dilation: Pair = (1, 1), groups: int = 1) -> np.ndarray:
    """y[n, o, i, j] = b[o] + sum over the group's channels c and taps (p, q) of
    w[o, c, p, q] * x_padded[n, group(o) * C/G + c, i * sh + p * dh, j * sw + q * dw]."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    (sh, sw), (dh, dw) = stride, dilation
    ho, wo = _out_size(h, kh, sh, dh, padding[0]), _out_size(wd, kw, sw, dw, padding[1])
    xp = _pad(x, padding)
    y = np.zeros((n, o, ho, wo), dtype=np.result_type(x, w))
    for s in range(n):
        for f in range(o):
            first = (f // og) * cg  # the group's first input channel
            for i in range(ho):
                for j in range(wo):
                    patch = xp[s, first:first + cg, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                               j * sw:j * sw + dw * (kw - 1) + 1:dw]
                    y[s, f, i, j] = np.sum(patch * w[f]) + (b[f] if b is not None else 0.0)
    return y


def conv2d_backward_naive(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair = (1, 1),
                          padding: tuple[Pair, Pair] = ((0, 0), (0, 0)), dilation: Pair = (1, 1),
                          groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) of ``conv2d_naive`` for the upstream dy (N, O, Ho, Wo): each output position sends dy back to
    the patch it read (dx) and to the weights, times that patch (dw). dy may cover fewer positions than the
    geometry gives (conv_transpose2d's output_padding): the rest read nothing."""
    n, o, ho, wo = dy.shape
    _, cg, kh, kw = w.shape
    og = o // groups
    (sh, sw), (dh, dw_) = stride, dilation
    xp = _pad(x, padding)
    dxp = np.zeros_like(xp, dtype=np.result_type(dy, w))
    dw = np.zeros(w.shape, dtype=np.result_type(dy, x))
    for s in range(n):
        for f in range(o):
            first = (f // og) * cg
            for i in range(ho):
                for j in range(wo):
                    rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                    cols = slice(j * sw, j * sw + dw_ * (kw - 1) + 1, dw_)
                    dxp[s, first:first + cg, rows, cols] += dy[s, f, i, j] * w[f]
                    dw[f] += dy[s, f, i, j] * xp[s, first:first + cg, rows, cols]
    (top, _), (left, _) = padding
    dx = dxp[:, :, top:top + x.shape[2], left:left + x.shape[3]]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def conv_transpose2d_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: Pair = (1, 1),
                           padding: Pair = (0, 0), output_padding: Pair = (0, 0), dilation: Pair = (1, 1),
                           groups: int = 1) -> np.ndarray:
    """The transposed convolution as the lecture draws it: every input pixel x[n, c, i, j] paints its weights
    w[c, :, :, :] (scaled by the pixel) onto the output at (i * sh - ph + p * dh, j * sw - pw + q * dw).

    x (N, Cin, H, W), w (Cin, Cout/G, kh, kw) (PyTorch's layout) -> (N, Cout, Ho, Wo) with
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + output_padding_h + 1."""
    n, cin, h, wd = x.shape
    _, cg_out, kh, kw = w.shape
    cg_in = cin // groups
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + output_padding[0] + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + output_padding[1] + 1
    big = np.zeros((n, cg_out * groups, ho + 2 * ph + sh + dh * kh, wo + 2 * pw + sw + dw * kw),
                   dtype=np.result_type(x, w))
    for s in range(n):
        for c in range(cin):
            first = (c // cg_in) * cg_out  # the group's first output channel
            for i in range(h):
                for j in range(wd):
                    big[s, first:first + cg_out, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                        j * sw:j * sw + dw * (kw - 1) + 1:dw] += x[s, c, i, j] * w[c]
    y = big[:, :, ph:ph + ho, pw:pw + wo]
    return y + b[None, :, None, None] if b is not None else y.copy()


def unfold_naive(x: np.ndarray, kernel_size: Pair, dilation: Pair = (1, 1), padding: Pair = (0, 0),
                 stride: Pair = (1, 1)) -> np.ndarray:
    """im2col as PyTorch's ``unfold``: x (N, C, H, W) -> (N, C * kh * kw, L), column l = the patch at output
    position l (row-major over (Ho, Wo)), its rows ordered (c, p, q)."""
    n, c, h, wd = x.shape
    kh, kw = kernel_size
    (sh, sw), (dh, dw), (ph, pw) = stride, dilation, padding
    xp = _pad(x, ((ph, ph), (pw, pw)))
    ho, wo = _out_size(h, kh, sh, dh, (ph, ph)), _out_size(wd, kw, sw, dw, (pw, pw))
    cols = np.zeros((n, c * kh * kw, ho * wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
            cols[:, :, i * wo + j] = patch.reshape(n, -1)
    return cols


def fold_naive(cols: np.ndarray, output_size: Pair, kernel_size: Pair, dilation: Pair = (1, 1),
               padding: Pair = (0, 0), stride: Pair = (1, 1)) -> np.ndarray:
    """col2im as PyTorch's ``fold``: each column adds its patch back at its position (overlaps add up):
    (N, C * kh * kw, L) -> (N, C, H, W) with (H, W) = ``output_size``."""
    n, ckk, _ = cols.shape
    kh, kw = kernel_size
    c = ckk // (kh * kw)
    h, wd = output_size
    (sh, sw), (dh, dw), (ph, pw) = stride, dilation, padding
    ho, wo = _out_size(h, kh, sh, dh, (ph, ph)), _out_size(wd, kw, sw, dw, (pw, pw))
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=cols.dtype)
    for i in range(ho):
        for j in range(wo):
            xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw] += \
                cols[:, :, i * wo + j].reshape(n, c, kh, kw)
    return xp[:, :, ph:ph + h, pw:pw + wd]
