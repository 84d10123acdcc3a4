"""``l1_loss``, ``smooth_l1_loss``, ``soft_margin_loss``, ``binary_cross_entropy`` and ``multilabel_margin_loss``
(re-exported by ``chainrule.nn.functional``), with PyTorch's arguments and their checks.

The elementwise losses take an input and a target of the same shape and average over every element for
``reduction="mean"``; the multi-label margin loss averages over the N samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn._functions import criterion as _crit
from chainrule.nn._functions.loss import check_reduction
from chainrule.tensor import Tensor

def _pair(op: str, x: Any, target: Any, reduction: str) -> tuple[Any, Any]:
    """(input, target): the same shape and floating dtype (an array target is cast to the input's dtype)."""
    from chainrule.nn.functional import _check_target

    if not isinstance(x, (Tensor, np.ndarray)):
        x = Tensor(x).data
    return x, _check_target(op, x, target, reduction)


def l1_loss(x: Any, target: Any, reduction: str = "mean") -> Tensor:
    """|x - target|, averaged over all elements for "mean"."""
    x, target = _pair("l1_loss", x, target, reduction)
    return _crit.L1Loss.apply(x, target, reduction=reduction)


def smooth_l1_loss(x: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = x - target): quadratic near 0, L1 beyond beta
    (beta = 0 is ``l1_loss``)."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    x, target = _pair("smooth_l1_loss", x, target, reduction)
    return _crit.SmoothL1Loss.apply(x, target, reduction=reduction, beta=float(beta))


def soft_margin_loss(x: Any, target: Any, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-y x)) for labels y in {-1, 1} of x's shape (the logistic loss of a two-class margin)."""
    x, target = _pair("soft_margin_loss", x, target, reduction)
    return _crit.SoftMarginLoss.apply(x, target, reduction=reduction)


def binary_cross_entropy(p: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Tensor:
    """-[t log p + (1 - t) log(1 - p)] of probabilities p in [0, 1] (e.g. after ``sigmoid``), each log clamped
    at -100 as PyTorch; ``weight`` (broadcast to p's shape, a constant) rescales each element. Prefer
    ``binary_cross_entropy_with_logits`` on the logits: it is stable where this one saturates."""
    from chainrule.nn.functional import _broadcast_weight

    p, target = _pair("binary_cross_entropy", p, target, reduction)
    data = p.data if isinstance(p, Tensor) else p
    bad = np.argwhere(~((data >= 0) & (data <= 1)))
    if bad.size:
        where = tuple(int(i) for i in bad[0])
        raise ValueError(f"binary_cross_entropy: expected probabilities in [0, 1], got {data[where]} at index {where}; "
                         "apply sigmoid first, or use binary_cross_entropy_with_logits on the logits")
    weight = _broadcast_weight("binary_cross_entropy", "weight", weight, data)
    return _crit.BinaryCrossEntropy.apply(p, target, reduction=reduction, weight=weight)


def multilabel_margin_loss(x: Any, y: Any, reduction: str = "mean") -> Tensor:
    """Multi-class multi-label hinge loss: x (N, C) or (C,) scores, y of x's shape holding each sample's label
    classes, ended by the first -1 (PyTorch's format: [3, 0, -1, 1] means labels {3, 0}). Every label's score should
    beat every non-label's by a margin of 1; the sum of the violations / C, averaged over N for "mean"."""
    check_reduction("multilabel_margin_loss", reduction)
    if not isinstance(x, (Tensor, np.ndarray)):
        x = Tensor(x).data
    data = x.data if isinstance(x, Tensor) else x
    labels = np.asarray(y.data if isinstance(y, Tensor) else y)
    if data.ndim not in (1, 2) or data.dtype.kind != "f":
        raise ValueError(f"multilabel_margin_loss: expected floating-point scores of shape (N, C) or (C,), got "
                         f"{data.dtype} {data.shape}")
    if labels.shape != data.shape or labels.dtype.kind not in "iu":
        raise ValueError(f"multilabel_margin_loss: expected integer targets of the scores' shape {data.shape}, got "
                         f"{labels.dtype} {labels.shape}")
    bad = np.argwhere((labels < -1) | (labels >= data.shape[-1]))
    if bad.size:
        where = tuple(int(i) for i in bad[0])
        raise ValueError(f"multilabel_margin_loss: expected target classes in [0, {data.shape[-1]}) or -1 (the end "
                         f"of the list), got {labels[where]} at index {where}")
    if data.ndim == 1:
        out = _crit.MultilabelMarginLoss.apply(x.reshape(1, -1) if isinstance(x, Tensor) else data[None],
                                               labels[None].astype(np.intp), reduction=reduction)
        return out.reshape(()) if reduction == "none" else out
    if data.shape[0] == 0 and reduction == "mean":
        raise ValueError("multilabel_margin_loss: the mean over an empty batch is undefined")
    return _crit.MultilabelMarginLoss.apply(x, labels.astype(np.intp), reduction=reduction)
