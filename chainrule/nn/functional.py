"""Stateless neural-network functions: ``import chainrule.nn.functional as F``.

Every function takes Tensors (or NumPy arrays, treated as constants) and returns a Tensor on the graph. Each is one
fused ``Function`` node (see ``chainrule.nn._functions``), validated here once per call. Shapes follow CS231n: N
samples, D input features, M outputs, C classes. float32 stays float32: no function upcasts its inputs.

Layers: linear, maxout, dropout, dropout2d, batch_norm, layer_norm.
Pooling (chainrule.nn._pool): max_pool2d, avg_pool2d.
Adaptive pooling, padding and resizing (chainrule.nn._resize): adaptive_avg_pool2d, adaptive_max_pool2d, pad,
interpolate.
Convolution (``chainrule.nn._conv``): conv2d, conv_transpose2d, unfold, fold.
Activations: sigmoid, tanh, relu, leaky_relu, elu, gelu (+ softmax, log_softmax from the core); and
(chainrule.nn._pointwise) hardtanh, softplus, logsigmoid, glu, softshrink, rrelu.
Losses: cross_entropy and nll_loss (chainrule.nn._class_losses), multiclass_hinge, mse,
binary_cross_entropy_with_logits, l2_penalty; and
(chainrule.nn._criteria) l1_loss, smooth_l1_loss, soft_margin_loss, binary_cross_entropy, multilabel_margin_loss.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from chainrule.nn._class_losses import cross_entropy, nll_loss
from chainrule.nn._conv import conv2d, conv_transpose2d, fold, unfold
from chainrule.nn._functions import activation as _act
from chainrule.nn._functions import dropout as _drop
from chainrule.nn._functions import linear as _lin
from chainrule.nn._functions import loss as _loss
from chainrule.nn._functions import normalization as _norm
from chainrule.nn._criteria import (
    binary_cross_entropy, l1_loss, multilabel_margin_loss, smooth_l1_loss, soft_margin_loss,
)
from chainrule.nn._pointwise import glu, hardtanh, logsigmoid, rrelu, softplus, softshrink
from chainrule.nn._pool import avg_pool2d, max_pool2d
from chainrule.nn._resize import adaptive_avg_pool2d, adaptive_max_pool2d, interpolate, pad
from chainrule.ops import log_softmax, relu, sigmoid, softmax, tanh
from chainrule.tensor import Tensor

__all__ = [
    "linear", "maxout", "dropout", "dropout2d", "batch_norm", "layer_norm", "max_pool2d", "avg_pool2d",
    "adaptive_avg_pool2d", "adaptive_max_pool2d", "pad", "interpolate",
    "conv2d", "conv_transpose2d", "unfold", "fold",
    "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softmax", "log_softmax",
    "hardtanh", "softplus", "logsigmoid", "glu", "softshrink", "rrelu",
    "cross_entropy", "nll_loss", "multiclass_hinge", "mse", "mse_loss", "binary_cross_entropy_with_logits",
    "l2_penalty", "l1_loss", "smooth_l1_loss", "soft_margin_loss", "binary_cross_entropy", "multilabel_margin_loss",
]

TensorLike = Any  # Tensor or np.ndarray


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _as_input(x: Any) -> Any:
    """Tensors and arrays pass through; lists and numbers become arrays (float lists as float32, like Tensor)."""
    if isinstance(x, (Tensor, np.ndarray)):
        return x
    return Tensor(x).data


# ---- layers -------------------------------------------------------------------------------------------------


def linear(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None) -> Tensor:
    """x (N, D) @ weight (D, M) + bias (M,) -> (N, M), one fused node. Also accepts x of shape (N, ..., D).

    The weight is (in_features, out_features), the transpose of PyTorch's layout, so no transposed copy is made.
    """
    x = _as_input(x)
    w = _array(weight)
    _lin.check_affine("linear", _array(x), w, None if bias is None else _array(bias), w.shape[-1] if w.ndim else 0)
    return _lin.Linear.apply(x, weight, bias)


def maxout(x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, pieces: int = 2) -> Tensor:
    """Maxout of ``pieces`` affine maps: x (N, D), weight (D, pieces*M), bias (pieces*M,) -> (N, M).

    Piece p is the column block ``weight[:, p*M:(p+1)*M]``; the k maps are one GEMM, then an elementwise max.
    """
    x = _as_input(x)
    w = _array(weight)
    if pieces < 1 or w.ndim != 2 or w.shape[1] % pieces:
        raise ValueError(f"maxout: weight columns {w.shape[-1] if w.ndim else w.shape} must be pieces={pieces} "
                         "times out_features")
    _lin.check_affine("maxout", _array(x), w, None if bias is None else _array(bias), w.shape[1])
    if _array(x).ndim != 2:
        raise ValueError(f"maxout: expected input of shape (N, D), got {_array(x).shape}")
    return _act.Maxout.apply(x, weight, bias, pieces=int(pieces))


def dropout(x: TensorLike, p: float = 0.5, training: bool = True,
            generator: np.random.Generator | int | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by 1/(1-p) (training); the
    identity when ``training`` is False or p == 0. ``generator`` (a Generator or seed) makes the mask reproducible;
    None draws from the global generator after ``chainrule.manual_seed``, else from fresh OS entropy."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: expected p in [0, 1], got {p}")
    x = _as_input(x)
    if not training or p == 0.0:
        return x if isinstance(x, Tensor) else Tensor(x)
    from chainrule.utils.seeding import as_generator

    gen = as_generator(generator, name="generator")
    data = _array(x)
    return _drop.Dropout.apply(x, _drop.dropout_mask(data.shape, float(p), gen, data.dtype))


def dropout2d(x: TensorLike, p: float = 0.5, training: bool = True,
              generator: np.random.Generator | int | None = None) -> Tensor:
    """Channel dropout of x (N, C, H, W): zero each whole channel (feature map) with probability ``p`` and scale
    the kept ones by 1/(1-p) in training; the identity otherwise. ``generator`` as for ``dropout``. A 3-D input is
    refused: PyTorch 2.13 reads it as (N, C, L) with a warning that it will read it as (C, H, W) in a future
    release, so either reading would surprise someone."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: expected p in [0, 1], got {p}")
    x = _as_input(x)
    data = _array(x)
    if data.ndim != 4:
        raise ValueError(f"dropout2d: expected input of shape (N, C, H, W), got {data.shape}; for one (C, H, W) "
                         "image pass x[None], for (N, D) features use dropout")
    if not training or p == 0.0:
        return x if isinstance(x, Tensor) else Tensor(x)
    from chainrule.utils.seeding import as_generator

    gen = as_generator(generator, name="generator")
    mask_shape = data.shape[:-2] + (1, 1)  # one draw per (sample, channel), broadcast over H and W
    return _drop.Dropout.apply(x, _drop.dropout_mask(mask_shape, float(p), gen, data.dtype))


