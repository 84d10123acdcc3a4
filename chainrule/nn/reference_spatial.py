"""Slow, looped references for the spatial layers (CS231n's "naive" pooling and spatial batchnorm), kept to test
the vectorised ops of ``chainrule.nn._functions.pooling`` against. Plain NumPy, float64, not on the graph.

Each loops over samples, channels and output positions and scans each window tap by tap, the way the lecture (and
PyTorch's CPU kernel) writes it.
"""

from __future__ import annotations

import math

import numpy as np

from chainrule.nn.reference import batchnorm_naive


def _out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = d * (k - 1) + 1
    n = (size + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    return n - 1 if ceil_mode and (n - 1) * s >= size + p else n


def max_pool_naive(x: np.ndarray, dout: np.ndarray | None, kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int] = (0, 0), dilation: tuple[int, int] = (1, 1),
                   ceil_mode: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Max pooling of x (N, C, H, W): (out, indices, dx). Each window is scanned in row-major order and a value
    wins if it is greater than the best so far or NaN (PyTorch's CPU rule); the best starts at -inf on the first
    in-bounds position. ``dx`` adds each dout to its window's winner (None if dout is None)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho, wo = _out_size(h, kh, sh, ph, dh, ceil_mode), _out_size(w, kw, sw, pw, dw, ceil_mode)
    out = np.empty((n, c, ho, wo))
    idx = np.empty((n, c, ho, wo), dtype=np.int64)
    for i in range(n):
        for ch in range(c):
            for oh in range(ho):
                for ow in range(wo):
                    rows = [oh * sh - ph + a * dh for a in range(kh)]
                    cols = [ow * sw - pw + b * dw for b in range(kw)]
                    rows = [r for r in rows if 0 <= r < h]
                    cols = [q for q in cols if 0 <= q < w]
                    best, where = -math.inf, rows[0] * w + cols[0]
                    for r in rows:
                        for q in cols:
                            v = x[i, ch, r, q]
                            if v > best or math.isnan(v):
                                best, where = v, r * w + q
                    out[i, ch, oh, ow], idx[i, ch, oh, ow] = best, where
    if dout is None:
        return out, idx, None
    dx = np.zeros((n, c, h * w))
    for i in range(n):
        for ch in range(c):
            for o, j in zip(dout[i, ch].ravel(), idx[i, ch].ravel()):
                dx[i, ch, j] += o
    return out, idx, dx.reshape(x.shape)


def avg_pool_naive(x: np.ndarray, dout: np.ndarray | None, kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int] = (0, 0), ceil_mode: bool = False, count_include_pad: bool = True,
                   divisor_override: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Average pooling of x (N, C, H, W): (out, dx), PyTorch's divisor (the window clipped to input + padding
    with ``count_include_pad``, else to the input; or ``divisor_override``)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = _out_size(h, kh, sh, ph, 1, ceil_mode), _out_size(w, kw, sw, pw, 1, ceil_mode)
    out = np.zeros((n, c, ho, wo))
    dx = np.zeros(x.shape)
    for oh in range(ho):
        for ow in range(wo):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)
            pool = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            div = divisor_override or (pool if count_include_pad else (h1 - h0) * (w1 - w0))
            for i in range(n):
                for ch in range(c):
                    out[i, ch, oh, ow] = x[i, ch, h0:h1, w0:w1].sum() / div
                    if dout is not None:
                        dx[i, ch, h0:h1, w0:w1] += dout[i, ch, oh, ow] / div
    return out, (None if dout is None else dx)


def spatial_batchnorm_naive(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, dout: np.ndarray,
                            eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training-mode batchnorm of x (N, C, H, W) per channel, CS231n's way: every (n, h, w) position is a sample
    of (N*H*W, C) features, through ``batchnorm_naive``. Returns out, dx, dgamma, dbeta."""
    n, c, h, w = x.shape
    flat = x.transpose(0, 2, 3, 1).reshape(-1, c)
    out, dx, dgamma, dbeta = batchnorm_naive(flat, gamma, beta, dout.transpose(0, 2, 3, 1).reshape(-1, c), eps)
    out, dx = (a.reshape(n, h, w, c).transpose(0, 3, 1, 2) for a in (out, dx))
    return out, dx, dgamma, dbeta
