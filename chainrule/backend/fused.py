"""Fused single-pass kernels for the non-GEMM work of a training step, compiled with numba where it is installed.

Once the products run in bfloat16 (``set_float32_matmul_precision("medium")``), the memory-bound NumPy passes
around them are a large part of an MLP step: the optimizer's update is eight NumPy passes over every parameter for
Nesterov SGD with weight decay, and a training batch is gathered, padded, cropped, flipped, transposed and made
contiguous in five. Each kernel here does the same arithmetic in one pass over memory, with numba (the optional
dependency the kNN kernels use); the NumPy code it replaces stays where it was, as the fallback and the reference
the tests hold it to (bit for bit):

- ``sgd_nesterov_update``: ``g' = g + wd x; buf = mu buf + g'; x -= lr (g' + mu buf)``, ``chainrule.optim.SGD``'s
  Nesterov update with L2 weight decay in the same order of operations, reading x, g, buf once and writing x and
  buf (``SGD`` calls it);
- ``gather_flip_crop``: ``out[i] = crop(flip(X[idx[i]]))``, ``DataLoader``'s gather followed by ``FlipCrop``'s flip
  and zero-padded crop for given draws, written straight into the flattened (B, H*W*C) float32 batch
  (``FlipCrop.take`` calls it).

- ``gelu_erf`` / ``gelu_erf_backward``: the exact GELU ``x Phi(x)`` and its gradient, one oneDNN eltwise pass each
  (``chainrule.backend._onednn_eltwise``) for float32 arrays when the oneDNN convolution backend is selected (its
  OpenMP pool is then the one a conv net's step runs on; NumPy has no erf, and the formula's passes cost a conv
  net's step more than any layer but the convolutions).

- ``max_pool2d`` / ``max_pool2d_backward``: max pooling's window maxima with their winning taps, and its gradient
  routed to them, one oneDNN pooling pass each (``chainrule.backend._onednn_pool``) for float32 (N, C, H, W) arrays,
  NCHW or channels-last, when the oneDNN convolution backend is selected (the NumPy path is a few passes per kernel
  tap; a conv net pools after its convolutions).

- ``batch_norm_forward`` / ``batch_norm_inference`` / ``batch_norm_backward``: batch normalization of float32
  channels-last (N, C, H, W) activations, as oneDNN's batch normalization kernels
  (``chainrule.backend._onednn_norm``), under the same condition as the GELU (the NumPy formula's passes and
  reductions cost a conv net's step about as much as its convolutions).

Each returns a "not handled" value (False / None) when numba is missing (or ``CHAINRULE_NO_NUMBA=1``; for the
oneDNN kernels -- GELU, max pooling, batch norm: oneDNN is not the convolution backend) or the arrays are not ones
it computes (float32, C-contiguous; for the GELU any dense layout; for max pooling the cases listed at
``max_pool2d``; for batch norm 4-D channels-last), and the caller runs its NumPy code: the dispatch is in these
calls, nowhere else. ``bench/ablate_mlp.py --fused-bench`` times the numba kernels against that code,
``bench/bench_pool.py`` the max pooling, ``bench/bench_norm.py`` the batch norm.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - exercised where numba is absent
    njit = None

AVAILABLE = njit is not None and os.environ.get("CHAINRULE_NO_NUMBA", "") in ("", "0")


def _sgd_loops(x, g, buf, lr, mu, wd):  # pragma: no cover - compiled by numba
    for i in range(x.size):
        gi = g[i] + wd * x[i]
        b = mu * buf[i] + gi
        buf[i] = b
        x[i] -= lr * (gi + mu * b)


def _gfc_loops(X, idx, flip, dy, dx, pad, out):  # pragma: no cover - compiled by numba
    n = idx.shape[0]
    h, w, c = X.shape[1], X.shape[2], X.shape[3]
    for i in range(n):
        src = X[idx[i]]
        oy = dy[i] - pad  # output row r reads source row r + oy of the flipped image (zero outside)
        ox = dx[i] - pad
        for r in range(h):
            sr = r + oy
            for q in range(w):
                sq = q + ox
                base = (r * w + q) * c
                if 0 <= sr < h and 0 <= sq < w:
                    col = w - 1 - sq if flip[i] else sq
                    for ch in range(c):
                        out[i, base + ch] = src[sr, col, ch]
                else:
                    for ch in range(c):
                        out[i, base + ch] = 0.0


if AVAILABLE:
    _sgd_kernel = njit(cache=True, nogil=True, fastmath=False)(_sgd_loops)
    _gfc_kernel = njit(cache=True, nogil=True)(_gfc_loops)
else:  # pragma: no cover
    _sgd_kernel = _gfc_kernel = None


def sgd_nesterov_update(x: np.ndarray, g: np.ndarray, buf: np.ndarray, lr: float, momentum: float,
                        weight_decay: float) -> bool:
    """In place: ``g' = g + wd x; buf = mu buf + g'; x -= lr (g' + mu buf)`` for float32 C-contiguous arrays of one
    shape (x and buf updated, g only read); True if done, False (nothing changed) where the kernel cannot run."""
    if x.shape != g.shape or x.shape != buf.shape:
        raise ValueError(f"sgd_nesterov_update: x {x.shape}, g {g.shape} and buf {buf.shape} must have one shape")
    if not (AVAILABLE and all(a.flags.c_contiguous and a.dtype == np.float32 for a in (x, g, buf))):
        return False
    _sgd_kernel(x.reshape(-1), g.reshape(-1), buf.reshape(-1), np.float32(lr), np.float32(momentum),
                np.float32(weight_decay))
    return True


def gather_flip_crop(X: np.ndarray, idx: np.ndarray, flip: np.ndarray, dy: np.ndarray, dx: np.ndarray,
                     padding: int) -> np.ndarray | None:
    """(B, H*W*C) float32: image ``X[idx[i]]`` (X (N, H, W, C) float32, C-contiguous) mirrored where ``flip[i]``, then
    zero-padded by ``padding`` and cropped at offset (dy[i], dx[i]) in [0, 2 padding] (``FlipCrop``'s draws), in one
    pass; None where the kernel cannot run."""
    if not (AVAILABLE and X.dtype == np.float32 and X.flags.c_contiguous and X.ndim == 4):
        return None
    out = np.empty((len(idx), int(np.prod(X.shape[1:]))), dtype=np.float32)
    _gfc_kernel(X, np.asarray(idx, dtype=np.int64), np.asarray(flip, dtype=np.bool_), np.asarray(dy, np.int64),
                np.asarray(dx, np.int64), int(padding), out)
    return out


def gelu_erf(x: np.ndarray) -> np.ndarray | None:
    """``x Phi(x)`` (Phi the standard normal CDF) in x's layout, or None where oneDNN's kernel does not run: x not
    float32 or not dense, or the convolution backend is not ``onednn``."""
    prims = _gelu_primitives(x)
    return None if prims is None else prims.forward(x)


def gelu_erf_backward(x: np.ndarray, grad: np.ndarray) -> np.ndarray | None:
    """``grad (Phi(x) + x phi(x))``, or None where oneDNN's kernel does not run (as ``gelu_erf``)."""
    prims = _gelu_primitives(x)
    if prims is None or not isinstance(grad, np.ndarray) or grad.dtype != np.float32 or grad.shape != x.shape:
        return None
    if grad.strides != x.strides:  # one flat pass needs one layout: bring grad to x's (one copy)
        g = np.empty_like(x)
        g[...] = grad
        grad = g
    return prims.backward(x, grad)


def _gelu_primitives(x: np.ndarray):
    from chainrule.backend import _onednn_eltwise, conv

    if conv._STATE.name != "onednn" or not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.size == 0:
        return None
    return _onednn_eltwise.primitives() if _onednn_eltwise.dense(x) else None


def max_pool2d(x: np.ndarray, window: Any, want_arg: bool) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(out, arg) as ``chainrule.nn._functions.pooling.max_taps`` (the window maxima of x (N, C, H, W) over
    ``window`` and, if ``want_arg``, each window's winning tap), in x's layout, or None where oneDNN's kernel does not
    run: the convolution backend is not ``onednn``; x not float32, not 4-D, empty, or neither C-contiguous nor
    channels-last; a window of exactly 256 taps (oneDNN's winners are int32 there, chainrule's uint8); a problem
    oneDNN 3.2 has only its reference loop for (dilated windows: slower than NumPy's taps); or x holding NaN, -inf
    or the lowest float32 (oneDNN's max skips NaN and starts from the lowest float32, so the NumPy path's rules for
    such windows differ: ``chainrule.backend._onednn_pool``), found by one min-reduction of x after the pass (such
    inputs are rare: the pass is then wasted)."""
    prims = _pool_primitives(x, window)
    fast = None if prims is None else prims.max_forward(x, window, want_arg)
    return fast if fast is not None and _above_lowest(x) else None


def max_pool2d_backward(grad: np.ndarray, arg: np.ndarray, window: Any, channels_last: bool) -> np.ndarray | None:
    """``chainrule.nn._functions.pooling.scatter_taps``: the input gradient (N, C, H, W), channels-last if asked, with
    each grad (N, C, Ho, Wo) added at its window's winning tap ``arg``; or None where oneDNN's kernel does not run
    (as ``max_pool2d``; here grad must be float32, arg (from either path) C-contiguous or channels-last)."""
    prims = _pool_primitives(arg, window, winners=True)
    if prims is None or not isinstance(grad, np.ndarray) or grad.dtype != np.float32 or grad.shape != arg.shape:
        return None
    if [s // grad.itemsize for s in grad.strides] != [s // arg.itemsize for s in arg.strides]:
        g = np.empty_like(arg, dtype=np.float32)  # one pass needs one layout: bring grad to arg's (one copy)
        g[...] = grad
        grad = g
    return prims.max_backward(grad, arg, window, "nhwc" if channels_last else "nchw")


def _pool_primitives(a: np.ndarray, window: Any, winners: bool = False):
    """oneDNN's pooling primitives if they run on ``a`` over ``window``: the input x (float32), or with ``winners``
    the winning taps arg (uint8, or int32 past 256 taps)."""
    from chainrule.backend import _onednn_pool, conv

    taps = window.kernel[0] * window.kernel[1]
    if conv._STATE.name != "onednn" or taps == 256:
        return None
    dtype = _onednn_pool.arg_dtype(taps) if winners else np.float32
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.size == 0:
        return None
    return _onednn_pool.primitives() if _onednn_pool.layout(a) is not None else None


def _above_lowest(x: np.ndarray) -> bool:
    """Whether every element of x (C-contiguous or channels-last) is above the lowest float32: no NaN (the min
    propagates it, and NaN > anything is False), no -inf, no -3.4e38."""
    flat = (x if x.flags.c_contiguous else x.transpose(0, 2, 3, 1)).reshape(-1)  # a view: dense in that order
    return bool(flat.min() > np.finfo(np.float32).min)


def batch_norm_forward(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
                       eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Training batch norm of x (N, C, H, W): (out channels-last, mean (C,), biased variance (C,)), or None where
    oneDNN's kernel does not run: x not float32 channels-last (N, C, H, W), or the convolution backend is not
    ``onednn``. weight (gamma) and bias (beta) are (C,) float32 or None."""
    prims = _norm_primitives(x, weight, bias)
    return None if prims is None else prims.forward_training(x, weight, bias, eps)


def batch_norm_inference(x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray | None,
                         bias: np.ndarray | None, eps: float) -> np.ndarray | None:
    """Batch norm of x (N, C, H, W) with given statistics (C,) (evaluation), or None (as ``batch_norm_forward``)."""
    prims = _norm_primitives(x, mean, var, weight, bias)
    return None if prims is None else prims.forward_inference(x, mean, var, weight, bias, eps)


def batch_norm_backward(x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray | None,
                        with_bias: bool, grad: np.ndarray,
                        eps: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None:
    """The gradients of ``batch_norm_forward`` given grad (x's shape): (gx channels-last, dgamma = sum(grad xhat)
    (C,) if weight is given, dbeta = sum(grad) (C,) if ``with_bias``), or None (as ``batch_norm_forward``, or grad
    not a float32 array of x's shape)."""
    from chainrule.backend import _onednn_conv

    prims = _norm_primitives(x, mean, var, weight)
    if prims is None or not isinstance(grad, np.ndarray) or grad.dtype != np.float32 or grad.shape != x.shape:
        return None
    if not _onednn_conv.is_channels_last(grad):  # the kernel reads grad channels-last (one copy)
        g = _onednn_conv.channels_last(grad.shape)
        g[...] = grad
        grad = g
    return prims.backward(x, mean, var, weight, with_bias, grad, eps)


def _norm_primitives(x: np.ndarray, *vectors: np.ndarray | None):
    """oneDNN's batch norm kernels if they run on x (and the (C,) ``vectors``, each float32 or None), else None."""
    from chainrule.backend import _onednn_conv, _onednn_norm, conv

    if conv._STATE.name != "onednn" or not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.size == 0:
        return None
    if x.ndim != 4 or not _onednn_conv.is_channels_last(x):
        return None
    if any(v is not None and v.dtype != np.float32 for v in vectors):
        return None
    return _onednn_norm.primitives()
