"""Second derivatives of every op and every nn.functional function: against PyTorch float64
(``torch.autograd.grad(..., create_graph=True)``) and against numerical differences (``gradgradcheck``).

For each case: y = f(inputs); g_i = autograd.grad(y, input_i, v, create_graph=True) for a random upstream v; then
the gradient of s = sum_i <g_i, w_i> (random w_i) with respect to every input, i.e. Hessian-vector products in
random directions, including the mixed ones between inputs. The op registry is test_ops.CASES (same inputs, with
their broadcasting); TORCH below holds each case's PyTorch twin, and a test makes sure every case has one.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import Tensor
from test_ops import CASES, MASK, ROWS, make

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _index_add(g: Any, shape: tuple[int, ...], index: Any) -> Any:
    out = torch.zeros(shape, dtype=g.dtype)
    if isinstance(index, tuple):
        out[index] = g
        return out
    return out.index_put((torch.tensor(index),), g, accumulate=True)


def _t(a: np.ndarray) -> Any:
    return torch.tensor(a)


TORCH: dict[str, Callable[..., Any]] = {
    "add": torch.add, "add row broadcast": torch.add, "add outer broadcast": torch.add,
    "add 3d broadcast": torch.add, "add 0-d": torch.add, "add python scalar": lambda a: a + 2.5,
    "radd python scalar": lambda a: 2.5 + a, "add constant tensor": torch.add,
    "sub": torch.sub, "sub broadcast": torch.sub, "rsub python scalar": lambda a: 1.0 - a,
    "mul": torch.mul, "mul 3d broadcast": torch.mul, "mul outer broadcast": torch.mul,
    "mul python scalar": lambda a: a * -1.5, "rmul python scalar": lambda a: -1.5 * a,
    "div": torch.div, "div broadcast": torch.div, "div broadcast numerator": torch.div,
    "rtruediv python scalar": lambda a: 2.0 / a, "neg": torch.neg, "neg operator": torch.neg,
    "pow int exponent": lambda a: a**2, "pow odd exponent negative base": lambda a: a**3,
    "pow sqrt exponent": lambda a: a**0.5, "pow negative exponent": lambda a: a**-1.5,
    "pow tensor exponent": torch.pow, "pow tensor exponent broadcast": torch.pow, "rpow python base": lambda a: 2.0**a,
    **{name: torch.matmul for name in ("matmul 2d", "matmul operator", "matmul vec-mat", "matmul mat-vec",
                                       "matmul vec-vec", "matmul batched", "matmul batch @ mat", "matmul mat @ batch",
                                       "matmul broadcast batches", "matmul vec @ batch", "matmul batch @ vec")},
    "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs, "abs builtin": torch.abs,
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
    "maximum": torch.maximum, "maximum broadcast": torch.maximum,
    "maximum with scalar": lambda a: torch.maximum(a, torch.tensor(0.0, dtype=a.dtype)),
    "minimum": torch.minimum, "minimum broadcast": torch.minimum,
    "clip both": lambda a: torch.clamp(a, -0.5, 0.5), "clip min only": lambda a: torch.clamp(a, min=0.1),
    "clip max only": lambda a: torch.clamp(a, max=-0.1), "clamp tensor min": lambda a, lo: torch.clamp(a, min=lo),
    "clip tensor bounds": torch.clamp,
    "where": lambda a, b: torch.where(_t(MASK), a, b), "where broadcast": lambda a, b: torch.where(_t(MASK), a, b),
    "where tensor condition and scalar": lambda a: torch.where(a > 0, a, 0.0),
    "astype float64": lambda a: a.double() * 2,
    "sum all": torch.sum, "sum axis 0": lambda a: a.sum(0), "sum axis -1 keepdims": lambda a: a.sum(-1, keepdim=True),
    "sum axis tuple": lambda a: a.sum((0, 2)), "sum axis tuple keepdims": lambda a: a.sum((0, 2), keepdim=True),
    "sum all keepdims": lambda a: a.sum((0, 1), keepdim=True),
    "mean all": torch.mean, "mean axis 1": lambda a: a.mean(1),
    "mean axis tuple keepdims": lambda a: a.mean((1, 2), keepdim=True),
    "max all": torch.max, "max axis 0": lambda a: a.amax(0), "max axis -1 keepdims": lambda a: a.amax(-1, True),
    "max axis tuple": lambda a: a.amax((0, 1)), "max dim values": lambda a: a.max(dim=1).values,
    "amax dim keepdim": lambda a: a.amax(0, keepdim=True), "amin": lambda a: a.amin((0, 1)),
    "max of an empty tensor over a non-empty axis": lambda a: a.amax(1),
    "min all": torch.min, "min axis 1": lambda a: a.amin(1), "min axis tuple keepdims": lambda a: a.amin((0, 2), True),
    "var all": lambda a: a.var(correction=0), "var axis 0": lambda a: a.var(0, correction=0),
    "var axis 1 ddof 1 keepdims": lambda a: a.var(1, keepdim=True, correction=1),
    "var axis tuple": lambda a: a.var((0, 2), correction=0),
    "reshape": lambda a: a.reshape(2, 6), "reshape method varargs -1": lambda a: a.reshape(4, -1),
    "reshape flatten": lambda a: a.reshape(-1), "view": lambda a: a.view(4, 3),
    "flatten middle axes": lambda a: torch.flatten(a, 1, 2), "flatten method": torch.flatten,
    "transpose 2d": lambda a: a.T, "T property": lambda a: a.T, "transpose axes": lambda a: a.permute(2, 0, 1),
    "permute": lambda a: a.permute(1, 2, 0), "permute negative axes": lambda a: a.permute(-1, 0, 1),
    "broadcast_to": lambda a: a.broadcast_to((2, 3, 4)), "squeeze all": torch.squeeze,
    "squeeze axis": lambda a: a.squeeze(1), "unsqueeze 0": lambda a: a.unsqueeze(0),
    "unsqueeze -1": lambda a: a.unsqueeze(-1),
    "getitem slice": lambda a: a[1:3], "getitem step slice": lambda a: a[:, ::2],
    "getitem negative step": lambda a: torch.flip(a, [0])[:, 1:], "getitem int": lambda a: a[1],
    "getitem int int": lambda a: a[2, -1], "getitem ellipsis none": lambda a: a[..., None, 1],
    "getitem function": lambda a: a[:, 0], "getitem int list repeated": lambda a: a[[0, 2, 2, 0, 2]],
    "getitem int array 2d": lambda a: a[_t(np.array([[0, 1], [1, 1]]))],
    "getitem paired arrays repeated": lambda a: a[_t(np.array([0, 1, 0])), _t(np.array([2, 3, 2]))],
    "getitem slice and array": lambda a: a[:, [1, 1, 3]], "getitem tensor index": lambda a: a[_t(np.array([3, 0, 3]))],
    "getitem bool mask": lambda a: a[_t(MASK)], "getitem bool rows": lambda a: a[_t(ROWS)],
    "getitem tensor comparison mask": lambda a: a[a > 0],
    "index_add (the backward of getitem)": lambda g: _index_add(g, (4, 3), [0, 2, 2, 1, 2]),
    "index_add of a slice": lambda g: _index_add(g, (4, 3), (slice(1, 3), 0)),
    "clone": lambda a: a.clone() * 2.0,
    "concatenate axis 0": lambda a, b: torch.cat([a, b]),
    "concatenate axis None": lambda a, b: torch.cat([a.reshape(-1), b.reshape(-1)]),
    "cat dim": lambda a, b: torch.cat([a, b], 1), "concatenate axis 1": lambda a, b: torch.cat([a, b], 1),
    "concatenate three with constant": lambda a, b, c: torch.cat([a, b, c], -1),
    "stack axis 0": lambda a, b: torch.stack([a, b]), "stack axis -1 three": lambda a, b, c: torch.stack([a, b, c], -1),
    "stack axis 1": lambda a, b: torch.stack([a, b], 1),
    "softmax last axis": lambda a: torch.softmax(a, -1), "softmax axis 0": lambda a: torch.softmax(a, 0),
    "softmax 3d axis 1": lambda a: torch.softmax(a, 1), "log_softmax last axis": lambda a: torch.log_softmax(a, -1),
    "log_softmax axis 0": lambda a: torch.log_softmax(a, 0), "logsumexp all": lambda a: torch.logsumexp(a, (0, 1)),
    "logsumexp axis 1": lambda a: torch.logsumexp(a, 1),
    "logsumexp axis tuple keepdims": lambda a: torch.logsumexp(a, (0, 2), keepdim=True),
    "conv2d stride padding groups bias": lambda x, w, b: TF.conv2d(x, w, b, stride=2, padding=1, groups=2),
    "conv2d same even kernel dilation": lambda x, w: TF.conv2d(x, w, padding="same", dilation=(1, 2)),
    "conv2d depthwise": lambda x, w: TF.conv2d(x, w, stride=(2, 1), groups=3),
    "conv_transpose2d output_padding groups":
        lambda x, w, b: TF.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2),
    "conv weight gradient": lambda x, gy: torch.nn.grad.conv2d_weight(x, (6, 2, 3, 3), gy, stride=2, padding=1,
                                                                      groups=2),
    "unfold": lambda x: TF.unfold(x, (2, 3), padding=1, stride=(2, 1)),
    "fold": lambda c: TF.fold(c, (4, 5), 2, dilation=(1, 2)),
    "reuse x*x+x": lambda a: a * a + a,
    "reuse diamond": lambda a, b: (a * b).tanh() * (a * b).exp() + (a @ b.T) @ a,
}


def hvp_chainrule(fn: Callable, tensors: list[Tensor], v: np.ndarray, w: list[np.ndarray]) -> list[np.ndarray]:
    """Gradients of s = sum_i <d<f, v>/d x_i, w_i> with respect to each x_i that requires grad (zeros if none)."""
    wrt = [t for t in tensors if t.requires_grad]
    grads = cr.autograd.grad(fn(*tensors), wrt, Tensor(v), create_graph=True, allow_unused=True)
    s = sum(((g * wi).sum() for g, wi in zip(grads, w) if g is not None), Tensor(np.zeros(())))
    if not s.requires_grad:  # the gradients do not depend on the inputs: the second derivative is zero
        return [np.zeros(t.shape) for t in wrt]
    second = cr.autograd.grad(s, wrt, allow_unused=True)
    return [np.zeros(t.shape) if h is None else h.data for h, t in zip(second, wrt)]


def hvp_torch(fn: Callable, tensors: list[Any], v: np.ndarray, w: list[np.ndarray]) -> list[np.ndarray]:
    wrt = [t for t in tensors if t.requires_grad]
    grads = torch.autograd.grad(fn(*tensors), wrt, torch.tensor(v), create_graph=True, allow_unused=True)
    s = sum(((g * torch.tensor(wi)).sum() for g, wi in zip(grads, w) if g is not None), torch.zeros((),
                                                                                              dtype=torch.float64))
    if not s.requires_grad:
        return [np.zeros(t.shape) for t in wrt]
    second = torch.autograd.grad(s, wrt, allow_unused=True)
    return [np.zeros(t.shape) if h is None else h.detach().numpy(force=True) for h, t in zip(second, wrt)]


def directions(name: str, out_shape: tuple[int, ...], shapes: list[tuple[int, ...]]) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(zlib.crc32(("hvp " + name).encode()))
    return rng.standard_normal(out_shape), [rng.standard_normal(s) for s in shapes]


def test_every_registry_case_has_a_torch_twin() -> None:
    assert {c.name for c in CASES} == set(TORCH)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_second_derivatives_match_torch(case) -> None:
    tensors, arrays = make(case, np.float64)
    theirs = [torch.tensor(a, requires_grad=spec.grad) for a, spec in zip(arrays, case.inputs)]
    out = case.fn(*tensors)
    v, w = directions(case.name, out.shape, [t.shape for t in tensors if t.requires_grad])
    ours = hvp_chainrule(case.fn, tensors, v, w)
    expected = hvp_torch(TORCH[case.name], theirs, v, w)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradgradcheck(case) -> None:
    tensors, _ = make(case, np.float64)
    assert cr.gradgradcheck(case.fn, *tensors, eps=1e-6, atol=1e-6, rtol=1e-5)


# ---- nn.functional: every function, with PyTorch's twin -------------------------------------------------------

R = np.random.default_rng(11)
X = R.standard_normal((5, 4))
W, B = R.standard_normal((4, 3)), R.standard_normal(3)
W6, B6 = R.standard_normal((4, 6)), R.standard_normal(6)  # maxout, 2 pieces of 3
Y = np.array([0, 2, 1, 1, 2])
MASK_DROP = (R.random((5, 4)) >= 0.3) / 0.7
RM, RV = R.standard_normal(4), R.random(4) + 0.5
G4, B4 = R.standard_normal(4), R.standard_normal(4)
X3 = R.standard_normal((2, 3, 4))
G34, B34 = R.standard_normal((3, 4)), R.standard_normal((3, 4))
S = R.standard_normal((5, 3)) * 2
T = R.random((5, 3))
XC, WC = R.standard_normal((2, 3, 4, 5)), R.standard_normal((2, 3, 3, 2))  # conv input and weight
BC = R.standard_normal(2)
IMG = R.permutation(2 * 3 * 5 * 6).reshape(2, 3, 5, 6) / 9.0 - 2.0  # (N, C, H, W), no ties for max pooling
IMG_CL = np.ascontiguousarray(IMG.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # the same, channels-last
Y_IMG = R.integers(0, 3, (2, 5, 6))  # labels per position of IMG's 3 classes
CW, Y_IGN = R.random(3) + 0.3, np.array([0, -100, 1, -100, 2])
BW, PW = R.random((5, 1)), R.random(3) * 3
Y_ML = np.array([[2, 0, -1], [1, -1, 2], [0, 1, 2], [-1, 0, 0], [2, 2, -1]])  # -1 ends each label list
RM3, RV3, G3, B3 = R.standard_normal(3), R.random(3) + 0.5, R.standard_normal(3), R.standard_normal(3)


def _torch_maxout(x, w, b):
    z = (x @ w + b).reshape(x.shape[0], 2, 3)
    return z.max(dim=1).values


def _torch_hinge(s, y, margin=1.0, reduction="mean"):
    picked = s.gather(1, y[:, None])
    margins = torch.clamp(s - picked + margin, min=0) * (1 - TF.one_hot(y, s.shape[1]).double())
    losses = margins.sum(1)
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


def _torch_multilabel(x):
    """PyTorch's multilabel_margin_loss written with differentiable ops (its own has no double backward)."""
    n, c = x.shape
    losses = []
    for i in range(n):
        labels = [int(v) for v in Y_ML[i][:list(Y_ML[i]).index(-1) if -1 in Y_ML[i] else c]]
        others = [k for k in range(c) if k not in labels]
        terms = [torch.clamp(1 - x[i, j] + x[i, k], min=0) for j in labels for k in others]
        losses.append(sum(terms, x.new_zeros(())) / c)
    return torch.stack(losses).mean()


