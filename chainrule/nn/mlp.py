"""``MLP``: the lectures' fully-connected network in one line, ``MLP([3072, 100, 10])``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from chainrule.nn import init
from chainrule.nn.activations import ACTIVATION_NAMES, ACTIVATIONS, Maxout
from chainrule.nn.dropout import Dropout
from chainrule.nn.linear import Linear
from chainrule.nn.module import Module, Sequential
from chainrule.nn.normalization import BatchNorm1d, LayerNorm
from chainrule.utils.seeding import as_generator

class MLP(Sequential):
    """A fully-connected network: ``sizes = [D, H1, ..., C]`` gives len(sizes) - 1 affine layers.

    Each hidden layer is ``Linear -> [BatchNorm1d | LayerNorm] -> activation -> [Dropout]`` (CS231n's
    affine - batchnorm - relu - dropout); the last is a plain ``Linear`` producing scores (N, C). With
    ``activation="maxout"`` each hidden ``Linear + activation`` is a ``Maxout(.., pieces)`` layer instead.

    Initialisation, from ``seed`` (int or Generator): hidden weights Kaiming-normal with the activation's gain
    (std = gain / sqrt(fan_in): sqrt(2 / fan_in) for ReLU), the output layer with gain 1; biases 0. Each Dropout gets
    its own generator spawned from the same seed, so a seeded MLP trains reproducibly. Layers are named "0", "1",
    ... as in ``Sequential``, so state-dict keys are "0.weight", "0.bias", ...
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", dropout: float = 0.0,
                 norm: str | None = None, *, seed: Any = None, dtype: Any = np.float32, pieces: int = 2):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP: expected sizes like [D, H, C] with at least 2 positive entries, got {sizes}")
        if activation not in ACTIVATION_NAMES:
            raise ValueError(f"MLP: unknown activation {activation!r}; expected one of {list(ACTIVATION_NAMES)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: expected dropout in [0, 1), got {dropout}")
        if norm not in (None, "batch", "layer"):
            raise ValueError(f"MLP: expected norm None, 'batch' or 'layer', got {norm!r}")
        self.sizes, self.activation, self.dropout, self.norm = tuple(sizes), activation, float(dropout), norm
        rng = as_generator(seed)
        gain_name = "linear" if activation == "identity" else activation
        for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1], strict=True):
            if activation == "maxout":
                layer = Maxout(fan_in, fan_out, pieces, dtype=dtype, seed=rng)
            else:
                layer = Linear(fan_in, fan_out, dtype=dtype, seed=rng)
            layer.weight.data[...] = init.kaiming_normal(layer.weight.shape, gain_name, rng=rng, dtype=dtype)
            layer.bias.data[...] = 0
            self.append(layer)
            if norm == "batch":
                self.append(BatchNorm1d(fan_out, dtype=dtype))
            elif norm == "layer":
                self.append(LayerNorm(fan_out, dtype=dtype))
            if activation != "maxout":
                self.append(ACTIVATIONS[activation]())
            if dropout > 0:
                self.append(Dropout(dropout, seed=rng.spawn(1)[0]))
        head = Linear(sizes[-2], sizes[-1], dtype=dtype, seed=rng)
        head.weight.data[...] = init.kaiming_normal(head.weight.shape, "linear", rng=rng, dtype=dtype)
        head.bias.data[...] = 0
        self.append(head)
