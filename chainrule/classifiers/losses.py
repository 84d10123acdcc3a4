"""Loss and gradient of the linear classifiers (CS231n assignment 1): naive loops beside the vectorised versions.

Scores are ``S = X W + b`` for inputs X (N, D), weights W (D, C) and biases b (C,); y (N,) holds class indices.
Every function returns ``(loss, dW, db)``: the mean data loss plus ``reg * sum(W * W)`` (the bias is not
regularised), and its gradients. The naive versions loop over samples and classes exactly as the lecture derives
the gradient; the vectorised ones are what ``LinearSVM`` / ``SoftmaxClassifier`` train with (two GEMMs: the scores
and ``X.T @ dS``). Tests check each pair agrees and both match a numerical gradient. The vectorised ones also
write the predicted class of each sample (the argmax of S) into ``pred`` (N,) when given: the training loop counts
its running accuracy from it without a third GEMM.
"""

from __future__ import annotations

import numpy as np


def _regularize(W: np.ndarray, reg: float) -> tuple[float, np.ndarray]:
    return float(reg * np.sum(W * W, dtype=np.float64)), (2.0 * reg) * W


# ---- multiclass SVM (hinge) --------------------------------------------------------------------------------------


def svm_loss_naive(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float,
                   margin: float = 1.0) -> tuple[float, np.ndarray, np.ndarray]:
    """Multiclass hinge loss with loops: L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin).

    Each violated margin j adds x_i to dW[:, j] and subtracts it from dW[:, y_i].
    """
    N = X.shape[0]
    C = W.shape[1]
    dW = np.zeros_like(W)
    db = np.zeros_like(b)
    loss = 0.0
    for i in range(N):
        scores = X[i] @ W + b
        correct = scores[y[i]]
        for j in range(C):
            if j == y[i]:
                continue
            m = scores[j] - correct + margin
            if m > 0:
                loss += m
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
                db[j] += 1
                db[y[i]] -= 1
    loss /= N
    dW /= N
    db /= N
    reg_loss, reg_grad = _regularize(W, reg)
    return float(loss) + reg_loss, dW + reg_grad, db


def svm_loss_vectorized(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float,
                        margin: float = 1.0, pred: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Multiclass hinge loss, no loops: margins (N, C) at once, then dS = indicator of positive margins with
    -(their count) in the correct-class column; dW = X.T @ dS."""
    N = X.shape[0]
    rows = np.arange(N)
    S = X @ W
    S += b
    if pred is not None:
        np.argmax(S, axis=1, out=pred)
    correct = S[rows, y][:, None]
    S -= correct
    S += margin
    np.maximum(S, 0, out=S)
    S[rows, y] = 0
    loss = float(np.sum(S, dtype=np.float64)) / N
    dS = (S > 0).astype(W.dtype)
    dS[rows, y] = -dS.sum(axis=1)
    dS /= N
    reg_loss, reg_grad = _regularize(W, reg)
    dW = X.T @ dS
    dW += reg_grad
    return loss + reg_loss, dW, dS.sum(axis=0)


# ---- softmax (cross-entropy) -------------------------------------------------------------------------------------


def softmax_loss_naive(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray,
                       reg: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Softmax cross-entropy with loops: L_i = -log(e^{s_{y_i}} / sum_j e^{s_j}); dL_i/ds_j = p_j - [j == y_i].

    Scores are shifted by their maximum before exponentiating (the same probabilities, no overflow).
    """
    N = X.shape[0]
    C = W.shape[1]
    dW = np.zeros_like(W)
    db = np.zeros_like(b)
    loss = 0.0
    for i in range(N):
        scores = X[i] @ W + b
        scores = scores - np.max(scores)
        exp = np.exp(scores)
        total = np.sum(exp)
        loss += -(scores[y[i]] - np.log(total))
        for j in range(C):
            p = exp[j] / total
            g = p - (1.0 if j == y[i] else 0.0)
            dW[:, j] += g * X[i]
            db[j] += g
    loss /= N
    dW /= N
    db /= N
    reg_loss, reg_grad = _regularize(W, reg)
    return float(loss) + reg_loss, dW + reg_grad, db


def softmax_loss_vectorized(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray,
                            reg: float, pred: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Softmax cross-entropy, no loops: P = softmax(S) row-wise (N, C), dS = (P - onehot(y)) / N, dW = X.T @ dS."""
    N = X.shape[0]
    rows = np.arange(N)
    S = X @ W
    S += b
    if pred is not None:
        np.argmax(S, axis=1, out=pred)
    S -= S.max(axis=1, keepdims=True)
    log_sum = np.log(np.sum(np.exp(S), axis=1, keepdims=True))
    loss = -float(np.sum(S[rows, y] - log_sum[:, 0], dtype=np.float64)) / N
    S -= log_sum  # log-probabilities
    P = np.exp(S, out=S)
    P[rows, y] -= 1
    P /= N
    reg_loss, reg_grad = _regularize(W, reg)
    dW = X.T @ P
    dW += reg_grad
    return loss + reg_loss, dW, P.sum(axis=0)
