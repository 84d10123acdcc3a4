"""Every op in chainrule.ops, from a registry of (op, sample inputs): forward against NumPy, backward against
numerical gradients (gradcheck, float64), and float32 in -> float32 out and float32 gradients.

Inputs are kept away from kinks and singularities: ``pos`` inputs lie in [0.5, 2], ``away`` inputs have
|x| in [0.3, 1.5] (relu, abs, maximum against 0), and random normals have no ties (max, min, maximum).
"""

from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import Function, Tensor, ops
from chainrule.backend.conv_geometry import ConvGeometry
from chainrule.nn import reference_conv as rc
from chainrule.ops import conv as conv_ops
from chainrule.ops import xp


@dataclass
class In:
    """One tensor argument: its shape, how to draw it, and whether it requires grad."""

    shape: tuple[int, ...]
    kind: str = "normal"  # normal | pos | neg | away
    grad: bool = True


@dataclass
class Case:
    name: str
    fn: Callable[..., Tensor]  # takes Tensors
    ref: Callable[..., np.ndarray]  # the same computation on NumPy arrays
    inputs: list[In] = field(default_factory=list)


def draw(spec: In, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    if spec.kind == "normal":
        x = rng.standard_normal(spec.shape)
    elif spec.kind == "pos":
        x = rng.uniform(0.5, 2.0, spec.shape)
    elif spec.kind == "neg":
        x = -rng.uniform(0.5, 2.0, spec.shape)
    elif spec.kind == "away":
        x = rng.uniform(0.3, 1.5, spec.shape) * rng.choice([-1.0, 1.0], spec.shape)
    else:
        raise ValueError(spec.kind)
    return np.asarray(x, dtype=dtype)


CONV_GEOM = ConvGeometry((2, 2), ((1, 1), (1, 1)), (1, 1), 2)  # the "conv weight gradient" case's geometry
MASK = np.random.default_rng(7).random((3, 4)) > 0.5  # a fixed condition / boolean mask
ROWS = np.array([True, False, True])


def np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_logsumexp(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    out = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def np_index_add(g: np.ndarray, shape: tuple[int, ...], index: Any) -> np.ndarray:
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, index, g)
    return out


def unary(name: str, fn: Callable, ref: Callable, shape=(3, 4), kind="normal") -> Case:
    return Case(name, fn, ref, [In(shape, kind)])


def binary(name: str, fn: Callable, ref: Callable, sa, sb, ka="normal", kb="normal") -> Case:
    return Case(name, fn, ref, [In(sa, ka), In(sb, kb)])


CASES: list[Case] = [
    # ---- arithmetic, with broadcasting --------------------------------------------------------------------
    binary("add", ops.add, np.add, (3, 4), (3, 4)),
    binary("add row broadcast", lambda a, b: a + b, np.add, (3, 4), (4,)),
    binary("add outer broadcast", lambda a, b: a + b, np.add, (3, 1), (1, 4)),
    binary("add 3d broadcast", lambda a, b: a + b, np.add, (2, 3, 4), (3, 1)),
    binary("add 0-d", lambda a, b: a + b, np.add, (), (3,)),
    unary("add python scalar", lambda a: a + 2.5, lambda a: a + 2.5),
    unary("radd python scalar", lambda a: 2.5 + a, lambda a: 2.5 + a),
    Case("add constant tensor", lambda a, b: a + b, np.add, [In((3, 4)), In((3, 4), grad=False)]),
    binary("sub", ops.sub, np.subtract, (3, 4), (3, 4)),
    binary("sub broadcast", lambda a, b: a - b, np.subtract, (4,), (3, 4)),
    unary("rsub python scalar", lambda a: 1.0 - a, lambda a: 1.0 - a),
    binary("mul", ops.mul, np.multiply, (3, 4), (3, 4)),
    binary("mul 3d broadcast", lambda a, b: a * b, np.multiply, (2, 3, 4), (4,)),
    binary("mul outer broadcast", lambda a, b: a * b, np.multiply, (3, 1), (1, 4)),
    unary("mul python scalar", lambda a: a * -1.5, lambda a: a * -1.5),
    unary("rmul python scalar", lambda a: -1.5 * a, lambda a: -1.5 * a),
    binary("div", ops.div, np.divide, (3, 4), (3, 4), kb="away"),
    binary("div broadcast", lambda a, b: a / b, np.divide, (3, 4), (4,), kb="away"),
    binary("div broadcast numerator", lambda a, b: a / b, np.divide, (3, 1), (3, 4), kb="away"),
    unary("rtruediv python scalar", lambda a: 2.0 / a, lambda a: 2.0 / a, kind="away"),
    unary("neg", ops.neg, np.negative),
    unary("neg operator", lambda a: -a, np.negative),
    unary("pow int exponent", lambda a: a**2, lambda a: a**2),
    unary("pow odd exponent negative base", lambda a: a**3, lambda a: a**3),
    unary("pow sqrt exponent", lambda a: ops.pow(a, 0.5), lambda a: a**0.5, kind="pos"),
    unary("pow negative exponent", lambda a: a**-1.5, lambda a: a**-1.5, kind="pos"),
    binary("pow tensor exponent", lambda a, b: a**b, np.power, (3, 4), (3, 4), ka="pos"),
    binary("pow tensor exponent broadcast", lambda a, b: a**b, np.power, (3, 4), (4,), ka="pos"),
    unary("rpow python base", lambda a: 2.0**a, lambda a: 2.0**a),
    # ---- matmul: 1-D, 2-D, batched, broadcast batches -------------------------------------------------------
    binary("matmul 2d", ops.matmul, np.matmul, (3, 4), (4, 5)),
    binary("matmul operator", lambda a, b: a @ b, np.matmul, (2, 3), (3, 2)),
    binary("matmul vec-mat", lambda a, b: a @ b, np.matmul, (4,), (4, 5)),
    binary("matmul mat-vec", lambda a, b: a @ b, np.matmul, (3, 4), (4,)),
    binary("matmul vec-vec", lambda a, b: a @ b, np.matmul, (4,), (4,)),
    binary("matmul batched", lambda a, b: a @ b, np.matmul, (2, 3, 4), (2, 4, 5)),
    binary("matmul batch @ mat", lambda a, b: a @ b, np.matmul, (2, 3, 4), (4, 5)),
    binary("matmul mat @ batch", lambda a, b: a @ b, np.matmul, (3, 4), (2, 4, 5)),
    binary("matmul broadcast batches", lambda a, b: a @ b, np.matmul, (2, 1, 3, 4), (3, 4, 2)),
    binary("matmul vec @ batch", lambda a, b: a @ b, np.matmul, (4,), (2, 4, 5)),
    binary("matmul batch @ vec", lambda a, b: a @ b, np.matmul, (2, 3, 4), (4,)),
    # ---- elementwise functions ------------------------------------------------------------------------------
    unary("exp", ops.exp, np.exp),
    unary("log", ops.log, np.log, kind="pos"),
    unary("sqrt", ops.sqrt, np.sqrt, kind="pos"),
    unary("abs", ops.abs, np.abs, kind="away"),
    unary("abs builtin", lambda a: abs(a), np.abs, kind="away"),
    unary("tanh", ops.tanh, np.tanh),
    unary("sigmoid", ops.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    unary("relu", ops.relu, lambda a: np.maximum(a, 0), kind="away"),
    binary("maximum", ops.maximum, np.maximum, (3, 4), (3, 4)),
    binary("maximum broadcast", ops.maximum, np.maximum, (3, 4), (4,)),
    unary("maximum with scalar", lambda a: ops.maximum(a, 0.0), lambda a: np.maximum(a, 0.0), kind="away"),
    binary("minimum", ops.minimum, np.minimum, (3, 4), (3, 4)),
    binary("minimum broadcast", ops.minimum, np.minimum, (3, 1), (3, 4)),
    unary("clip both", lambda a: ops.clip(a, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), shape=(4, 5)),
    unary("clip min only", lambda a: a.clip(min=0.1), lambda a: np.clip(a, 0.1, None), shape=(4, 5)),
    unary("clip max only", lambda a: a.clip(max=-0.1), lambda a: np.clip(a, None, -0.1), shape=(4, 5)),
    binary("clamp tensor min", lambda a, lo: ops.clamp(a, min=lo), lambda a, lo: np.clip(a, lo, None), (3, 4), (4,),
           kb="neg"),
    Case("clip tensor bounds", lambda x, lo, hi: ops.clip(x, lo, hi), lambda x, lo, hi: np.clip(x, lo, hi),
         [In((3, 4)), In((4,), "neg"), In((3, 1), "pos")]),
    binary("where", lambda a, b: ops.where(MASK, a, b), lambda a, b: np.where(MASK, a, b), (3, 4), (3, 4)),
    binary("where broadcast", lambda a, b: ops.where(MASK, a, b), lambda a, b: np.where(MASK, a, b), (4,), (3, 1)),
    unary("where tensor condition and scalar", lambda a: ops.where(a > 0, a, 0.0),
          lambda a: np.where(a > 0, a, 0.0), kind="away"),
    unary("astype float64", lambda a: ops.astype(a, np.float64) * 2, lambda a: a * 2),
    # ---- reductions over axis None / int / tuple, with and without keepdims -------------------------------
    unary("sum all", ops.sum, np.sum),
    unary("sum axis 0", lambda a: a.sum(axis=0), lambda a: a.sum(axis=0)),
    unary("sum axis -1 keepdims", lambda a: a.sum(axis=-1, keepdims=True), lambda a: a.sum(-1, keepdims=True)),
    unary("sum axis tuple", lambda a: a.sum(axis=(0, 2)), lambda a: a.sum(axis=(0, 2)), shape=(2, 3, 4)),
    unary("sum axis tuple keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True),
          lambda a: a.sum(axis=(0, 2), keepdims=True), shape=(2, 3, 4)),
    unary("sum all keepdims", lambda a: a.sum(keepdims=True), lambda a: a.sum(keepdims=True)),
    unary("mean all", ops.mean, np.mean),
    unary("mean axis 1", lambda a: a.mean(axis=1), lambda a: a.mean(axis=1)),
    unary("mean axis tuple keepdims", lambda a: a.mean(axis=(1, 2), keepdims=True),
          lambda a: a.mean(axis=(1, 2), keepdims=True), shape=(2, 3, 4)),
    unary("max all", ops.max, np.max),
    unary("max axis 0", lambda a: a.max(axis=0), lambda a: a.max(axis=0)),
    unary("max axis -1 keepdims", lambda a: a.max(axis=-1, keepdims=True), lambda a: a.max(-1, keepdims=True)),
    unary("max axis tuple", lambda a: a.max(axis=(0, 1)), lambda a: a.max(axis=(0, 1)), shape=(2, 3, 4)),
    unary("max dim values", lambda a: a.max(dim=1).values, lambda a: a.max(axis=1)),
    unary("amax dim keepdim", lambda a: ops.amax(a, dim=0, keepdim=True), lambda a: a.max(axis=0, keepdims=True)),
    unary("amin", lambda a: ops.amin(a, axis=(0, 1)), lambda a: a.min(axis=(0, 1)), shape=(2, 3, 4)),
    unary("max of an empty tensor over a non-empty axis", lambda a: a.max(axis=1), lambda a: a.max(axis=1),
          shape=(0, 3)),
    unary("min all", ops.min, np.min),
    unary("min axis 1", lambda a: a.min(axis=1), lambda a: a.min(axis=1)),
    unary("min axis tuple keepdims", lambda a: a.min(axis=(0, 2), keepdims=True),
          lambda a: a.min(axis=(0, 2), keepdims=True), shape=(2, 3, 4)),
    unary("var all", ops.var, np.var),
    unary("var axis 0", lambda a: a.var(axis=0), lambda a: a.var(axis=0)),
    unary("var axis 1 ddof 1 keepdims", lambda a: a.var(axis=1, keepdims=True, ddof=1),
          lambda a: a.var(axis=1, keepdims=True, ddof=1)),
    unary("var axis tuple", lambda a: a.var(axis=(0, 2)), lambda a: a.var(axis=(0, 2)), shape=(2, 3, 4)),
    # ---- shape ops -------------------------------------------------------------------------------------------
    unary("reshape", lambda a: ops.reshape(a, (2, 6)), lambda a: a.reshape(2, 6)),
    unary("reshape method varargs -1", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1)),
    unary("reshape flatten", lambda a: a.reshape(-1), lambda a: a.reshape(-1), shape=(2, 3, 2)),
    unary("view", lambda a: a.view(4, 3), lambda a: a.reshape(4, 3)),
    unary("flatten middle axes", lambda a: ops.flatten(a, 1, 2), lambda a: a.reshape(2, 12, 5), shape=(2, 3, 4, 5)),
    unary("flatten method", lambda a: a.flatten(), lambda a: a.reshape(-1), shape=(2, 3, 4)),
    unary("transpose 2d", ops.transpose, np.transpose),
    unary("T property", lambda a: a.T, lambda a: a.T, shape=(3, 5)),
    unary("transpose axes", lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1), shape=(2, 3, 4)),
    unary("permute", lambda a: ops.permute(a, (1, 2, 0)), lambda a: a.transpose(1, 2, 0), shape=(2, 3, 4)),
    unary("permute negative axes", lambda a: a.permute(-1, 0, 1), lambda a: a.transpose(2, 0, 1), shape=(2, 3, 4)),
    unary("broadcast_to", lambda a: ops.broadcast_to(a, (2, 3, 4)), lambda a: np.broadcast_to(a, (2, 3, 4)),
          shape=(3, 1)),
    unary("squeeze all", ops.squeeze, np.squeeze, shape=(3, 1, 4, 1)),
    unary("squeeze axis", lambda a: a.squeeze(1), lambda a: a.squeeze(1), shape=(3, 1, 4, 1)),
    unary("unsqueeze 0", lambda a: ops.unsqueeze(a, 0), lambda a: a[None], shape=(3, 4)),
    unary("unsqueeze -1", lambda a: a.unsqueeze(-1), lambda a: a[..., None], shape=(3, 4)),
    # ---- getitem: basic, integer arrays (with repeats), boolean masks ------------------------------------------
    unary("getitem slice", lambda a: a[1:3], lambda a: a[1:3], shape=(4, 3)),
    unary("getitem step slice", lambda a: a[:, ::2], lambda a: a[:, ::2], shape=(3, 5)),
    unary("getitem negative step", lambda a: a[::-1, 1:], lambda a: a[::-1, 1:]),
    unary("getitem int", lambda a: a[1], lambda a: a[1]),
    unary("getitem int int", lambda a: a[2, -1], lambda a: a[2, -1]),
    unary("getitem ellipsis none", lambda a: a[..., None, 1], lambda a: a[..., None, 1], shape=(2, 3, 4)),
    unary("getitem function", lambda a: ops.getitem(a, (slice(None), 0)), lambda a: a[:, 0]),
    unary("getitem int list repeated", lambda a: a[[0, 2, 2, 0, 2]], lambda a: a[[0, 2, 2, 0, 2]]),
    unary("getitem int array 2d", lambda a: a[np.array([[0, 1], [1, 1]])],
          lambda a: a[np.array([[0, 1], [1, 1]])]),
    unary("getitem paired arrays repeated", lambda a: a[np.array([0, 1, 0]), np.array([2, 3, 2])],
          lambda a: a[np.array([0, 1, 0]), np.array([2, 3, 2])]),
    unary("getitem slice and array", lambda a: a[:, [1, 1, 3]], lambda a: a[:, [1, 1, 3]]),
    unary("getitem tensor index", lambda a: a[Tensor(np.array([3, 0, 3]))], lambda a: a[np.array([3, 0, 3])],
          shape=(5,)),
    unary("getitem bool mask", lambda a: a[MASK], lambda a: a[MASK]),
    unary("getitem bool rows", lambda a: a[ROWS], lambda a: a[ROWS]),
    unary("getitem tensor comparison mask", lambda a: a[a > 0], lambda a: a[a > 0], kind="away"),
    unary("index_add (the backward of getitem)", lambda g: xp.index_add(g, (4, 3), np.array([0, 2, 2, 1, 2])),
          lambda g: np_index_add(g, (4, 3), np.array([0, 2, 2, 1, 2])), shape=(5, 3)),
    unary("index_add of a slice", lambda g: xp.index_add(g, (4, 3), (slice(1, 3), 0)),
          lambda g: np_index_add(g, (4, 3), (slice(1, 3), 0)), shape=(2,)),
    unary("clone", lambda a: ops.clone(a) * 2.0, lambda a: a * 2.0),
    # ---- concatenate and stack -------------------------------------------------------------------------------
    binary("concatenate axis 0", lambda a, b: ops.concatenate([a, b]), lambda a, b: np.concatenate([a, b]),
           (2, 3), (4, 3)),
    binary("concatenate axis None", lambda a, b: ops.concatenate([a, b], axis=None),
           lambda a, b: np.concatenate([a, b], axis=None), (2, 3), (4,)),
    binary("cat dim", lambda a, b: ops.cat([a, b], dim=1), lambda a, b: np.concatenate([a, b], axis=1), (2, 3), (2, 2)),
    binary("concatenate axis 1", lambda a, b: ops.concatenate([a, b], axis=1),
           lambda a, b: np.concatenate([a, b], axis=1), (2, 3), (2, 1)),
    Case("concatenate three with constant", lambda a, b, c: ops.concatenate([a, b, c], axis=-1),
         lambda a, b, c: np.concatenate([a, b, c], axis=-1), [In((2, 2)), In((2, 3), grad=False), In((2, 1))]),
    binary("stack axis 0", lambda a, b: ops.stack([a, b]), lambda a, b: np.stack([a, b]), (3, 4), (3, 4)),
    Case("stack axis -1 three", lambda a, b, c: ops.stack([a, b, c], axis=-1),
         lambda a, b, c: np.stack([a, b, c], axis=-1), [In((2, 3)), In((2, 3)), In((2, 3))]),
    binary("stack axis 1", lambda a, b: ops.stack([a, b], axis=1), lambda a, b: np.stack([a, b], axis=1),
           (2, 3), (2, 3)),
    # ---- softmax family --------------------------------------------------------------------------------------
    unary("softmax last axis", ops.softmax, lambda a: np_softmax(a, -1)),
    unary("softmax axis 0", lambda a: a.softmax(axis=0), lambda a: np_softmax(a, 0)),
    unary("softmax 3d axis 1", lambda a: ops.softmax(a, axis=1), lambda a: np_softmax(a, 1), shape=(2, 3, 4)),
    unary("log_softmax last axis", ops.log_softmax, lambda a: np.log(np_softmax(a, -1))),
    unary("log_softmax axis 0", lambda a: a.log_softmax(axis=0), lambda a: np.log(np_softmax(a, 0))),
    unary("logsumexp all", ops.logsumexp, np_logsumexp),
    unary("logsumexp axis 1", lambda a: a.logsumexp(axis=1), lambda a: np_logsumexp(a, 1)),
    unary("logsumexp axis tuple keepdims", lambda a: ops.logsumexp(a, axis=(0, 2), keepdims=True),
          lambda a: np_logsumexp(a, (0, 2), True), shape=(2, 3, 4)),
    # ---- convolution (chainrule.ops.conv; the naive loops of chainrule.nn.reference_conv as the reference) ------
    Case("conv2d stride padding groups bias", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
         lambda x, w, b: rc.conv2d_naive(x, w, b, (2, 2), ((1, 1), (1, 1)), groups=2),
         [In((2, 4, 5, 6)), In((6, 2, 3, 3)), In((6,))]),
    binary("conv2d same even kernel dilation", lambda x, w: F.conv2d(x, w, padding="same", dilation=(1, 2)),
           lambda x, w: rc.conv2d_naive(x, w, padding=((0, 1), (1, 1)), dilation=(1, 2)), (1, 3, 6, 5), (2, 3, 2, 2)),
    binary("conv2d depthwise", lambda x, w: F.conv2d(x, w, stride=(2, 1), groups=3),
           lambda x, w: rc.conv2d_naive(x, w, stride=(2, 1), groups=3), (2, 3, 5, 5), (6, 1, 3, 3)),
    Case("conv_transpose2d output_padding groups",
         lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2),
         lambda x, w, b: rc.conv_transpose2d_naive(x, w, b, (2, 2), (1, 1), (1, 1), groups=2),
         [In((2, 4, 3, 4)), In((4, 3, 3, 2)), In((6,))]),
    binary("conv weight gradient", lambda x, gy: conv_ops.conv_weight(x, gy, (3, 3), CONV_GEOM),
           lambda x, gy: rc.conv2d_backward_naive(gy, x, np.zeros((6, 2, 3, 3)), (2, 2), ((1, 1), (1, 1)),
                                                  groups=2)[1], (2, 4, 5, 6), (2, 6, 3, 3)),
    unary("unfold", lambda x: F.unfold(x, (2, 3), padding=1, stride=(2, 1)),
          lambda x: rc.unfold_naive(x, (2, 3), padding=(1, 1), stride=(2, 1)), shape=(2, 3, 5, 4)),
    unary("fold", lambda c: F.fold(c, (4, 5), 2, dilation=(1, 2)),
          lambda c: rc.fold_naive(c, (4, 5), (2, 2), dilation=(1, 2)), shape=(2, 12, 9)),
    # ---- reused inputs (the copy gate adds gradients) -------------------------------------------------------
    unary("reuse x*x+x", lambda a: a * a + a, lambda a: a * a + a),
    binary("reuse diamond", lambda a, b: (a * b).tanh() * (a * b).exp() + (a @ b.T) @ a,
           lambda a, b: np.tanh(a * b) * np.exp(a * b) + (a @ b.T) @ a, (3, 4), (3, 4)),
]

