"""Fused losses: each is one node whose backward is the closed-form gradient (no softmax/log/exp chain).

``reduction`` is "mean" (over the N samples; for mse / BCE over all elements, as PyTorch), "sum" or "none" (one
loss per sample / element). Labels are validated by ``chainrule.nn.functional`` before they get here.

The backward formulas serve ``create_graph`` too (``chainrule.ops.xp``): cross-entropy recomputes its softmax on
the graph (``saved_on_graph``); the hinge's margins are piecewise linear, so its second derivative is zero.
"""

from __future__ import annotations

import numpy as np

from chainrule.function import Function
from chainrule.ops import xp
from chainrule.ops.softmax import Softmax


def _reduce(losses: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def _upstream(grad: np.ndarray, reduction: str, count: int) -> np.ndarray:
    """The upstream gradient per loss term: g / count for "mean", g for "sum", g itself (per term) for "none"."""
    if reduction == "mean":
        return grad / int(count)
    return grad


class CrossEntropy(Function):
    """Softmax cross-entropy: scores (N, C), integer labels y (N,) -> loss.

    With p = softmax(s) and the target distribution q = (1 - eps) onehot(y) + eps / C (label smoothing eps),
    loss_i = -sum_j q_ij log p_ij and dloss_i / ds_i = p_i - q_i. Scores are shifted by their row max first, so
    exp never overflows (it may underflow to 0, which is the right answer).
    """

    @staticmethod
    def forward(ctx, scores, y, reduction="mean", label_smoothing=0.0):
        n = scores.shape[0]
        rows = np.arange(n)
        with np.errstate(under="ignore"):
            shifted = scores - scores.max(axis=1, keepdims=True)
            picked = shifted[rows, y]
            mean_shifted = shifted.mean(axis=1) if label_smoothing else None
            p = np.exp(shifted, out=shifted)
            total = p.sum(axis=1, keepdims=True)
            p /= total
        log_total = np.log(total[:, 0])
        losses = log_total - picked                                 # -log p_y
        if label_smoothing:
            losses *= 1 - label_smoothing
            losses += label_smoothing * (log_total - mean_shifted)   # eps * mean_j(-log p_j)
        ctx.save_for_backward(p, y)
        ctx.reduction, ctx.eps = reduction, label_smoothing
        return _reduce(losses, reduction)

    @staticmethod
    def saved_on_graph(ctx, p, y):
        return Softmax.apply(ctx.parents[0], axis=1), y

    @staticmethod
    def backward(ctx, grad):
        p, y = ctx.saved_tensors
        n, c = p.shape
        g = _upstream(grad, ctx.reduction, n)
        target = np.full((n, c), ctx.eps / c, dtype=p.dtype)
        target[np.arange(n), y] += 1 - ctx.eps
        with np.errstate(under="ignore"):
            return (p - target) * (g[:, None] if ctx.reduction == "none" else g), None


class MulticlassHinge(Function):
    """The multiclass SVM loss: scores (N, C), labels y (N,) -> loss_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin).

    Each positive margin adds +1 to ds_j and -1 to ds_{y_i}.
    """

    @staticmethod
    def forward(ctx, scores, y, reduction="mean", margin=1.0):
        n = scores.shape[0]
        rows = np.arange(n)
        margins = scores - scores[rows, y][:, None]
        margins += margin
        margins[rows, y] = 0
        np.maximum(margins, 0, out=margins)
        ctx.save_for_backward(margins > 0, y)
        ctx.reduction = reduction
        return _reduce(margins.sum(axis=1), reduction)

    @staticmethod
    def backward(ctx, grad):
        active, y = ctx.saved_tensors
        n = active.shape[0]
        g = _upstream(grad, ctx.reduction, n)
        local = active.astype(grad.dtype)  # +1 per positive margin, minus their count at the label
        local[np.arange(n), y] = -active.sum(axis=1)
        return local * (g[:, None] if ctx.reduction == "none" else g), None


class MSE(Function):
    """Squared error: pred and target of the same shape -> (pred - target)^2, reduced over all elements."""

    @staticmethod
    def forward(ctx, pred, target, reduction="mean"):
        diff = pred - target
        ctx.save_for_backward(pred, target)
        ctx.reduction = reduction
        return _reduce(diff * diff, reduction)

    @staticmethod
    def backward(ctx, grad):
        pred, target = ctx.saved_tensors
        diff = pred - target
        g = _upstream(grad, ctx.reduction, diff.size)
        gpred = (2 * g) * diff
        gtarget = -gpred if ctx.needs_input_grad[1] else None
        return (gpred if ctx.needs_input_grad[0] else None), gtarget


class BinaryCrossEntropyWithLogits(Function):
    """Logistic loss on logits x with targets t in [0, 1], elementwise:

        loss = -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)) = max(x, 0) - x t + log(1 + e^-|x|)

    (the right-hand form never overflows); d/dx = sigmoid(x) - t, d/dt = -x.
    """

    @staticmethod
    def forward(ctx, logits, target, reduction="mean"):
        with np.errstate(under="ignore"):
            losses = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
        ctx.save_for_backward(logits, target)
        ctx.reduction = reduction
        return _reduce(losses, reduction)

    @staticmethod
    def backward(ctx, grad):
        logits, target = ctx.saved_tensors
        g = _upstream(grad, ctx.reduction, logits.size)
        gx = (xp.sigmoid(logits) - target) * g if ctx.needs_input_grad[0] else None
        gt = -logits * g if ctx.needs_input_grad[1] else None
        return gx, gt


class L2Penalty(Function):
    """lam * sum over the given arrays of sum(W^2); d/dW = 2 lam W. Each sum of squares is one BLAS dot."""

    @staticmethod
    def forward(ctx, *params, lam=1.0):
        total = np.zeros((), dtype=np.result_type(*params))
        for w in params:
            flat = w.reshape(-1)
            total += np.dot(flat, flat)
        ctx.save_for_backward(*params)
        ctx.lam = lam
        return total * lam

    @staticmethod
    def backward(ctx, grad):
        params = ctx.saved_tensors
        scale = (2 * ctx.lam) * grad
        return tuple(scale * w if need else None for w, need in zip(params, ctx.needs_input_grad, strict=True))
