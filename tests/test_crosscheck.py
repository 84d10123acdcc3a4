"""Cross-check against independent autodiff engines: randomly composed graphs (seeded) built op by op in chainrule,
replayed in PyTorch and in HIPS autograd, must give the same forward values and the same gradients.

Graphs reuse nodes at random (diamonds, the copy gate), mix broadcasting with (4,) and 0-d leaves, and every op
maps a (3, 4) tensor to a (3, 4) tensor so that any node can feed any op. At kinks the three engines make the
same choice: ties split evenly (max, maximum), relu'(0) = abs'(0) = 0, clip passes the gradient at its bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor

N_GRAPHS = 30
N_OPS = 24
SHAPE = (3, 4)
LEAF_SHAPES = [SHAPE, SHAPE, SHAPE, (4,), ()]
ROWS = [2, 0, 0]  # repeated index: gradients accumulate


# ---- the op table: one entry, three engines ------------------------------------------------------------------


class ChainruleOps:
    tanh = staticmethod(cr.tanh)
    exp = staticmethod(cr.exp)
    log = staticmethod(cr.log)
    sqrt = staticmethod(cr.sqrt)
    abs = staticmethod(cr.abs)
    sigmoid = staticmethod(cr.sigmoid)
    relu = staticmethod(cr.relu)
    maximum = staticmethod(cr.maximum)
    minimum = staticmethod(cr.minimum)
    where = staticmethod(cr.where)

    @staticmethod
    def clip(x, lo, hi):
        return cr.clip(x, lo, hi)

    @staticmethod
    def softmax(x, axis):
        return cr.softmax(x, axis=axis)

    @staticmethod
    def log_softmax(x, axis):
        return cr.log_softmax(x, axis=axis)

    @staticmethod
    def logsumexp(x, axis):
        return cr.logsumexp(x, axis=axis, keepdims=True)

    @staticmethod
    def sum(x, axis=None, keepdims=False):
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def mean(x, axis):
        return x.mean(axis=axis, keepdims=True)

    @staticmethod
    def var(x, axis):
        return x.var(axis=axis, keepdims=True)

    @staticmethod
    def max(x, axis):
        return x.max(axis=axis, keepdims=True)

    @staticmethod
    def min(x, axis):
        return x.min(axis=axis, keepdims=True)

    @staticmethod
    def flip_cols(x):
        return x[:, ::-1]

    @staticmethod
    def concat_cols(parts):
        return cr.concatenate(parts, axis=1)

    @staticmethod
    def stack0(parts):
        return cr.stack(parts, axis=0)

    @staticmethod
    def transpose(x):
        return x.T

    @staticmethod
    def reshape(x, shape):
        return x.reshape(shape)

    @staticmethod
    def broadcast_to(x, shape):
        return cr.broadcast_to(x, shape)

    @staticmethod
    def unsqueeze_squeeze(x):
        return cr.squeeze(cr.unsqueeze(x, 0), 0)


class TorchOps:
    def __init__(self) -> None:
        import torch

        self.torch = torch

    def __getattr__(self, name: str) -> Callable:
        return getattr(self.torch, name)

    def clip(self, x, lo, hi):
        return self.torch.clamp(x, lo, hi)

    def relu(self, x):
        return self.torch.relu(x)

    def softmax(self, x, axis):
        return self.torch.softmax(x, dim=axis)

    def log_softmax(self, x, axis):
        return self.torch.log_softmax(x, dim=axis)

    def logsumexp(self, x, axis):
        return self.torch.logsumexp(x, dim=axis, keepdim=True)

    def sum(self, x, axis=None, keepdims=False):
        return x.sum() if axis is None else x.sum(dim=axis, keepdim=keepdims)

    def mean(self, x, axis):
        return x.mean(dim=axis, keepdim=True)

    def var(self, x, axis):
        return x.var(dim=axis, keepdim=True, correction=0)

    def max(self, x, axis):
        return self.torch.amax(x, dim=axis, keepdim=True)  # amax splits ties evenly

    def min(self, x, axis):
        return self.torch.amin(x, dim=axis, keepdim=True)

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)

    def flip_cols(self, x):
        return self.torch.flip(x, [1])

    def concat_cols(self, parts):
        return self.torch.cat(parts, dim=1)

    def stack0(self, parts):
        return self.torch.stack(parts, dim=0)

    def transpose(self, x):
        return x.T

    def reshape(self, x, shape):
        return x.reshape(shape)

    def broadcast_to(self, x, shape):
        return x.broadcast_to(shape)

    def unsqueeze_squeeze(self, x):
        return x.unsqueeze(0).squeeze(0)


class AutogradOps:
    def __init__(self) -> None:
        import autograd.numpy as anp
        from autograd.scipy.special import logsumexp

        self.np = anp
        self._logsumexp = logsumexp

    def __getattr__(self, name: str) -> Callable:
        return getattr(self.np, name)

    def sigmoid(self, x):
        return 0.5 * (self.np.tanh(0.5 * x) + 1.0)

    def relu(self, x):
        return x * (x > 0)  # relu'(0) = 0, like the others (autograd's maximum(x, 0) would split the tie)

    def clip(self, x, lo, hi):
        inside = (x >= lo) & (x <= hi)  # autograd's own clip blocks the gradient at the bounds
        return self.np.where(inside, x, self.np.clip(x, lo, hi))

    def softmax(self, x, axis):
        return self.np.exp(x - self._logsumexp(x, axis=axis, keepdims=True))

    def log_softmax(self, x, axis):
        return x - self._logsumexp(x, axis=axis, keepdims=True)

    def logsumexp(self, x, axis):
        return self._logsumexp(x, axis=axis, keepdims=True)

    def sum(self, x, axis=None, keepdims=False):
        return self.np.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x, axis):
        return self.np.mean(x, axis=axis, keepdims=True)

    def var(self, x, axis):
        return self.np.var(x, axis=axis, keepdims=True)

    def max(self, x, axis):
        return self.np.max(x, axis=axis, keepdims=True)

    def min(self, x, axis):
        return self.np.min(x, axis=axis, keepdims=True)

    def flip_cols(self, x):
        return x[:, ::-1]

    def concat_cols(self, parts):
        return self.np.concatenate(parts, axis=1)

    def stack0(self, parts):
        return self.np.stack(parts, axis=0)

    def transpose(self, x):
        return x.T

    def reshape(self, x, shape):
        return self.np.reshape(x, shape)

    def broadcast_to(self, x, shape):
        return x + self.np.zeros(shape)  # autograd has no differentiable broadcast_to

    def unsqueeze_squeeze(self, x):
        return self.np.squeeze(self.np.expand_dims(x, 0), 0)


@dataclass
class Op:
    name: str
    arity: int
    fn: Callable[..., Any]  # fn(E, *inputs) with E the engine's op namespace
    broadcasts: bool = False  # the second input may be any leaf shape (elementwise binary ops)


OPS = [
    Op("tanh", 1, lambda E, x: E.tanh(x)),
    Op("sigmoid", 1, lambda E, x: E.sigmoid(x)),
    Op("exp of tanh", 1, lambda E, x: E.exp(E.tanh(x))),
    Op("log", 1, lambda E, x: E.log(x * x + 1.0)),
    Op("sqrt", 1, lambda E, x: E.sqrt(x * x + 0.5)),
    Op("abs", 1, lambda E, x: E.abs(x)),
    Op("relu", 1, lambda E, x: E.relu(x)),
    Op("neg", 1, lambda E, x: -x),
    Op("pow int", 1, lambda E, x: E.tanh(x) ** 2),
    Op("pow float", 1, lambda E, x: (x * x + 1.0) ** 1.5),
    Op("rpow", 1, lambda E, x: 2.0 ** E.tanh(x)),
    Op("rsub rdiv", 1, lambda E, x: 1.0 - 3.0 / (x * x + 2.0)),
    Op("clip", 1, lambda E, x: E.clip(x, -0.5, 0.8)),
    Op("leaky where", 1, lambda E, x: E.where(x > 0, x, 0.1 * x)),
    Op("softmax rows", 1, lambda E, x: E.softmax(x, 1)),
    Op("softmax cols", 1, lambda E, x: E.softmax(x, 0)),
    Op("log_softmax", 1, lambda E, x: E.log_softmax(x, 1) * 0.3),
    Op("minus logsumexp", 1, lambda E, x: x - E.logsumexp(x, 1)),
    Op("times mean", 1, lambda E, x: x * E.mean(x, 0)),
    Op("over 1 + var", 1, lambda E, x: x / (E.var(x, 1) + 1.0)),
    Op("times max", 1, lambda E, x: x * E.max(x, 1)),
    Op("minus min", 1, lambda E, x: x - E.min(x, 0)),
    Op("times tanh sum", 1, lambda E, x: x * E.tanh(E.sum(x))),
    Op("broadcast column sum", 1, lambda E, x: E.broadcast_to(E.sum(x, 0, True), SHAPE) * 0.5),
    Op("repeated rows", 1, lambda E, x: x[ROWS]),
    Op("flip columns", 1, lambda E, x: E.flip_cols(x)),
    Op("transpose reshape", 1, lambda E, x: E.reshape(E.transpose(x), SHAPE)),
    Op("unsqueeze squeeze", 1, lambda E, x: E.unsqueeze_squeeze(x) * 1.5),
    Op("split concat", 1, lambda E, x: E.concat_cols([x[:, :1] * 2.0, E.tanh(x[:, 1:])])),
    Op("add", 2, lambda E, a, b: a + b, broadcasts=True),
    Op("sub", 2, lambda E, a, b: a - b, broadcasts=True),
    Op("mul", 2, lambda E, a, b: a * b, broadcasts=True),
    Op("div", 2, lambda E, a, b: a / (b * b + 1.0), broadcasts=True),
    Op("maximum", 2, lambda E, a, b: E.maximum(a, b), broadcasts=True),
    Op("minimum", 2, lambda E, a, b: E.minimum(a, b), broadcasts=True),
    Op("pow tensor exponent", 2, lambda E, a, b: (a * a + 1.0) ** E.tanh(b), broadcasts=True),
    Op("row and column broadcast", 2, lambda E, a, b: a * b[0] + b[:, :1]),
    Op("matmul", 2, lambda E, a, b: (a @ b.T) @ a * 0.25),
    Op("batched matmul", 2, lambda E, a, b: E.sum(E.stack0([a, b]) @ (a.T @ b) * 0.1, 0)),
    Op("stack max", 2, lambda E, a, b: E.max(E.stack0([a, b]), 0)[0]),
]


@dataclass
class Step:
    op: int
    inputs: tuple[int, ...]


def build_program(seed: int) -> tuple[list[np.ndarray], list[Step], list[int], list[np.ndarray]]:
    """A random graph, decided while running it in chainrule: leaves, steps, the nodes in the loss and weights.

    A step whose output exceeds 5 in magnitude is followed by tanh (in every engine) to keep values moderate.
    """
    rng = np.random.default_rng(seed)
    leaves = [rng.standard_normal(s) for s in LEAF_SHAPES]
    values = [Tensor(a) for a in leaves]
    full = [i for i, s in enumerate(LEAF_SHAPES) if s == SHAPE]  # nodes of SHAPE, usable anywhere
    steps = []
    tanh = next(i for i, op in enumerate(OPS) if op.name == "tanh")
    for _ in range(N_OPS):
        k = int(rng.integers(len(OPS)))
        op = OPS[k]

        def pick(pool: list[int]) -> int:  # favour recent nodes (depth) but reuse old ones too (diamonds)
            return pool[-1 - int(min(rng.geometric(0.35) - 1, len(pool) - 1))] if rng.random() < 0.7 \
                else pool[int(rng.integers(len(pool)))]

        inputs = [pick(full)]
        if op.arity == 2:
            inputs.append(int(rng.integers(len(values))) if op.broadcasts and rng.random() < 0.3 else pick(full))
        steps.append(Step(k, tuple(inputs)))
        values.append(op.fn(ChainruleOps, *(values[i] for i in inputs)))
        full.append(len(values) - 1)
        if np.abs(values[-1].data).max() > 5:
            steps.append(Step(tanh, (len(values) - 1,)))
            values.append(cr.tanh(values[-1]))
            full.append(len(values) - 1)
    outputs = sorted({len(values) - 1, *rng.choice(full, size=3, replace=False).tolist()})
    weights = [rng.standard_normal(SHAPE) for _ in outputs]
    return leaves, steps, outputs, weights


def run(E: Any, leaves: list, steps: list[Step], outputs: list[int], weights: list) -> tuple[list, Any]:
    """All node values and the loss sum_i sum(node_i * weight_i), in engine E."""
    values = list(leaves)
    for step in steps:
        values.append(OPS[step.op].fn(E, *(values[i] for i in step.inputs)))
    loss = None
    for i, w in zip(outputs, weights):
        term = E.sum(values[i] * w)
        loss = term if loss is None else loss + term
    return values, loss


def chainrule_result(program) -> tuple[list[np.ndarray], float, list[np.ndarray]]:
    leaves, steps, outputs, weights = program
    xs = [Tensor(a.copy(), requires_grad=True) for a in leaves]
    values, loss = run(ChainruleOps, xs, steps, outputs, weights)
    loss.backward()
    grads = [x.grad if x.grad is not None else np.zeros_like(x.data) for x in xs]
    return [v.data for v in values], loss.item(), grads


def torch_result(program) -> tuple[list[np.ndarray], float, list[np.ndarray]]:
    torch = pytest.importorskip("torch")
    leaves, steps, outputs, weights = program
    xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in leaves]
    values, loss = run(TorchOps(), xs, steps, outputs, [torch.tensor(w) for w in weights])
    loss.backward()
    grads = [x.grad.numpy() if x.grad is not None else np.zeros(x.shape) for x in xs]
    return [v.detach().numpy() for v in values], loss.item(), grads


def autograd_result(program) -> tuple[list[np.ndarray], float, list[np.ndarray]]:
    autograd = pytest.importorskip("autograd")
    leaves, steps, outputs, weights = program
    E = AutogradOps()
    values, loss = run(E, list(leaves), steps, outputs, weights)
    grads = autograd.grad(lambda xs: run(E, list(xs), steps, outputs, weights)[1])(list(leaves))
    return [np.asarray(v) for v in values], float(loss), list(grads)


@pytest.mark.parametrize("engine", [torch_result, autograd_result], ids=["torch", "autograd"])
@pytest.mark.parametrize("seed", range(N_GRAPHS))
def test_random_graph_matches(engine: Callable, seed: int) -> None:
    program = build_program(seed)
    values, loss, grads = chainrule_result(program)
    ref_values, ref_loss, ref_grads = engine(program)
    assert len(values) == len(ref_values)
    for i, (v, r) in enumerate(zip(values, ref_values)):
        np.testing.assert_allclose(v, r, rtol=1e-10, atol=1e-12, err_msg=f"forward value of node {i}")
    assert loss == pytest.approx(ref_loss, rel=1e-10, abs=1e-12)
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert g.shape == np.shape(r)
        np.testing.assert_allclose(g, r, rtol=1e-8, atol=1e-10, err_msg=f"gradient of leaf {i}")


def test_programs_use_every_op_and_reuse_nodes() -> None:
    """The seeded graphs exercise the whole op table, reuse nodes, and reach the broadcast leaves."""
    used_ops, reused, broadcast_leaf_used = set(), 0, False
    for seed in range(N_GRAPHS):
        _, steps, _, _ = build_program(seed)
        used_ops |= {s.op for s in steps}
        counts = np.bincount([i for s in steps for i in s.inputs])
        reused += int((counts > 1).sum())
        broadcast_leaf_used |= any(i in (3, 4) for s in steps for i in s.inputs)
    assert used_ops == set(range(len(OPS)))
    assert reused > N_GRAPHS and broadcast_leaf_used
