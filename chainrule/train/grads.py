"""The gradient checks of a training step: the joint norm, the first non-finite gradient, in-place scaling.

``named_params`` is ``model.named_parameters()`` as a list of (name, parameter); parameters whose ``.grad`` is None
are skipped. The trainer records the norm every step, stops on a non-finite one, and clips by scaling.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def grad_norm(named_params: Sequence[tuple[str, Any]]) -> float:
    """Joint L2 norm of all gradients (nan/inf if any entry is not finite; float32 overflow is recomputed)."""
    total = 0.0
    for _, p in named_params:
        if p.grad is not None:
            flat = p.grad.reshape(-1)
            sq = float(np.dot(flat, flat))
            if not math.isfinite(sq) and np.all(np.isfinite(flat)):  # float32 overflow of a finite gradient
                flat64 = flat.astype(np.float64)
                sq = float(np.dot(flat64, flat64))
            total += sq
    return math.sqrt(total) if total >= 0 else math.nan


def first_non_finite(named_params: Sequence[tuple[str, Any]]) -> str:
    """The name of the first parameter whose gradient has a nan/inf entry ("?" if none has)."""
    return next((n for n, p in named_params if p.grad is not None and not np.all(np.isfinite(p.grad))), "?")


def scale_grads(named_params: Sequence[tuple[str, Any]], scale: float) -> None:
    """Multiply every gradient by ``scale`` in place (keeping its dtype)."""
    for _, p in named_params:
        if p.grad is not None:
            np.multiply(p.grad, scale, out=p.grad, casting="unsafe")


def input_hint(xb: np.ndarray) -> str:
    """A note for the non-finite-loss message when the input batch itself holds nan/inf ("" otherwise)."""
    return " (the input batch itself contains nan/inf)" if not np.all(np.isfinite(xb)) else ""