def _gen(seed: int = 3) -> np.random.Generator:
    return np.random.default_rng(seed)


# name, chainrule function, torch function, inputs (all require grad)
FUNCTIONAL = [
    ("linear", lambda x, w, b: F.linear(x, w, b), lambda x, w, b: TF.linear(x, w.T, b), [X, W, B]),
    ("linear 3-d input", lambda x, w: F.linear(x, w), lambda x, w: x @ w, [X3, R.standard_normal((4, 2))]),
    ("maxout", lambda x, w, b: F.maxout(x, w, b, pieces=2), _torch_maxout, [X, W6, B6]),
    ("dropout", lambda x: F.dropout(x, 0.3, generator=_gen()),
     lambda x: x * torch.tensor((_gen().random((5, 4)) >= 0.3) / 0.7), [X]),
    ("batch_norm training", lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
     lambda x, g, b: TF.batch_norm(x, None, None, g, b, training=True), [X, G4, B4]),
    ("batch_norm training, no affine", lambda x: F.batch_norm(x, None, None, training=True),
     lambda x: TF.batch_norm(x, None, None, training=True), [X]),
    ("batch_norm eval", lambda x, g, b: F.batch_norm(x, RM.copy(), RV.copy(), g, b, training=False),
     lambda x, g, b: TF.batch_norm(x, torch.tensor(RM), torch.tensor(RV), g, b, training=False), [X, G4, B4]),
    ("batch_norm (N, C, H, W) training", lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
     lambda x, g, b: TF.batch_norm(x, None, None, g, b, training=True), [IMG, G3, B3]),
    ("batch_norm (N, C, H, W) channels-last eval",
     lambda x, g, b: F.batch_norm(x, RM3.copy(), RV3.copy(), g, b, training=False),
     lambda x, g, b: TF.batch_norm(x, torch.tensor(RM3), torch.tensor(RV3), g, b, training=False), [IMG_CL, G3, B3]),
    ("dropout2d", lambda x: F.dropout2d(x, 0.4, generator=_gen()),
     lambda x: x * torch.tensor((_gen().random((2, 3, 1, 1)) >= 0.4) / 0.6), [IMG]),
    ("max_pool2d 3x3 stride 2 padding 1 ceil", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
     lambda x: TF.max_pool2d(x, 3, 2, 1, ceil_mode=True), [IMG]),
    ("max_pool2d 2x2 channels-last, indices", lambda x: F.max_pool2d(x, 2, return_indices=True)[0],
     lambda x: TF.max_pool2d(x, 2), [IMG_CL]),
    ("max_pool2d dilation", lambda x: F.max_pool2d(x, 2, 1, 1, dilation=2), lambda x: TF.max_pool2d(x, 2, 1, 1, 2),
     [IMG]),
    ("avg_pool2d 3x3 stride 2 padding 1 ceil", lambda x: F.avg_pool2d(x, 3, 2, 1, True, False),
     lambda x: TF.avg_pool2d(x, 3, 2, 1, True, False), [IMG]),
    ("avg_pool2d 2x2 channels-last", lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2), [IMG_CL]),
    ("adaptive_avg_pool2d irregular bins", lambda x: F.adaptive_avg_pool2d(x, (3, 4)),
     lambda x: TF.adaptive_avg_pool2d(x, (3, 4)), [IMG]),
    ("adaptive_avg_pool2d global", lambda x: F.adaptive_avg_pool2d(x, 1), lambda x: TF.adaptive_avg_pool2d(x, 1),
     [IMG_CL]),
    ("adaptive_max_pool2d irregular bins", lambda x: F.adaptive_max_pool2d(x, (3, 4)),
     lambda x: TF.adaptive_max_pool2d(x, (3, 4)), [IMG]),
    ("adaptive_max_pool2d global (tiled block path)", lambda x: F.adaptive_max_pool2d(x, 1),
     lambda x: TF.adaptive_max_pool2d(x, 1), [IMG_CL]),
    ("adaptive_max_pool2d regular bins", lambda x: F.adaptive_max_pool2d(x, (5, 3)),
     lambda x: TF.adaptive_max_pool2d(x, (5, 3)), [IMG]),
    *[(f"pad {mode}", lambda x, mode=mode: F.pad(x, (1, 2, 2, 0), mode) ** 2,
       lambda x, mode=mode: TF.pad(x, (1, 2, 2, 0), mode) ** 2, [IMG])
      for mode in ("constant", "reflect", "replicate", "circular")],
    ("interpolate nearest", lambda x: F.interpolate(x, scale_factor=1.5), lambda x: TF.interpolate(x, scale_factor=1.5),
     [IMG]),
    ("interpolate bilinear align_corners", lambda x: F.interpolate(x, (4, 9), mode="bilinear", align_corners=True),
     lambda x: TF.interpolate(x, (4, 9), mode="bilinear", align_corners=True), [IMG]),
    ("layer_norm", lambda x, g, b: F.layer_norm(x, (3, 4), g, b), lambda x, g, b: TF.layer_norm(x, (3, 4), g, b),
     [X3, G34, B34]),
    ("layer_norm, no affine", lambda x: F.layer_norm(x, 4), lambda x: TF.layer_norm(x, (4,)), [X3]),
    ("sigmoid", F.sigmoid, torch.sigmoid, [X]),
    ("tanh", F.tanh, torch.tanh, [X]),
    ("relu", F.relu, torch.relu, [X]),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1), [X]),
    ("elu", lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7), [X]),
    ("gelu", F.gelu, TF.gelu, [X * 2]),
    ("gelu tanh", lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh"), [X * 2]),
    ("hardtanh", lambda x: F.hardtanh(x, -0.5, 0.8) ** 2, lambda x: TF.hardtanh(x, -0.5, 0.8) ** 2, [X]),
    ("softplus", lambda x: F.softplus(x, 1.5, 2.0), lambda x: TF.softplus(x, 1.5, 2.0), [X * 2]),
    ("logsigmoid", F.logsigmoid, TF.logsigmoid, [X * 2]),
    ("glu", lambda x: F.glu(x, 1), lambda x: TF.glu(x, 1), [X]),
    ("softshrink", lambda x: F.softshrink(x, 0.3) ** 2, lambda x: TF.softshrink(x, 0.3) ** 2, [X]),
    ("rrelu training", lambda x: F.rrelu(x, 0.1, 0.3, True, _gen()) ** 2,
     lambda x: (x * torch.tensor(np.where(X >= 0, 1, _gen().random((5, 4)) * 0.2 + 0.1))) ** 2, [X]),
    ("rrelu eval", lambda x: F.rrelu(x, 0.1, 0.3), lambda x: TF.rrelu(x, 0.1, 0.3), [X]),
    ("softmax", lambda x: F.softmax(x, 1), lambda x: torch.softmax(x, 1), [X]),
    ("log_softmax", lambda x: F.log_softmax(x, 0), lambda x: torch.log_softmax(x, 0), [X]),
    ("logsumexp", lambda x: cr.logsumexp(x, axis=1), lambda x: torch.logsumexp(x, 1), [X]),
    *[(f"cross_entropy {red} smoothing {eps}", lambda s, red=red, eps=eps: F.cross_entropy(s, Y, red, eps),
       lambda s, red=red, eps=eps: TF.cross_entropy(s, torch.tensor(Y), reduction=red, label_smoothing=eps), [S])
      for red in ("mean", "sum", "none") for eps in (0.0, 0.2)],
    *[(f"cross_entropy (N, C, H, W) {red}, weight, ignore_index, smoothing",
       lambda s, red=red: F.cross_entropy(s, Y_IMG, red, 0.2, weight=CW, ignore_index=1),
       lambda s, red=red: TF.cross_entropy(s, torch.tensor(Y_IMG), torch.tensor(CW), ignore_index=1, reduction=red,
                                           label_smoothing=0.2), [IMG]) for red in ("mean", "none")],
    ("cross_entropy weight, ignored rows", lambda s: F.cross_entropy(s, Y_IGN, weight=CW),
     lambda s: TF.cross_entropy(s, torch.tensor(Y_IGN), torch.tensor(CW)), [S]),
    *[(f"nll_loss (N, C, H, W) {red}", lambda s, red=red: F.nll_loss(s, Y_IMG, CW, 1, red),
       lambda s, red=red: TF.nll_loss(s, torch.tensor(Y_IMG), torch.tensor(CW), ignore_index=1, reduction=red), [IMG])
      for red in ("mean", "none")],
    ("nll_loss of log_softmax", lambda s: F.nll_loss(F.log_softmax(s, 1), Y),
     lambda s: TF.nll_loss(torch.log_softmax(s, 1), torch.tensor(Y)), [S]),
    *[(f"multiclass_hinge {red}", lambda s, red=red: F.multiclass_hinge(s, Y, 0.7, red),
       lambda s, red=red: _torch_hinge(s, torch.tensor(Y), 0.7, red), [S]) for red in ("mean", "none")],
    *[(f"mse {red}", lambda p, t, red=red: F.mse(p, t, red), lambda p, t, red=red: TF.mse_loss(p, t, reduction=red),
       [S, T]) for red in ("mean", "sum", "none")],
    ("mse with an array target", lambda p: F.mse(p, T), lambda p: TF.mse_loss(p, torch.tensor(T)), [S]),
    *[(f"bce with logits {red}", lambda x, t, red=red: F.binary_cross_entropy_with_logits(x, t, red),
       lambda x, t, red=red: TF.binary_cross_entropy_with_logits(x, t, reduction=red), [S, T])
      for red in ("mean", "none")],
    *[(f"bce with logits {red}, weight and pos_weight",
       lambda x, t, red=red: F.binary_cross_entropy_with_logits(x, t, red, weight=BW, pos_weight=PW),
       lambda x, t, red=red: TF.binary_cross_entropy_with_logits(x, t, torch.tensor(BW), reduction=red,
                                                                 pos_weight=torch.tensor(PW)), [S, T])
      for red in ("mean", "none")],
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2)),
     lambda x, w, b: TF.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2)), [XC, WC, BC]),
    ("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, output_padding=1),
     lambda x, w, b: TF.conv_transpose2d(x, w, b, stride=2, output_padding=1), [XC, WC.transpose(1, 0, 2, 3), BC]),
    ("unfold and fold", lambda x: F.fold(F.unfold(x, 2, padding=1) ** 2, (4, 5), 2, padding=1),
     lambda x: TF.fold(TF.unfold(x, 2, padding=1) ** 2, (4, 5), 2, padding=1), [XC]),
    *[(f"l1_loss {red}", lambda p, t, red=red: F.l1_loss(p, t, red),
       lambda p, t, red=red: TF.l1_loss(p, t, reduction=red), [S, T]) for red in ("mean", "none")],
    *[(f"smooth_l1_loss {red}", lambda p, t, red=red: F.smooth_l1_loss(p, t, red, 0.7),
       lambda p, t, red=red: TF.smooth_l1_loss(p, t, reduction=red, beta=0.7), [S, T]) for red in ("mean", "none")],
    ("soft_margin_loss", lambda x: F.soft_margin_loss(x, np.sign(T - 0.5)),
     lambda x: TF.soft_margin_loss(x, torch.tensor(np.sign(T - 0.5))), [S]),
    *[(f"binary_cross_entropy {red}", lambda p, t, red=red: F.binary_cross_entropy(p, t, BW, red),
       lambda p, t, red=red: TF.binary_cross_entropy(p, t, torch.tensor(BW), reduction=red), [T * 0.9 + 0.05, T])
      for red in ("mean", "none")],
    ("multilabel_margin_loss", lambda x: F.multilabel_margin_loss(x, Y_ML), _torch_multilabel, [S]),
    ("l2_penalty", lambda a, b: F.l2_penalty([a, b], 0.3), lambda a, b: 0.3 * ((a * a).sum() + (b * b).sum()),
     [W, W6]),
]
FUNCTIONAL_IDS = [f[0] for f in FUNCTIONAL]


