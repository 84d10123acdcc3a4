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
from chainrule.tensor import Tensor
from chainrule.ops.softmax import Softmax


REDUCTIONS = ("mean", "sum", "none")


def check_reduction(op: str, reduction: str) -> None:
    """ValueError naming ``op`` unless ``reduction`` is one of ``REDUCTIONS``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: expected reduction in {REDUCTIONS}, got {reduction!r}")


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


def _class_weights(y, weight, ignore_index, dtype):
    """(y0, keep, wy): the labels as an (N, 1, *d) index (ignored positions pointing at class 0), the kept
    positions (N, *d) and each position's weight w[y] (0 where ignored; 1 without ``weight``)."""
    keep = y != ignore_index
    y0 = np.where(keep, y, 0)[:, None]
    wy = keep.astype(dtype) if weight is None else np.where(keep, weight[y0[:, 0]], 0).astype(dtype)
    return y0, keep, wy


def _per_class(weight, ndim):
    """The class weights (C,) shaped to broadcast against (N, C, *d)."""
    return weight.reshape((1, -1) + (1,) * (ndim - 2))


def _class_upstream(grad, reduction, denom):
    """The upstream gradient broadcast over the class axis: g / denom ("mean"), g ("sum"), g[:, None] ("none")."""
    if reduction == "none":
        return grad[:, None]
    return grad / denom if reduction == "mean" else grad


class CrossEntropy(Function):
    """Softmax cross-entropy over the class axis 1: scores (N, C) or (N, C, d1, ...), integer labels y (N,) or
    (N, d1, ...) -> loss, with PyTorch's class ``weight`` w (C,), ``ignore_index`` and ``label_smoothing`` eps.

    With p = softmax(s), W = sum_j w_j (C without weights) and each position's weight w_y (0 where y is ignored):

        loss_i = (1 - eps) w_y (-log p_y) + eps / C * sum_j w_j (-log p_j)
        dloss_i / ds_i = a_i p_i - q_i,   a_i = (1 - eps) w_y + eps W / C,   q_ij = (1 - eps) w_y [j = y] + eps w_j / C

    (both terms 0 at an ignored position). "mean" divides the sum by sum_i w_y over the kept positions, for the
    smoothing term too (PyTorch's rule; 0/0 = nan if every position is ignored). Scores are shifted by their max
    over the classes first, so exp never overflows (it may underflow to 0, which is the right answer).
    """

    @staticmethod
    def forward(ctx, scores, y, weight=None, reduction="mean", label_smoothing=0.0, ignore_index=-100):
        eps, n, c = label_smoothing, scores.shape[0], scores.shape[1]
        keep = y != ignore_index
        ctx.reduction, ctx.eps = reduction, eps
        ctx.plain = weight is None and scores.ndim == 2 and bool(keep.all())  # the training loop's case: fast
        with np.errstate(under="ignore"):
            shifted = scores - scores.max(axis=1, keepdims=True)
            if ctx.plain:
                picked = shifted[np.arange(n), y]
            else:
                y0 = np.where(keep, y, 0)[:, None]  # ignored positions point at class 0 (and weigh 0)
                picked = np.take_along_axis(shifted, y0, axis=1)[:, 0]
            if eps:
                spread = (shifted if weight is None else shifted * _per_class(weight, scores.ndim)).sum(axis=1)
            p = np.exp(shifted, out=shifted)
            total = p.sum(axis=1, keepdims=True)
            p /= total
        log_total = np.log(total[:, 0])
        ctx.save_for_backward(p)
        if ctx.plain:
            ctx.y = y
            losses = log_total - picked                                         # -log p_y
            if eps:
                losses *= 1 - eps
                losses += (eps / c) * (c * log_total - spread)                  # eps * mean_j(-log p_j)
            return _reduce(losses, reduction)
        wy = keep.astype(scores.dtype) if weight is None else np.where(keep, weight[y0[:, 0]], 0).astype(scores.dtype)
        total_w = c if weight is None else weight.sum()
        losses = wy * (log_total - picked)                                      # w_y (-log p_y)
        if eps:
            losses *= 1 - eps
            losses += (eps / c) * keep * (total_w * log_total - spread)           # eps/C sum_j w_j (-log p_j)
        ctx.y0, ctx.keep, ctx.wy, ctx.weight, ctx.denom = y0, keep, wy, weight, wy.sum()
        ctx.a = (1 - eps) * wy + (eps * total_w / c) * keep
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.asarray(losses.sum() / ctx.denom)
        return _reduce(losses, reduction)

    @staticmethod
    def saved_on_graph(ctx, p):
        return (Softmax.apply(ctx.parents[0], axis=1),)

    @staticmethod
    def backward(ctx, grad):
        (p,) = ctx.saved_tensors
        eps, pd = ctx.eps, xp.value(p)
        n, c = pd.shape[0], pd.shape[1]
        if ctx.plain:
            target = np.full((n, c), eps / c, dtype=pd.dtype)
            target[np.arange(n), ctx.y] += 1 - eps
            g = _upstream(grad, ctx.reduction, n)
            with np.errstate(under="ignore"):
                return (p - target) * (g[:, None] if ctx.reduction == "none" else g), None
        q = np.zeros_like(pd)
        if eps:
            q += (eps / c) * (1 if ctx.weight is None else _per_class(ctx.weight, pd.ndim)) * ctx.keep[:, None]
        np.put_along_axis(q, ctx.y0, np.take_along_axis(q, ctx.y0, axis=1) + (1 - eps) * ctx.wy[:, None], axis=1)
        g = _class_upstream(grad, ctx.reduction, ctx.denom)
        with np.errstate(under="ignore", invalid="ignore", divide="ignore"):
            return (p * ctx.a[:, None] - q) * g, None


