"""Padding layers with PyTorch's names: ``ZeroPad2d``, ``ConstantPad2d``, ``ReflectionPad2d``, ``ReplicationPad2d``
and ``CircularPad2d`` over (N, C, H, W) or (C, H, W), thin modules over ``F.pad``.

``padding`` is an int (all four sides) or PyTorch's (left, right, top, bottom).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class _Pad2d(Module):
    mode = "constant"

    def __init__(self, padding: Any, value: float = 0.0):
        super().__init__()
        pads = (padding,) * 4 if isinstance(padding, (int, np.integer)) else tuple(padding)
        if len(pads) != 4 or any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) for p in pads):
            raise ValueError(f"{type(self).__name__}: expected padding as an int or (left, right, top, bottom), got "
                             f"{padding!r}")
        self.padding, self.value = tuple(int(p) for p in pads), float(value)

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.padding, self.mode, self.value if self.mode == "constant" else None)

    def extra_repr(self) -> str:
        return f"{self.padding}" + (f", value={self.value}" if type(self) is ConstantPad2d else "")


class ZeroPad2d(_Pad2d):
    """Pad with zeros."""

    def __init__(self, padding: Any):
        super().__init__(padding, 0.0)


class ConstantPad2d(_Pad2d):
    """Pad with ``value``."""

    def __init__(self, padding: Any, value: float):
        super().__init__(padding, value)


class ReflectionPad2d(_Pad2d):
    """Pad with the mirror image of the input, the edge not repeated (each pad smaller than that size)."""

    mode = "reflect"


class ReplicationPad2d(_Pad2d):
    """Pad by repeating the edge values."""

    mode = "replicate"


class CircularPad2d(_Pad2d):
    """Pad by wrapping around (the input tiled), as for periodic boundaries."""

    mode = "circular"