def test_every_functional_function_is_covered() -> None:
    import inspect

    covered = " ".join(inspect.getsource(f[1]) for f in FUNCTIONAL if f[1].__name__ == "<lambda>")
    used = {f[1] for f in FUNCTIONAL}
    missing = [name for name in F.__all__ if f"F.{name}(" not in covered and getattr(F, name) not in used]
    assert missing == []


@pytest.mark.parametrize("name,ours,theirs,inputs", FUNCTIONAL, ids=FUNCTIONAL_IDS)
def test_functional_second_derivatives_match_torch(name, ours, theirs, inputs) -> None:
    tensors = [Tensor(a.copy(), requires_grad=True) for a in inputs]
    v, w = directions(name, ours(*tensors).shape, [a.shape for a in inputs])
    expected = hvp_torch(theirs, [torch.tensor(a, requires_grad=True) for a in inputs], v, w)
    for a, b in zip(hvp_chainrule(ours, tensors, v, w), expected):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name,ours,theirs,inputs", FUNCTIONAL, ids=FUNCTIONAL_IDS)
def test_functional_gradgradcheck(name, ours, theirs, inputs) -> None:
    tensors = [Tensor(a.copy(), requires_grad=True) for a in inputs]
    assert cr.gradgradcheck(ours, *tensors, atol=1e-6, rtol=1e-5)


def test_float32_second_derivatives_stay_float32() -> None:
    x = Tensor(X.astype(np.float32), requires_grad=True)
    w = Tensor(W.astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(F.gelu(F.linear(x, w)), Y)
    gx, gw = cr.autograd.grad(loss, [x, w], create_graph=True)
    assert gx.dtype == gw.dtype == np.float32
    (hx,) = cr.autograd.grad((gw * gw).sum(), [x])
    assert hx.dtype == np.float32
