"""A tiny neural-network library on the scalar Value engine (micrograd's nn, same graph).

Every weight is its own Value and every multiply-add is a node, so this is for
small demos and for seeing backpropagation node by node; the Tensor modules are
what you train real networks with.

    >>> model = MLP(2, [16, 16, 1], random_state=0)
    >>> score = model([Value(0.5), Value(-1.0)])        # one Value
    >>> len(model.parameters())
    337
"""
from __future__ import annotations

import random
from collections.abc import Sequence

from chainrule.value import Value


class Module:
    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """act = w . x + b for x of length nin, then ReLU unless ``nonlin=False``.

    Weights start uniform in [-1, 1] and the bias at 0, as in micrograd.
    """

    def __init__(self, nin: int, nonlin: bool = True, random_state: int | random.Random | None = None):
        rng = random_state if isinstance(random_state, random.Random) else random.Random(random_state)
        self.w = [Value(rng.uniform(-1.0, 1.0)) for _ in range(nin)]
        self.b = Value(0.0)
        self.nonlin = nonlin

    def __call__(self, x: Sequence[Value | float]) -> Value:
        if len(x) != len(self.w):
            raise ValueError(f"Neuron: expected {len(self.w)} inputs, got {len(x)}")
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """nout neurons that all see the same nin inputs."""

    def __init__(self, nin: int, nout: int, nonlin: bool = True,
                 random_state: int | random.Random | None = None):
        rng = random_state if isinstance(random_state, random.Random) else random.Random(random_state)
        self.neurons = [Neuron(nin, nonlin, rng) for _ in range(nout)]

    def __call__(self, x: Value | Sequence[Value | float]) -> Value | list[Value]:
        if isinstance(x, Value):       # the single output of a previous 1-neuron layer
            x = [x]
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """Fully connected layers nin -> nouts[0] -> ... -> nouts[-1], ReLU between, linear last."""

    def __init__(self, nin: int, nouts: Sequence[int], random_state: int | random.Random | None = None):
        rng = random_state if isinstance(random_state, random.Random) else random.Random(random_state)
        sizes = [nin] + list(nouts)
        self.layers = [Layer(sizes[i], sizes[i + 1], nonlin=i != len(nouts) - 1, random_state=rng)
                       for i in range(len(nouts))]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
