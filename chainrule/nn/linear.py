"""``Linear``: the fully-connected layer y = x W + b."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn import functional as F
from chainrule.nn import init
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import Tensor


class Linear(Module):
    """x (N, D) -> x W + b (N, M), one fused node (``F.linear``).

    ``weight`` has shape (in_features, out_features) = (D, M): the transpose of PyTorch's layout, so the forward
    pass is ``x @ W`` with no transposed copy (``to_torch_state_dict`` / ``load_torch_state_dict`` transpose it).
    ``bias`` has shape (M,).
    Both start U(-1/sqrt(D), 1/sqrt(D)), PyTorch's default; ``seed`` (int or Generator) makes that reproducible.
    State-dict keys: ``weight``, ``bias``.
    """

    _torch_transposed = ("weight",)

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype: Any = np.float32,
                 seed: Any = None):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear: expected positive sizes, got in_features={in_features}, "
                             f"out_features={out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((self.in_features, self.out_features), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype=dtype)) if bias else None
        self.reset_parameters(seed)

    def reset_parameters(self, seed: Any = None) -> None:
        """Redraw weight and bias from U(-1/sqrt(in_features), 1/sqrt(in_features))."""
        init.uniform_fan_in_(self.weight, self.bias, self.in_features, seed)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
