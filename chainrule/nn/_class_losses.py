"""``cross_entropy`` and ``nll_loss`` (re-exported by ``chainrule.nn.functional``): classification losses over the
class axis 1 of scores (N, C) or (N, C, d1, ...) such as (N, C, H, W), with PyTorch's ``weight=``,
``ignore_index=`` and ``label_smoothing=``, and the label checks they share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn._functions import loss as _loss
from chainrule.tensor import Tensor

TensorLike = Any  # Tensor or np.ndarray


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _as_input(x: Any) -> Any:
    """Tensors and arrays pass through; lists and numbers become arrays (float lists as float32, like Tensor)."""
    if isinstance(x, (Tensor, np.ndarray)):
        return x
    return Tensor(x).data


def class_targets(op: str, scores: np.ndarray, y: Any, ignore_index: int) -> np.ndarray:
    """Integer labels y (N, *d) for scores (N, C, *d), each in [0, C) or equal to ``ignore_index``; ValueError
    naming the first bad one and its index."""
    y = _array(y)
    want = scores.shape[:1] + scores.shape[2:]
    if y.ndim == 1 and len(want) == 1 and y.shape != want:
        raise ValueError(f"{op}: scores have {want[0]} rows but y has {y.shape[0]} labels; pass one label per sample")
    if y.shape != want:
        raise ValueError(f"{op}: expected labels of shape {want}, got shape {y.shape} (scores {scores.shape}: one "
                         f"label per sample{' and position' if len(want) > 1 else ''})")
    if y.dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(y) | (y != np.round(y)))
        if bad.size:
            where = tuple(int(i) for i in bad[0])
            raise ValueError(f"{op}: expected integer labels, got {y[where]} at index "
                             f"{where[0] if len(where) == 1 else where}")
        y = y.astype(np.intp)
    elif y.dtype.kind not in "iu":
        raise ValueError(f"{op}: expected integer labels, got dtype {y.dtype}")
    c = scores.shape[1]
    if y.size and 0 <= y.min() and y.max() < c:  # the common case, checked without an index search
        return y
    bad = np.argwhere(((y < 0) | (y >= c)) & (y != ignore_index))
    if bad.size:
        where = tuple(int(i) for i in bad[0])
        raise ValueError(f"{op}: expected labels in [0, {c}) or ignore_index={ignore_index}, got {y[where]} at index "
                         f"{where[0] if len(where) == 1 else where}")
    return y


def _class_scores(op: str, scores: Any, y: Any, weight: Any, reduction: str) -> tuple[Any, Any, Any, bool]:
    """(scores, y, weight, unbatched): (C,) scores with a label () become a batch of one; the weight (C,) an array
    of the scores' dtype."""
    _loss.check_reduction(op, reduction)
    scores = _as_input(scores)
    s = _array(scores)
    if not np.issubdtype(s.dtype, np.floating):
        raise TypeError(f"{op}: expected floating-point scores, got dtype {s.dtype}")
    unbatched = s.ndim == 1
    if unbatched:
        if np.ndim(_array(y)) != 0:
            raise ValueError(f"{op}: scores of shape {s.shape} are one unbatched sample and need one label (an int), "
                             f"got labels of shape {np.shape(_array(y))}; for a batch pass scores of shape (N, C)")
        scores = scores.reshape(1, -1) if isinstance(scores, Tensor) else s.reshape(1, -1)
        y = np.reshape(_array(y), (1,))
        s = _array(scores)
    if s.ndim < 2:
        raise ValueError(f"{op}: expected scores of shape (N, C) or (N, C, d1, ...) such as (N, C, H, W), got "
                         f"{s.shape}")
    if s.shape[0] == 0 and reduction == "mean":
        raise ValueError(f"{op}: the mean over an empty batch is undefined; pass at least one sample")
    if weight is not None:
        if isinstance(weight, Tensor) and weight.requires_grad:
            raise ValueError(f"{op}: weight is a constant (PyTorch gives it no gradient either); pass weight.detach()")
        weight = np.asarray(_array(weight), dtype=s.dtype)
        if weight.shape != (s.shape[1],):
            raise ValueError(f"{op}: expected weight of shape ({s.shape[1]},), one per class, got {weight.shape}")
    return scores, y, weight, unbatched


def cross_entropy(scores: TensorLike, y: Any, reduction: str = "mean", label_smoothing: float = 0.0, *,
                  weight: Any = None, ignore_index: int = -100) -> Tensor:
    """Softmax cross-entropy of scores (N, C) against integer labels y (N,), or per position of scores
    (N, C, H, W) (any (N, C, d1, ...)) against y (N, H, W); fused and stable. PyTorch's keyword arguments:

    - ``weight`` (C,): class weights; each position counts w[y], and "mean" divides by the sum of w[y].
    - ``ignore_index``: positions whose label equals it add nothing and are not counted by "mean".
    - ``label_smoothing`` eps: the target is (1 - eps) onehot(y) + eps / C; with ``weight`` the smoothing term is
      eps / C * sum_j w_j (-log p_j), over the same denominator (PyTorch's exact rule; see ``CrossEntropy``).

    loss_i = -log softmax(s_i)[y_i] without these; the backward is (softmax - target) / N for "mean".
    """
    scores, y, weight, unbatched = _class_scores("cross_entropy", scores, y, weight, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: expected label_smoothing in [0, 1], got {label_smoothing}")
    labels = class_targets("cross_entropy", _array(scores), y, int(ignore_index))
    out = _loss.CrossEntropy.apply(scores, labels, weight=weight, reduction=reduction,
                                   label_smoothing=float(label_smoothing), ignore_index=int(ignore_index))
    return out.reshape(()) if unbatched and reduction == "none" else out


def nll_loss(log_probs: TensorLike, y: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: -w[y] * log_probs[i, y_i] for log-probabilities (N, C) (e.g. ``log_softmax``) or
    (N, C, H, W) against labels (N,) or (N, H, W); ``weight``, ``ignore_index`` and "mean" as ``cross_entropy``
    (PyTorch's argument order)."""
    log_probs, y, weight, unbatched = _class_scores("nll_loss", log_probs, y, weight, reduction)
    labels = class_targets("nll_loss", _array(log_probs), y, int(ignore_index))
    out = _loss.NLLLoss.apply(log_probs, labels, weight=weight, reduction=reduction, ignore_index=int(ignore_index))
    return out.reshape(()) if unbatched and reduction == "none" else out
