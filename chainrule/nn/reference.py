"""Slow, looped reference implementations (CS231n's "naive" versions), kept to test the fused ops against.

Each returns plain NumPy results; none is on the autograd graph. Use them to read what the vectorised code does.
"""

from __future__ import annotations

import numpy as np


def softmax_loss_naive(scores: np.ndarray, y: np.ndarray, label_smoothing: float = 0.0) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of scores (N, C) and its gradient, one sample and one class at a time."""
    n, c = scores.shape
    loss, dscores = 0.0, np.zeros(scores.shape, dtype=np.float64)
    for i in range(n):
        s = scores[i].astype(np.float64)
        s = s - s.max()
        total = sum(np.exp(s[j]) for j in range(c))
        for j in range(c):
            p = np.exp(s[j]) / total
            target = (1 - label_smoothing) * (j == y[i]) + label_smoothing / c
            loss -= target * (s[j] - np.log(total))
            dscores[i, j] = p - target
    return loss / n, dscores / n


def svm_loss_naive(scores: np.ndarray, y: np.ndarray, margin: float = 1.0) -> tuple[float, np.ndarray]:
    """Mean multiclass hinge loss of scores (N, C) and its gradient, with the lecture's double loop."""
    n, c = scores.shape
    loss, dscores = 0.0, np.zeros(scores.shape, dtype=np.float64)
    for i in range(n):
        for j in range(c):
            if j == y[i]:
                continue
            m = scores[i, j] - scores[i, y[i]] + margin
            if m > 0:
                loss += m
                dscores[i, j] += 1
                dscores[i, y[i]] -= 1
    return loss / n, dscores / n


def batchnorm_naive(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, dout: np.ndarray,
                    eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training-mode batchnorm forward and backward through its computational graph, one gate at a time
    (CS231n's "batchnorm_backward"). Returns out, dx, dgamma, dbeta."""
    n = x.shape[0]
    mu = x.sum(axis=0) / n                  # mean gate
    xc = x - mu                             # subtract gate
    sq = xc**2
    var = sq.sum(axis=0) / n
    std = np.sqrt(var + eps)
    inv = 1 / std
    xhat = xc * inv
    out = gamma * xhat + beta
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dinv = (dxhat * xc).sum(axis=0)
    dxc = dxhat * inv
    dstd = -dinv / std**2
    dvar = dstd / (2 * std)
    dsq = np.ones_like(sq) * dvar / n
    dxc += 2 * xc * dsq
    dmu = -dxc.sum(axis=0)
    dx = dxc + np.ones_like(x) * dmu / n
    return out, dx, dgamma, dbeta


def maxout_naive(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, pieces: int) -> np.ndarray:
    """Maxout forward with one matrix multiply per piece and an explicit max: x (N, D) -> (N, M)."""
    m = weight.shape[1] // pieces
    zs = [x @ weight[:, p * m:(p + 1) * m] + bias[p * m:(p + 1) * m] for p in range(pieces)]
    out = zs[0]
    for z in zs[1:]:
        out = np.maximum(out, z)
    return out
