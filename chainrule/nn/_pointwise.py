"""``hardtanh``, ``softplus``, ``logsigmoid``, ``glu``, ``softshrink`` and ``rrelu`` (re-exported by
``chainrule.nn.functional``), with PyTorch's arguments and their checks. Any input shape; float32 stays float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn._functions import activation as _act
from chainrule.nn._functions import pointwise as _pw
from chainrule.tensor import Tensor


def _input(op: str, x: Any) -> Any:
    """A Tensor or a floating-point array (lists become float32 arrays, like Tensor)."""
    if not isinstance(x, (Tensor, np.ndarray)):
        x = Tensor(x).data
    dtype = x.dtype
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {dtype}; convert it, e.g. "
                        "x.astype(np.float32)")
    return x


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """clip(x, min_val, max_val) (gradient 1 strictly between them)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} must be <= max_val {max_val}")
    return _pw.Hardtanh.apply(_input("hardtanh", x), min_val=float(min_val), max_val=float(max_val))


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, a smooth ReLU; x itself where beta x > threshold, as PyTorch."""
    if beta == 0:
        raise ValueError("softplus: beta must be nonzero (the function divides by it)")
    return _pw.Softplus.apply(_input("softplus", x), beta=float(beta), threshold=float(threshold))


def logsigmoid(x: Any) -> Tensor:
    """log(1 / (1 + exp(-x))), computed without overflow."""
    return _pw.LogSigmoid.apply(_input("logsigmoid", x))


def glu(x: Any, dim: int = -1) -> Tensor:
    """Gated linear unit: the first half of x along ``dim`` times sigmoid of the second half (that axis halves)."""
    x = _input("glu", x)
    shape = x.shape
    if not shape or not -len(shape) <= dim < len(shape):
        raise ValueError(f"glu: dim {dim} is out of range for an input of shape {shape}")
    if shape[dim] % 2:
        raise ValueError(f"glu: the size along dim {dim} must be even (it is split in halves), got {shape[dim]} in "
                         f"shape {shape}")
    return _pw.Glu.apply(x, dim=int(dim) % len(shape))


def softshrink(x: Any, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 in between (lambd >= 0)."""
    if lambd < 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    return _pw.Softshrink.apply(_input("softshrink", x), lambd=float(lambd))


def rrelu(x: Any, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          generator: np.random.Generator | int | None = None) -> Tensor:
    """Randomized leaky ReLU (Xu et al., 2015). Training: each negative element is scaled by a slope drawn from
    U(lower, upper), from ``generator`` (a Generator or seed; None: the global generator after
    ``chainrule.manual_seed``, as ``dropout``). Evaluation: ``leaky_relu`` with the mean slope (lower + upper) / 2."""
    if not 0 <= lower <= upper:
        raise ValueError(f"rrelu: expected 0 <= lower <= upper, got lower={lower}, upper={upper}")
    x = _input("rrelu", x)
    if not training:
        return _act.LeakyRelu.apply(x, negative_slope=(lower + upper) / 2)
    from chainrule.utils.seeding import as_generator

    data = x.data if isinstance(x, Tensor) else x
    return _pw.RRelu.apply(x, _pw.rrelu_noise(data, lower, upper, as_generator(generator, name="generator")))
