"""Fused single-pass kernels for the non-GEMM work of a training step (prototypes for issue 14; not wired in yet).

Once the products run in bfloat16 (``set_float32_matmul_precision("medium")``), the memory-bound NumPy passes
around them are a large part of an MLP step: the optimizer's update is eight NumPy passes over every parameter for
Nesterov SGD with weight decay, and a training batch is gathered, padded, cropped, flipped, transposed and made
contiguous in five. Each kernel here does the same arithmetic in one pass over memory, compiled with numba (the
optional dependency the kNN kernels use), with a NumPy reference beside it that the tests hold it to:

- ``sgd_nesterov_update``: ``g += wd x; buf = mu buf + g; x -= lr (g + mu buf)`` (``chainrule.optim.SGD``'s
  Nesterov update with L2 weight decay, the same order of operations), reading x, g, buf once, writing x and buf.
- ``gather_flip_crop``: ``out[i] = crop(flip(X[idx[i]]))`` -- ``DataLoader``'s gather followed by
  ``FlipCrop``'s flip + zero-padded random crop, written straight into the flattened (B, H*W*C) float32 batch the
  model takes, with ``FlipCrop``'s random draws (so its batches are the ones ``FlipCrop`` gives, tested).

``bench/ablate_mlp.py --fused-bench`` times both against the code in use. Integration (later, by the owners of
``optim/sgd.py`` and ``data/loader.py``): call these where numba is present and the arrays are float32 and
contiguous, keep the NumPy code as the fallback and the reference.
"""

from __future__ import annotations

import os

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
                        weight_decay: float) -> None:
    """In place: ``g' = g + wd x; buf = mu buf + g'; x -= lr (g' + mu buf)``; float32 contiguous arrays of one shape
    (x, buf updated; g only read). NumPy fallback where numba is absent."""
    if x.shape != g.shape or x.shape != buf.shape:
        raise ValueError(f"sgd_nesterov_update: x {x.shape}, g {g.shape} and buf {buf.shape} must have one shape")
    if AVAILABLE and all(a.flags.c_contiguous and a.dtype == np.float32 for a in (x, g, buf)):
        _sgd_kernel(x.reshape(-1), g.reshape(-1), buf.reshape(-1), np.float32(lr), np.float32(momentum),
                    np.float32(weight_decay))
        return
    gp = g + weight_decay * x
    buf *= momentum
    buf += gp
    x -= lr * (gp + momentum * buf)


def flip_crop_draws(n: int, rng: np.random.Generator, padding: int) -> tuple[np.ndarray, ...]:
    """FlipCrop's random numbers for a batch of n, in its order: flips, then dy, then dx (``data.augment``)."""
    flip = rng.random(n) < 0.5
    dy = rng.integers(0, 2 * padding + 1, size=n)
    dx = rng.integers(0, 2 * padding + 1, size=n)
    return flip, dy, dx


def gather_flip_crop(X: np.ndarray, idx: np.ndarray, rng: np.random.Generator, padding: int = 4) -> np.ndarray:
    """``FlipCrop(padding)(X[idx], rng)`` flattened to (B, H*W*C) float32, in one pass (X: (N, H, W, C) float32).
    Without numba (or for other arrays) it is exactly that expression."""
    n, shape = len(idx), X.shape[1:]
    if not (AVAILABLE and X.dtype == np.float32 and X.flags.c_contiguous and X.ndim == 4):
        from chainrule.data.augment import FlipCrop

        return np.ascontiguousarray(FlipCrop(padding)(X[idx], rng).reshape(n, -1), dtype=np.float32)
    flip, dy, dx = flip_crop_draws(n, rng, padding)
    out = np.empty((n, int(np.prod(shape))), dtype=np.float32)
    _gfc_kernel(X, np.asarray(idx, dtype=np.int64), flip, dy, dx, padding, out)
    return out
