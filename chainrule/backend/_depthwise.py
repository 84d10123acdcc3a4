"""Depthwise convolutions on NumPy (groups = C, weight (C*M, 1, kh, kw)): one multiply-add per kernel tap.

im2col's per-group GEMMs degenerate here: C products of K = kh*kw taps by M outputs each, too thin for BLAS (about
50x slower than oneDNN on a 64-channel 3x3 layer). Each output channel reads one input channel, so the convolution
is a sum over the kh*kw taps of a window view (N, Ho, Wo, C) times that tap's weights, broadcast over positions:
kh*kw elementwise passes, no gathered matrix, no GEMM. ``chainrule.backend._im2col`` sends depthwise convolutions
with few outputs per channel here, with its windows (N, Ho, Wo, kh, kw, C) and its blocks of output rows (the
temporaries are one block); layouts are its (channels-last in and out). Output channel c*M + m reads input
channel c, as in PyTorch.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

Blocks = Callable[[int, int, int, int], Iterator[tuple[int, int, int, int]]]

MAX_MULTIPLIER = 4  # up to this many outputs per channel (M) here; more (unfold's one-hot kernels) go to im2col
BLOCK_BYTES = 2**20  # output rows per pass: small enough that a block's kh*kw passes stay in the CPU's cache


def taps(w: np.ndarray, channels: int) -> np.ndarray:
    """w (C*M, 1, kh, kw) as (kh, kw, C, M): each tap's weights, to broadcast over (N, Ho, Wo, C, M)."""
    o, _, kh, kw = w.shape
    return w[:, 0].reshape(channels, o // channels, kh, kw).transpose(2, 3, 0, 1)


def forward(windows: np.ndarray, w: np.ndarray, b: np.ndarray | None, blocks: Blocks) -> np.ndarray:
    """y (N, Ho, Wo, C*M) (C-contiguous) = sum over taps (p, q) of windows[..., p, q, :] * w[:, 0, p, q], + b."""
    n, ho, wo, kh, kw, c = windows.shape
    t = taps(w, c)
    m = t.shape[3]
    y = np.zeros((n, ho, wo, c, m), dtype=windows.dtype)
    tmp = None
    for n0, n1, h0, h1 in blocks(n, ho, wo * c * m * y.itemsize, BLOCK_BYTES):
        out = y[n0:n1, h0:h1]
        if tmp is None:  # the first block is the largest
            tmp = np.empty(out.shape, dtype=y.dtype)
        part = tmp[:out.shape[0], :out.shape[1]]
        for p in range(kh):
            for q in range(kw):
                np.multiply(windows[n0:n1, h0:h1, :, p, q, :, None], t[p, q], out=part)
                out += part
    y = y.reshape(n, ho, wo, c * m)
    if b is not None:
        y += b
    return y


def weight_grad(windows: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """gw (C*M, 1, kh, kw) from the windows and gy (N, Ho, Wo, C*M) (channels-last rows): per tap, the sum over
    positions of the window times gy."""
    n, ho, wo, kh, kw, c = windows.shape
    m = gy.shape[3] // c
    gy5 = gy.reshape(n, ho, wo, c, m)
    gw = np.empty((c, m, kh, kw), dtype=gy.dtype)
    for p in range(kh):
        for q in range(kw):
            gw[:, :, p, q] = np.einsum("nhwc,nhwcm->cm", windows[:, :, :, p, q, :], gy5)
    return gw.reshape(c * m, 1, kh, kw)


def data_grad(gy: np.ndarray, w: np.ndarray, target: np.ndarray, stride: tuple[int, int],
              dilation: tuple[int, int], blocks: Blocks) -> None:
    """Add the input gradient into ``target`` (N, Hp, Wp, C), the padded channels-last buffer: each tap (p, q)
    sends gy (N, Ho, Wo, C*M) times its weights to the pixels it read."""
    n, ho, wo, o = gy.shape
    c = target.shape[3]
    t = taps(w, c)
    _, kh, kw = w.shape[1:]
    gy5 = gy.reshape(n, ho, wo, c, o // c)
    (sh, sw), (dh, dw) = stride, dilation
    for n0, n1, h0, h1 in blocks(n, ho, wo * o * gy.itemsize, BLOCK_BYTES):
        g = gy5[n0:n1, h0:h1]
        for p in range(kh):
            for q in range(kw):
                rows = slice(h0 * sh + p * dh, h0 * sh + p * dh + (h1 - h0 - 1) * sh + 1, sh)
                cols = slice(q * dw, q * dw + (wo - 1) * sw + 1, sw)
                if g.shape[4] == 1:
                    target[n0:n1, rows, cols] += g[..., 0] * t[p, q, :, 0]
                else:
                    target[n0:n1, rows, cols] += np.einsum("nhwcm,cm->nhwc", g, t[p, q])
