"""Activation layers (stateless wrappers over ``chainrule.nn.functional``) and ``Maxout``, which has weights.

``ACTIVATIONS`` is the one table of activations by name (``nn.MLP(activation=...)``, ``MLPClassifier``, the CLI
and the playground use it); ``ACTIVATION_NAMES`` adds "maxout", which replaces a hidden layer's Linear and
activation by a ``Maxout`` layer rather than following it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn import functional as F
from chainrule.nn import init
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import Tensor
from chainrule.utils.seeding import as_generator


class Identity(Module):
    """Returns its input unchanged."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class ReLU(Module):
    """max(0, x)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    """max(negative_slope * x, x); the lecture's max(0.1x, x) is ``LeakyReLU(0.1)``."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x if x > 0 else alpha (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(Module):
    """x Phi(x), exact (``approximate="none"``) or with the tanh approximation (``"tanh"``)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: expected approximate='none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Maxout(Module):
    """max over ``pieces`` affine maps of x (Goodfellow et al., 2013): x (N, D) -> (N, M).

    Holds all k maps in one weight of shape (D, k*M) (piece p is the column block ``weight[:, p*M:(p+1)*M]``) and
    a bias (k*M,), so the forward pass is one GEMM and an elementwise max. Initialised like ``Linear``. In
    PyTorch's layout (``to_torch_state_dict``) the weight is that of a ``torch.nn.Linear(D, k*M)``: (k*M, D).
    """

    _torch_transposed = ("weight",)

    def __init__(self, in_features: int, out_features: int, pieces: int = 2, bias: bool = True, *,
                 dtype: Any = np.float32, seed: Any = None):
        super().__init__()
        if in_features < 1 or out_features < 1 or pieces < 1:
            raise ValueError(f"Maxout: expected positive sizes, got in_features={in_features}, "
                             f"out_features={out_features}, pieces={pieces}")
        self.in_features, self.out_features, self.pieces = int(in_features), int(out_features), int(pieces)
        width = self.pieces * self.out_features
        self.weight = Parameter(np.empty((self.in_features, width), dtype=dtype))
        self.bias = Parameter(np.empty(width, dtype=dtype)) if bias else None
        self.reset_parameters(seed)

    def reset_parameters(self, seed: Any = None) -> None:
        """Redraw weight and bias from U(-1/sqrt(in_features), 1/sqrt(in_features)), as ``Linear``."""
        init.uniform_fan_in_(self.weight, self.bias, self.in_features, seed)

    def forward(self, x: Tensor) -> Tensor:
        return F.maxout(x, self.weight, self.bias, self.pieces)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}, "
                f"bias={self.bias is not None}")


class Hardtanh(Module):
    """clip(x, min_val, max_val)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0):
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val {min_val} must be <= max_val {max_val}")
        self.min_val, self.max_val = float(min_val), float(max_val)

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Softplus(Module):
    """log(1 + exp(beta x)) / beta (x itself where beta x > threshold)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        if beta == 0:
            raise ValueError("Softplus: beta must be nonzero")
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class LogSigmoid(Module):
    """log(1 / (1 + exp(-x)))."""

    def forward(self, x: Tensor) -> Tensor:
        return F.logsigmoid(x)


class GLU(Module):
    """Gated linear unit along ``dim``: a * sigmoid(b) of x's two halves."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = int(dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.glu(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softshrink(Module):
    """Soft thresholding: x - lambd above lambd, x + lambd below -lambd, 0 in between."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        if lambd < 0:
            raise ValueError(f"Softshrink: lambd must be >= 0, got {lambd}")
        self.lambd = float(lambd)

    def forward(self, x: Tensor) -> Tensor:
        return F.softshrink(x, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class RReLU(Module):
    """Randomized leaky ReLU: negative slopes drawn from U(lower, upper) in training, from ``self.generator``
    (seeded by ``seed`` and saved by ``rng_state()`` / ``Module.rng_states()``, as ``Dropout``'s); the mean slope
    (lower + upper) / 2 in evaluation."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, seed: Any = None):
        super().__init__()
        if not 0 <= lower <= upper:
            raise ValueError(f"RReLU: expected 0 <= lower <= upper, got lower={lower}, upper={upper}")
        self.lower, self.upper = float(lower), float(upper)
        self.generator = as_generator(seed)

    def forward(self, x: Tensor) -> Tensor:
        return F.rrelu(x, self.lower, self.upper, self.training, self.generator)

    def rng_state(self) -> dict:
        return self.generator.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        self.generator.bit_generator.state = state

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}"


ACTIVATIONS: dict[str, Any] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "gelu": GELU,
    "gelu_tanh": lambda: GELU("tanh"),
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "identity": Identity,
}
ACTIVATION_NAMES: tuple[str, ...] = (*ACTIVATIONS, "maxout")