IDS = [c.name for c in CASES]
assert len(set(IDS)) == len(IDS), "duplicate case names"


def make(case: Case, dtype: Any) -> tuple[list[Tensor], list[np.ndarray]]:
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    arrays = [draw(spec, rng, dtype) for spec in case.inputs]
    tensors = [Tensor(a.copy(), requires_grad=spec.grad) for a, spec in zip(arrays, case.inputs)]
    return tensors, arrays


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_numpy(case: Case) -> None:
    tensors, arrays = make(case, np.float64)
    out = case.fn(*tensors)
    expected = np.asarray(case.ref(*arrays))
    assert isinstance(out, Tensor)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(case: Case) -> None:
    tensors, _ = make(case, np.float64)
    assert cr.gradcheck(case.fn, *tensors, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_stays_float32(case: Case) -> None:
    tensors, _ = make(case, np.float32)
    out = case.fn(*tensors)
    if case.name.startswith("astype"):
        assert out.dtype == np.float64
    else:
        assert out.dtype == np.float32, f"{case.name}: float32 inputs gave a {out.dtype} output"
    out.backward(np.ones(out.shape, dtype=out.dtype))
    for t, spec in zip(tensors, case.inputs):
        if spec.grad:
            assert t.grad is not None and t.grad.dtype == np.float32 and t.grad.shape == t.shape
        else:
            assert t.grad is None


def _graph_node_types(out: Tensor) -> set[str]:
    from chainrule.engine import topological_order

    return {type(node).__name__ for node in topological_order(out._ctx)} if out._ctx is not None else set()


def test_registry_covers_every_op() -> None:
    """Every functional op and every Function subclass in chainrule.ops appears in some registry case."""
    public = {name for name, f in vars(ops).items()
              if inspect.isfunction(f) and f.__module__ == "chainrule.ops" and not name.startswith("_")}
    public -= {"argmax", "argmin"}  # integer results, off the graph: tested in test_ops_edge_values.py
    # functions used through ops.<name> in a case, or in the graph a case builds
    used_names = set()
    used_nodes = set()
    for case in CASES:
        code = inspect.getsource(case.fn) if case.fn.__name__ == "<lambda>" else case.fn.__name__
        used_names |= {name for name in public if f"ops.{name}(" in code or name == code}
        tensors, _ = make(case, np.float64)
        used_nodes |= _graph_node_types(case.fn(*tensors))
    assert public - used_names == set(), "functional ops with no registry case"

    def subclasses(cls: type) -> set[type]:
        out = set()
        for sub in cls.__subclasses__():
            out |= {sub} | subclasses(sub)
        return out

    op_classes = {c.__name__ for c in subclasses(Function)
                  if c.__module__.startswith("chainrule.ops.") and not c.__name__.startswith("_")}
    assert op_classes, "no op classes found"
    assert op_classes - used_nodes == set(), "Function classes never exercised by the registry"


# ---- gradients at ties and kinks: the documented choices, checked exactly --------------------------------------


def test_max_splits_gradient_evenly_between_ties() -> None:
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [0.5, 0, 0.5]])
    y = Tensor(np.array([4.0, 1.0, 4.0, 4.0]), requires_grad=True)
    y.max().backward()
    np.testing.assert_allclose(y.grad, [1 / 3, 0, 1 / 3, 1 / 3])


