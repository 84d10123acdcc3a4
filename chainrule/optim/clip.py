"""Gradient clipping: rescale all gradients together by their global norm, or clamp each entry.

Call between ``loss.backward()`` and ``optimizer.step()``::

    loss.backward()
    norm = clip_grad_norm(model.parameters(), max_norm=1.0)   # norm before clipping, for logging
    optimizer.step()
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from chainrule.engine import bump
from chainrule.optim.optimizer import _looks_like_param, check_real
from chainrule.tensor import Tensor


def _grads(params: Iterable[Any] | Any, writing: bool = False) -> list[np.ndarray]:
    """The gradient arrays of ``params`` (None skipped). A gradient that is a Tensor (left by
    ``backward(create_graph=True)``) gives its array; with ``writing`` (the caller changes the arrays in place) its
    version counter is bumped, so a graph that saved it refuses to backpropagate through the changed values."""
    if _looks_like_param(params):
        params = [params]
    grads = []
    for k, p in enumerate(params):
        if not _looks_like_param(p):
            raise TypeError(f"parameter {k} is a {type(p).__name__}; expected a Tensor/Parameter with .data and .grad")
        g = p.grad
        if g is None:
            continue
        if isinstance(g, Tensor):
            if writing:
                bump(g)
            g = g.data
        grads.append(g)
    return grads


def _norm(g: np.ndarray, norm_type: float) -> float:
    """The ``norm_type``-norm of one gradient array, as a Python float (accumulated without float32 overflow)."""
    if norm_type == math.inf:
        return float(np.max(np.abs(g))) if g.size else 0.0
    if norm_type == 2.0:
        flat = g.reshape(-1)
        with np.errstate(over="ignore"):  # float32 overflow is handled below
            sq = float(np.dot(flat, flat))  # BLAS dot: one pass, no temporary
        if math.isfinite(sq):
            return math.sqrt(sq)
        # Either a non-finite entry or float32 overflow of the sum of squares: rescale by the largest entry.
        big = float(np.max(np.abs(g)))
        if not math.isfinite(big) or big == 0.0:
            return big
        scaled = flat.astype(np.float64) / big
        return big * math.sqrt(float(np.dot(scaled, scaled)))
    if norm_type == 1.0:
        return float(np.sum(np.abs(g), dtype=np.float64))
    return float(np.sum(np.abs(g, dtype=np.float64) ** norm_type)) ** (1.0 / norm_type)


def total_grad_norm(params: Iterable[Any] | Any, norm_type: float = 2.0) -> float:
    """The joint ``norm_type``-norm of all gradients (as if concatenated; ``math.inf``: the largest absolute entry),
    accumulated without float32 overflow; nan or inf if an entry is. Parameters whose ``.grad`` is None are skipped;
    with no gradients at all the norm is 0 (``torch.nn.utils.get_total_norm``)."""
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or not norm_type > 0:
        raise ValueError(f"norm_type must be a positive number or math.inf, got {norm_type!r}")
    norm_type = float(norm_type)
    grads = _grads(params)
    if not grads:
        return 0.0
    norms = [_norm(g, norm_type) for g in grads]
    if any(math.isnan(n) for n in norms):
        return math.nan
    if norm_type == math.inf or any(math.isinf(n) for n in norms):
        return max(norms)
    # (sum n_i^p)^(1/p), factored by the largest n_i so that n_i^p cannot overflow
    largest = max(norms)
    ratios = math.fsum((n / largest) ** norm_type for n in norms) if largest > 0 else 0.0
    return largest * ratios ** (1.0 / norm_type)


def clip_grads_with_norm(params: Iterable[Any] | Any, max_norm: float, total_norm: float) -> None:
    """Scale all gradients in place by ``max_norm / (total_norm + 1e-6)`` when that is below 1, given their joint
    norm (``total_grad_norm``), so a caller that already has the norm does not compute it twice
    (``torch.nn.utils.clip_grads_with_norm_``)."""
    max_norm = check_real("max_norm", max_norm, low=0.0)
    coef = max_norm / (total_norm + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        with np.errstate(invalid="ignore"):  # inf * 0 = nan when scaling by an infinite norm, as torch does
            for g in _grads(params, writing=True):
                np.multiply(g, coef, out=g, casting="unsafe")


def clip_grad_norm(
    params: Iterable[Any] | Any, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients in place so that their joint norm is at most ``max_norm``; return the norm before.

    The joint norm is the ``norm_type``-norm of all gradient entries taken together (as if concatenated);
    ``norm_type`` may be ``math.inf`` (largest absolute entry). Gradients are multiplied by
    ``max_norm / (norm + 1e-6)`` when that is below 1 (``torch.nn.utils.clip_grad_norm_``'s rule), and left
    untouched otherwise. Parameters whose ``.grad`` is None are skipped; with no gradients at all the norm is 0.

    A non-finite norm (a nan or inf gradient) raises ``FloatingPointError`` if ``error_if_nonfinite`` is True;
    otherwise the gradients are scaled by it like PyTorch does (giving nan or zero gradients).
    """
    max_norm = check_real("max_norm", max_norm, low=0.0)
    params = list(params) if not _looks_like_param(params) else [params]
    total = total_grad_norm(params, norm_type)
    if not math.isfinite(total) and error_if_nonfinite:
        raise FloatingPointError(
            f"the total gradient norm of order {float(norm_type):g} is {total}, so the gradients cannot be clipped; "
            "look for an overflowing loss or a too-large learning rate, or pass error_if_nonfinite=False to "
            "scale by it anyway"
        )
    clip_grads_with_norm(params, max_norm, total)
    return total


def clip_grad_value(params: Iterable[Any] | Any, clip_value: float) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]`` in place (None gradients are skipped)."""
    clip_value = check_real("clip_value", clip_value, low=0.0)
    for g in _grads(params, writing=True):
        np.clip(g, -clip_value, clip_value, out=g)