def batch_norm(x: TensorLike, running_mean: np.ndarray | None, running_var: np.ndarray | None,
               weight: TensorLike | None = None, bias: TensorLike | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization of x (N, C) per feature, or of x (N, C, H, W) (any (N, C, *spatial)) per channel over
    N, H and W (PyTorch's argument order).

    ``training=True``: batch statistics, and ``running_mean`` / ``running_var`` (C,) arrays, if given, are updated
    in place (momentum, unbiased variance). ``training=False``: the running statistics are used.
    """
    x = _as_input(x)
    data = _array(x)
    if data.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C) or (N, C, H, W), got {data.shape}")
    d = data.shape[1]
    for name, a in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        if a is not None and _array(a).shape != (d,):
            raise ValueError(f"batch_norm: expected {name} of shape ({d},) for input {data.shape}, "
                             f"got {_array(a).shape}")
    for name, a in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        if a is not None and _array(a).dtype != data.dtype:
            raise TypeError(f"batch_norm: input dtype {data.dtype} does not match {name} dtype {_array(a).dtype}; "
                            f"convert one of them (a module: model.to(np.{data.dtype}))")
    if training:
        if data.size // max(d, 1) < 2:
            raise ValueError(f"batch_norm: training needs more than 1 value per channel, got input {data.shape}")
    elif running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var")
    return _norm.BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                                 training=bool(training), momentum=float(momentum), eps=float(eps))


def layer_norm(x: TensorLike, normalized_shape: int | tuple[int, ...], weight: TensorLike | None = None,
               bias: TensorLike | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample of x (..., *normalized_shape) over its last axes; weight/bias of normalized_shape."""
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    x = _as_input(x)
    data = _array(x)
    if data.shape[data.ndim - len(shape):] != shape or data.ndim < len(shape):
        raise ValueError(f"layer_norm: input of shape {data.shape} does not end in normalized_shape {shape}")
    for name, a in (("weight", weight), ("bias", bias)):
        if a is not None and _array(a).shape != shape:
            raise ValueError(f"layer_norm: expected {name} of shape {shape}, got {_array(a).shape}")
        if a is not None and _array(a).dtype != data.dtype:
            raise TypeError(f"layer_norm: input dtype {data.dtype} does not match {name} dtype {_array(a).dtype}")
    return _norm.LayerNorm.apply(x, weight, bias, ndim=len(shape), eps=float(eps))


# ---- activations --------------------------------------------------------------------------------------------


def leaky_relu(x: TensorLike, negative_slope: float = 0.01) -> Tensor:
    """max(negative_slope * x, x); the lecture's max(0.1x, x) is ``negative_slope=0.1``."""
    return _act.LeakyRelu.apply(_as_input(x), negative_slope=float(negative_slope))


def elu(x: TensorLike, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha (exp(x) - 1) otherwise."""
    return _act.Elu.apply(_as_input(x), alpha=float(alpha))


def gelu(x: TensorLike, approximate: str = "none") -> Tensor:
    """x Phi(x): ``approximate="none"`` (exact, erf) or ``"tanh"`` (0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))))."""
    if approximate == "none":
        return _act.GeluErf.apply(_as_input(x))
    if approximate == "tanh":
        return _act.GeluTanh.apply(_as_input(x))
    raise ValueError(f"gelu: expected approximate='none' or 'tanh', got {approximate!r}")


# ---- losses -------------------------------------------------------------------------------------------------

_check_reduction = _loss.check_reduction


def check_labels(op: str, y: Any, n: int, num_classes: int) -> np.ndarray:
    """Integer class labels y (n,) in [0, num_classes), as an integer array; ValueError naming the first bad one."""
    y = _array(y)
    if y.ndim != 1:
        raise ValueError(f"{op}: expected labels of shape ({n},), got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"{op}: scores have {n} rows but y has {y.shape[0]} labels; pass one label per sample")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if bad.size:
            raise ValueError(f"{op}: expected integer labels, got {y[bad[0]]} at index {bad[0]}")
        y = y.astype(np.intp)
    elif y.dtype.kind not in "iu":
        first = f"{y[0]!r} at index 0" if y.size else "no labels"
        raise ValueError(f"{op}: expected integer labels, got dtype {y.dtype} ({first})")
    if n and (y.min() < 0 or y.max() >= num_classes):
        i = int(np.flatnonzero((y < 0) | (y >= num_classes))[0])
        raise ValueError(f"{op}: expected labels in [0, {num_classes}), got {y[i]} at index {i}")
    return y


def _check_scores(op: str, scores: Any, reduction: str) -> np.ndarray:
    _check_reduction(op, reduction)
    s = _array(scores)
    if s.ndim != 2:
        raise ValueError(f"{op}: expected scores of shape (N, C), got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.floating):
        raise TypeError(f"{op}: expected floating-point scores, got dtype {s.dtype}")
    if s.shape[0] == 0 and reduction == "mean":
        raise ValueError(f"{op}: the mean over an empty batch is undefined; pass at least one sample")
    return s


def multiclass_hinge(scores: TensorLike, y: Any, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """The multiclass SVM loss: loss_i = sum_{j != y_i} max(0, s_ij - s_{i,y_i} + margin), averaged over N.

    (PyTorch's ``multi_margin_loss`` is this divided by C.)
    """
    s = _check_scores("multiclass_hinge", scores, reduction)
    labels = check_labels("multiclass_hinge", y, s.shape[0], s.shape[1])
    return _loss.MulticlassHinge.apply(_as_input(scores), labels, reduction=reduction, margin=float(margin))


def _check_target(op: str, pred: Any, target: Any, reduction: str) -> Any:
    """A target of pred's shape and dtype: arrays are cast to pred's dtype; a Tensor must already match."""
    _check_reduction(op, reduction)
    p = _array(pred)
    if not np.issubdtype(p.dtype, np.floating):
        raise TypeError(f"{op}: expected a floating-point input, got dtype {p.dtype}")
    if isinstance(target, Tensor):
        if target.dtype != p.dtype:
            raise TypeError(f"{op}: target dtype {target.dtype} does not match input dtype {p.dtype}; "
                            "convert one of them")
    else:
        target = np.asarray(target, dtype=p.dtype)
    if _array(target).shape != p.shape:
        raise ValueError(f"{op}: input has shape {p.shape} but target has shape {_array(target).shape}; "
                         "they must match exactly (reshape the target, e.g. y[:, None])")
    if p.size == 0 and reduction == "mean":
        raise ValueError(f"{op}: the mean over an empty input is undefined")
    return target


def mse(pred: TensorLike, target: TensorLike, reduction: str = "mean") -> Tensor:
    """Squared error (pred - target)^2, averaged over all elements for ``reduction="mean"``."""
    target = _check_target("mse", pred, target, reduction)
    return _loss.MSE.apply(_as_input(pred), target, reduction=reduction)


mse_loss = mse


def _broadcast_weight(op: str, name: str, w: Any, x: np.ndarray) -> Any:
    """A constant weight that broadcasts to x's shape (without growing it), as an array of x's dtype."""
    if w is None:
        return None
    if isinstance(w, Tensor) and w.requires_grad:
        raise ValueError(f"{op}: {name} is a constant (PyTorch gives it no gradient either); pass {name}.detach()")
    w = np.asarray(_array(w), dtype=x.dtype)
    try:
        ok = np.broadcast_shapes(_array(w).shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{op}: {name} of shape {_array(w).shape} does not broadcast to the input's shape {x.shape}; "
                         f"give it that shape or one that broadcasts (e.g. ({x.shape[-1]},) per class)")
    return w


def binary_cross_entropy_with_logits(logits: TensorLike, target: TensorLike, reduction: str = "mean", *,
                                     weight: Any = None, pos_weight: Any = None) -> Tensor:
    """Logistic loss of logits against targets in [0, 1] (same shape), computed stably from the logits:
    max(x, 0) - x t + log(1 + exp(-|x|)); averaged over all elements for ``reduction="mean"``.

    PyTorch's keyword arguments: ``pos_weight`` multiplies the positive term, -pw t log sigmoid(x) (broadcast
    against the logits: one per class for (N, C), > 1 raises recall); ``weight`` rescales each element's loss.
    """
    target = _check_target("binary_cross_entropy_with_logits", logits, target, reduction)
    x = _array(logits)
    weight = _broadcast_weight("binary_cross_entropy_with_logits", "weight", weight, x)
    pos_weight = _broadcast_weight("binary_cross_entropy_with_logits", "pos_weight", pos_weight, x)
    return _loss.BinaryCrossEntropyWithLogits.apply(_as_input(logits), target, reduction=reduction, weight=weight,
                                                    pos_weight=pos_weight)


def l2_penalty(params: Iterable[Tensor] | Any, lam: float) -> Tensor:
    """lam * sum_W sum(W^2), the explicit L2 regulariser added to the data loss (one node for all W).

    ``params`` is an iterable of Tensors (e.g. ``[fc1.weight, fc2.weight]``) or a Module, in which case its weight
    matrices (parameters of 2 or more dimensions: not biases or normalisation scales) are penalised.
    """
    if lam < 0:
        raise ValueError(f"l2_penalty: expected lam >= 0, got {lam}")
    from chainrule.nn.module import Module

    if isinstance(params, Module):
        params = [p for p in params.parameters() if p.ndim >= 2]
    else:
        params = list(params)
    if not params:
        raise ValueError("l2_penalty: no parameters given")
    return _loss.L2Penalty.apply(*params, lam=float(lam))