def test_maximum_routes_gradient_to_winner_and_splits_ties() -> None:
    a = Tensor(np.array([1.0, 5.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0, 2.0]), requires_grad=True)
    ops.maximum(a, b).backward(np.array([10.0, 20.0, 30.0]))
    np.testing.assert_array_equal(a.grad, [0, 20, 15])
    np.testing.assert_array_equal(b.grad, [10, 0, 15])


def test_kinks_relu_abs_clip() -> None:
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    ops.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 0, 1])
    x.zero_grad()
    ops.abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [-1, 0, 1])
    x.zero_grad()
    ops.clip(x, 0.0, 1.0).sum().backward()  # the bounds are inside, as in PyTorch's clamp
    np.testing.assert_array_equal(x.grad, [0, 1, 0])


def test_getitem_repeated_indices_accumulate() -> None:
    x = Tensor(np.zeros(4), requires_grad=True)
    x[[1, 1, 1, 3]].backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [0, 6, 0, 4])


# ---- errors say the rule, the values and the fix ----------------------------------------------------------------


def t(*shape: int) -> Tensor:
    return Tensor(np.ones(shape), requires_grad=True)


@pytest.mark.parametrize("call, message", [
    (lambda: t(3, 4) @ t(5, 2), r"matmul: \(3, 4\) @ \(5, 2\): inner dimensions 4 and 5 differ"),
    (lambda: t(4) @ t(3), r"matmul: \(4,\) @ \(3,\): inner dimensions 4 and 3 differ"),
    (lambda: t() @ t(3), r"matmul: \(\) @ \(3,\): both operands need at least 1 dimension"),
    (lambda: t(3, 4).reshape(5, 2), r"reshape: cannot reshape \(3, 4\) \(12 elements\) into \(5, 2\)"),
    (lambda: t(3, 4).sum(axis=2), r"sum: axis 2 is out of range for a tensor with 2 dimensions"),
    (lambda: t(3, 4).mean(axis=(0, 0)), r"mean: repeated axis"),
    (lambda: t(3, 4).max(axis=-3), r"max: axis -3 is out of range"),
    (lambda: t(0, 3).max(), r"max: cannot reduce all axes of a tensor of shape \(0, 3\): the reduced axis is "
                            r"empty, and the maximum of no values is undefined"),
    (lambda: t(0, 3).min(axis=0), r"min: cannot reduce axis 0 of a tensor of shape \(0, 3\)"),
    (lambda: t(1, 4).var(axis=0, ddof=1), r"var: each reduction needs more than ddof=1 values \(n - ddof > 0\), "
                                          r"got n=1"),
    (lambda: t().sum(axis=1), r"sum: axis 1 is out of range for a tensor with 0 dimensions \(valid: \[-1, 0\]\)"),
    (lambda: t(3).unsqueeze(2), r"unsqueeze: axis 2 is out of range for a tensor with 1 dimensions"),
    (lambda: t(3).flatten(1), r"flatten: start_dim=1 and end_dim=-1 must name axes"),
    (lambda: ops.clip(t(3)), r"clip: pass min, max or both"),
    (lambda: t(3, 4).transpose(0, 0), r"transpose: axes \(0, 0\) are not a permutation"),
    (lambda: t(3, 4).squeeze(0), r"squeeze: axis 0 of shape \(3, 4\) does not have size 1"),
    (lambda: t(3, 2).broadcast_to((3, 4)), r"broadcast_to: cannot broadcast \(3, 2\) to \(3, 4\)"),
    (lambda: ops.concatenate([t(2, 3), t(2, 4)]), r"concatenate: shapes \(2, 3\), \(2, 4\) must match"),
    (lambda: ops.concatenate([t(2, 3), t(3)], axis=1), r"concatenate: shapes \(2, 3\), \(3,\) must match"),
    (lambda: ops.concatenate([]), r"concatenate: need at least one tensor"),
    (lambda: ops.stack([t(2, 3), t(3, 2)]), r"stack: all inputs must have the same shape"),
    (lambda: ops.clip(t(3), 1.0, 0.0), r"clip: expected min <= max, got min=1.0, max=0.0"),
])
def test_op_errors_are_clear(call: Callable, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
