"""What the trainer says when a step goes non-finite: the first parameter with a nan/inf gradient or optimizer state,
and whether the input batch itself was to blame. (The joint gradient norm and clipping are ``chainrule.optim.clip``'s.)

A finite gradient can still break the optimizer: Adam and RMSProp keep a running average of ``g * g``, which is
infinite in float32 once ``|g| > 1.8e19`` (and then the update of that entry is 0: the weights silently stop
moving). ``squares_may_overflow(norm, params)`` says when a step's gradient is that large (no entry can exceed the
joint norm, so below the bound nothing can overflow and nothing is checked); the trainer then checks the
optimizer's state after the step (``first_non_finite_state``) and treats a non-finite one like a non-finite loss.

``named_params`` is ``model.named_parameters()`` as a list of (name, parameter); parameters whose ``.grad`` is None
are skipped.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def first_non_finite(named_params: Sequence[tuple[str, Any]]) -> str:
    """The name of the first parameter whose gradient has a nan/inf entry ("?" if none has)."""
    return next((n for n, p in named_params if p.grad is not None and not np.all(np.isfinite(p.grad))), "?")


def squares_may_overflow(norm: float, params: Sequence[Any]) -> bool:
    """Whether a gradient of joint norm ``norm`` can have an entry whose square overflows the parameters' dtype."""
    if not params:
        return False
    tiny = min((p.data.dtype for p in params), key=lambda d: np.finfo(d).max)
    return norm >= float(np.sqrt(np.finfo(tiny).max))


def first_non_finite_state(optimizer: Any, named_params: Sequence[tuple[str, Any]]) -> str | None:
    """"'exp_avg_sq' of parameter 'layers.0.weight'" for the first optimizer state array holding nan/inf, else None."""
    for name, p in named_params:
        for key, value in (optimizer.state.get(p) or {}).items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                return f"{key!r} of parameter {name!r}"
    return None


def input_hint(xb: np.ndarray) -> str:
    """A note for the non-finite message when the input batch itself holds nan/inf or entries so large that their
    products overflow ("" otherwise)."""
    if not np.all(np.isfinite(xb)):
        return " (the input batch itself contains nan/inf)"
    largest = float(np.max(np.abs(xb))) if np.size(xb) and np.asarray(xb).dtype.kind in "fiu" else 0.0
    if largest >= 1e15:
        return (f" (the input batch has entries of magnitude {largest:.3g}: scale the inputs to ordinary magnitudes, "
                "e.g. the estimators' preprocessing='standardize')")
    return ""
