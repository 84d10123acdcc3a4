"""``Flatten``: the layer between image-shaped data and fully-connected layers (a reshape, PyTorch's ``nn.Flatten``)."""

from __future__ import annotations

from typing import Any

from chainrule import ops
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class Flatten(Module):
    """x (N, d1, d2, ...) -> (N, d1 * d2 * ...): merges axes ``start_dim`` .. ``end_dim`` (by default all but the
    batch axis), e.g. CIFAR-10 images (N, 32, 32, 3) into rows (N, 3072) for ``nn.Linear``. No copy when the input
    is contiguous; the gradient is reshaped back."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Any) -> Tensor:
        return ops.flatten(x if isinstance(x, Tensor) else Tensor(x), self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