class NLLLoss(Function):
    """Negative log-likelihood of log-probabilities x (N, C) or (N, C, d1, ...) at labels y (N,) or (N, d1, ...):
    loss_i = -w_y x_{i, y_i} (0 where y is ignored), "mean" over sum_i w_y, as PyTorch. Linear in x: its gradient
    is the constant -w_y at each label, times the upstream gradient."""

    @staticmethod
    def forward(ctx, x, y, weight=None, reduction="mean", ignore_index=-100):
        y0, keep, wy = _class_weights(y, weight, ignore_index, x.dtype)
        losses = -wy * np.take_along_axis(x, y0, axis=1)[:, 0]
        losses[~keep] = 0  # an ignored position adds 0 even where x holds -inf
        ctx.y0, ctx.wy, ctx.denom, ctx.reduction, ctx.shape = y0, wy, wy.sum(), reduction, x.shape
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.asarray(losses.sum() / ctx.denom)
        return _reduce(losses, reduction)

    @staticmethod
    def backward(ctx, grad):
        q = np.zeros(ctx.shape, dtype=ctx.wy.dtype)
        np.put_along_axis(q, ctx.y0, -ctx.wy[:, None], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return q * _class_upstream(grad, ctx.reduction, ctx.denom), None


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


def _softplus_neg(x):
    """log(1 + e^-x) = -log sigmoid(x): stable on arrays (max(-x, 0) + log1p(e^-|x|)), ops on Tensors."""
    if isinstance(x, Tensor):
        return -xp.log(xp.sigmoid(x))
    with np.errstate(under="ignore"):
        return np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))


class BinaryCrossEntropyWithLogits(Function):
    """Logistic loss on logits x with targets t in [0, 1], elementwise, with PyTorch's ``pos_weight`` pw (the
    weight of the positive term, broadcast against x, e.g. one per class) and ``weight`` w (broadcast), both
    constants (PyTorch gives them no gradient either):

        loss = w [-pw t log sigmoid(x) - (1 - t) log(1 - sigmoid(x))] = w [(1 - t) x + (1 + (pw - 1) t) sp(-x)]

    with sp(-x) = log(1 + e^-x) computed without overflow (max(-x, 0) + log1p(e^-|x|));
    d/dx = w [(1 - t) - (1 + (pw - 1) t) sigmoid(-x)] (w (sigmoid(x) - t) without pos_weight),
    d/dt = w [(pw - 1) sp(-x) - x].
    """

    @staticmethod
    def forward(ctx, logits, target, reduction="mean", weight=None, pos_weight=None):
        sp = _softplus_neg(logits)
        if pos_weight is None:
            losses = (1 - target) * logits + sp
        else:
            losses = (1 - target) * logits + (1 + (pos_weight - 1) * target) * sp
        if weight is not None:
            losses *= weight
        ctx.save_for_backward(logits, target)
        ctx.reduction, ctx.weight, ctx.pos_weight = reduction, weight, pos_weight
        return _reduce(losses, reduction)

    @staticmethod
    def backward(ctx, grad):
        logits, target = ctx.saved_tensors
        weight, pw = ctx.weight, ctx.pos_weight
        g = _upstream(grad, ctx.reduction, xp.value(logits).size)
        if weight is not None:
            g = g * weight
        gx = gt = None
        if ctx.needs_input_grad[0]:
            if pw is None:
                gx = (xp.sigmoid(logits) - target) * g
            else:
                gx = ((1 - target) - (1 + (pw - 1) * target) * xp.sigmoid(-logits)) * g
        if ctx.needs_input_grad[1]:
            gt = -logits * g if pw is None else ((pw - 1) * _softplus_neg(logits) - logits) * g
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
