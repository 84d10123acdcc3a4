"""``Dropout`` and ``Dropout2d``: inverted dropout with its own seeded random generator."""

from __future__ import annotations

from typing import Any

from chainrule.nn import functional as F
from chainrule.utils.seeding import as_generator
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class Dropout(Module):
    """Zero each activation with probability ``p`` and scale the rest by 1/(1-p) in training; identity in eval.

    The masks come from ``self.generator`` (a ``numpy.random.Generator`` seeded by ``seed``: an int, a Generator, or
    None for OS entropy), so a seeded model trains reproducibly. ``rng_state()`` / ``set_rng_state()`` (and
    ``Module.rng_states()`` on the whole model) save and restore it for exact resume.
    """

    def __init__(self, p: float = 0.5, seed: Any = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: expected p in [0, 1], got {p}")
        self.p = float(p)
        self.generator = as_generator(seed)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return F.dropout(x, self.p, True, self.generator)

    def rng_state(self) -> dict:
        """The generator's state (a JSON-serialisable dict)."""
        return self.generator.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        self.generator.bit_generator.state = state

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Channel dropout of (N, C, H, W): zero whole feature maps with probability ``p`` and scale the
    rest by 1/(1-p) in training (Tompson et al., 2015); identity in eval. Seeded and resumable as ``Dropout``."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return F.dropout2d(x, self.p, False)  # still checks the shape
        return F.dropout2d(x, self.p, True, self.generator)
