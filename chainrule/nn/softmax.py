"""``Softmax`` and ``LogSoftmax`` as layers (PyTorch's ``nn.Softmax(dim)`` / ``nn.LogSoftmax(dim)``).

For training a classifier use ``nn.CrossEntropyLoss`` on the raw scores instead: it fuses the softmax with the
loss (one node, a closed-form backward, no log of a rounded-off probability). These layers are for turning scores
into probabilities at prediction time, or for models whose output is a distribution.
"""

from __future__ import annotations

from typing import Any

from chainrule import ops
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``dim`` (default the last axis; PyTorch's implicit choice for dim=None is
    deprecated there and not copied here)."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = -1 if dim is None else int(dim)

    def forward(self, x: Any) -> Tensor:
        return ops.softmax(x if isinstance(x, Tensor) else Tensor(x), axis=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along ``dim``, computed stably (x - max - log(sum(exp(x - max))))."""

    def forward(self, x: Any) -> Tensor:
        return ops.log_softmax(x if isinstance(x, Tensor) else Tensor(x), axis=self.dim)
