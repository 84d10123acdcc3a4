"""What the trainer says when a step goes non-finite: the first parameter with a nan/inf gradient, and whether
the input batch itself was to blame. (The joint gradient norm and clipping are ``chainrule.optim.clip``'s.)

``named_params`` is ``model.named_parameters()`` as a list of (name, parameter); parameters whose ``.grad`` is None
are skipped.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def first_non_finite(named_params: Sequence[tuple[str, Any]]) -> str:
    """The name of the first parameter whose gradient has a nan/inf entry ("?" if none has)."""
    return next((n for n, p in named_params if p.grad is not None and not np.all(np.isfinite(p.grad))), "?")


def input_hint(xb: np.ndarray) -> str:
    """A note for the non-finite-loss message when the input batch itself holds nan/inf ("" otherwise)."""
    return " (the input batch itself contains nan/inf)" if not np.all(np.isfinite(xb)) else ""
