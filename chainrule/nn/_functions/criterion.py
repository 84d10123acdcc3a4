"""The criterion rows of the lecture's "PyTorch operators" slide: L1, smooth L1 (Huber), soft margin, binary
cross-entropy on probabilities and the multi-label margin loss. One node each, closed-form backward written with
``chainrule.ops.xp`` (differentiable again; the margins' and kinks' masks are constants). ``reduction`` as in
``chainrule.nn._functions.loss``: "mean" over all elements (over the N samples for the multi-label margin loss, as
PyTorch), "sum" or "none".
"""

from __future__ import annotations

import numpy as np

from chainrule.function import Function
from chainrule.nn._functions.loss import _reduce, _upstream
from chainrule.ops import xp


class L1Loss(Function):
    """|x - t|; gradient sign(x - t) (0 where equal), -sign for the target."""

    @staticmethod
    def forward(ctx, x, target, reduction="mean"):
        diff = x - target
        ctx.sign, ctx.reduction = np.sign(diff), reduction  # a constant of the second derivative
        return _reduce(np.abs(diff), reduction)

    @staticmethod
    def backward(ctx, grad):
        sign = ctx.sign
        g = _upstream(grad, ctx.reduction, sign.size) * sign
        return (g if ctx.needs_input_grad[0] else None), (-g if ctx.needs_input_grad[1] else None)


class SmoothL1Loss(Function):
    """Huber-like: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = x - t; beta = 0 is L1);
    gradient d / beta inside, sign(d) outside."""

    @staticmethod
    def forward(ctx, x, target, reduction="mean", beta=1.0):
        diff = x - target
        inside = np.abs(diff) < beta
        ctx.save_for_backward(x, target, inside)
        ctx.reduction, ctx.beta, ctx.sign = reduction, beta, np.sign(diff)
        with np.errstate(divide="ignore", invalid="ignore"):
            losses = np.where(inside, 0.5 * diff * diff / beta if beta else 0, np.abs(diff) - 0.5 * beta)
        return _reduce(losses.astype(x.dtype, copy=False), reduction)

    @staticmethod
    def backward(ctx, grad):
        x, target, inside = ctx.saved_tensors
        sign = ctx.sign
        g = _upstream(grad, ctx.reduction, inside.size)
        local = xp.where(inside, (x - target) * (1 / ctx.beta), sign) if ctx.beta else sign
        gx = g * local
        return (gx if ctx.needs_input_grad[0] else None), (-gx if ctx.needs_input_grad[1] else None)


class SoftMarginLoss(Function):
    """log(1 + e^(-y x)) for labels y in {-1, 1}; gradient -y sigmoid(-y x) (and -x sigmoid(-y x) for y)."""

    @staticmethod
    def forward(ctx, x, y, reduction="mean"):
        z = -y * x
        with np.errstate(under="ignore"):
            losses = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
        ctx.save_for_backward(x, y)
        ctx.reduction = reduction
        return _reduce(losses, reduction)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        g = _upstream(grad, ctx.reduction, xp.value(x).size) * xp.sigmoid(-y * x)
        return (-y * g if ctx.needs_input_grad[0] else None), (-x * g if ctx.needs_input_grad[1] else None)


_EPS = float(np.float32(1e-12))  # PyTorch's clamp of p (1 - p) in the gradient (a float32 constant there)
_LOG_FLOOR = -100.0


def _clamped_log(v):
    """max(log v, -100) for v >= 0, on arrays or as ops (the clamped entries are constants)."""
    floor = xp.value(v) <= np.exp(_LOG_FLOOR)
    if not floor.any():
        return xp.log(v)
    return xp.where(floor, np.asarray(_LOG_FLOOR, xp.value(v).dtype), xp.log(xp.where(floor, 1.0, v)))


class BinaryCrossEntropy(Function):
    """-w [t log p + (1 - t) log(1 - p)] for probabilities p in [0, 1], each log clamped at -100 (PyTorch's rule,
    so p = 0 or 1 gives a finite loss); gradient w (p - t) / max(p (1 - p), 1e-12), and w (log(1 - p) - log p)
    for the target with the logs clamped likewise: the derivative of the loss as computed (PyTorch's target
    gradient is +-inf at p = 0 or 1; elsewhere they agree)."""

    @staticmethod
    def forward(ctx, p, target, reduction="mean", weight=None):
        with np.errstate(divide="ignore"):
            log_p, log_q = np.maximum(np.log(p), _LOG_FLOOR), np.maximum(np.log1p(-p), _LOG_FLOOR)
        losses = -(target * log_p + (1 - target) * log_q)
        if weight is not None:
            losses = losses * weight
        ctx.save_for_backward(p, target)
        ctx.reduction, ctx.weight = reduction, weight
        return _reduce(losses, reduction)

    @staticmethod
    def backward(ctx, grad):
        p, target = ctx.saved_tensors
        g = _upstream(grad, ctx.reduction, xp.value(p).size)
        if ctx.weight is not None:
            g = g * ctx.weight
        gp = gt = None
        if ctx.needs_input_grad[0]:
            denom = p * (1 - p)
            small = xp.value(denom) < _EPS
            gp = g * (p - target) / (xp.where(small, np.asarray(_EPS, xp.value(p).dtype), denom) if small.any()
                                     else denom)
        if ctx.needs_input_grad[1]:
            gt = g * (_clamped_log(1 - p) - _clamped_log(p))
        return gp, gt


class MultilabelMarginLoss(Function):
    """x (N, C), targets y (N, C): the class indices of each sample's labels, ended by the first -1. With J_i its
    listed labels and the other classes c:

        loss_i = sum_{j in J_i} sum_{c not in J_i} max(0, 1 - (x_ij - x_ic)) / C

    (a label listed twice counts twice, as in PyTorch's loop). Piecewise linear: the gradient is a constant
    coefficient per element (-active / C at the labels, +active / C at the others), so its own derivative is 0.
    """

    @staticmethod
    def forward(ctx, x, y, reduction="mean"):
        n, c = x.shape
        listed = np.cumprod(y != -1, axis=1).astype(bool)            # the slots before the first -1
        is_label = np.zeros((n, c), dtype=bool)
        rows = np.broadcast_to(np.arange(n)[:, None], y.shape)
        is_label[rows[listed], y[listed]] = True
        losses = np.zeros(n, dtype=x.dtype)
        coef = np.zeros((n, c), dtype=x.dtype)
        for k in range(int(listed.sum(axis=1).max(initial=0))):      # label slots, not samples
            on = listed[:, k]
            j = np.where(on, y[:, k], 0)
            margins = 1 - x[np.arange(n), j][:, None] + x            # (N, C)
            active = (margins > 0) & ~is_label & on[:, None]
            losses += np.where(active, margins, 0).sum(axis=1)
            coef += active
            np.subtract.at(coef, (np.arange(n), j), active.sum(axis=1))
        ctx.coef, ctx.reduction = coef / c, reduction  # a constant (the loss is piecewise linear)
        return _reduce(losses / c, reduction)

    @staticmethod
    def backward(ctx, grad):
        coef = ctx.coef
        g = _upstream(grad, ctx.reduction, coef.shape[0])
        return coef * (g[:, None] if ctx.reduction == "none" else g), None
