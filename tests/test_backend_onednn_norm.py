"""Batch normalization on oneDNN's kernels (``chainrule.backend._onednn_norm``, dispatched by
``backend.fused.batch_norm_forward`` / ``batch_norm_inference`` / ``batch_norm_backward``): when they run (float32
channels-last (N, C, H, W), the onednn convolution backend), that they match PyTorch float64 and the NumPy formula
(forced with ``select_conv("numpy")``) in training and evaluation, with and without gamma / beta, including the
running statistics, the gradients, the second derivative and an input with a large mean; and that everything else
(NCHW included) keeps the NumPy formula, which is held to PyTorch too.

Tolerances: float32 against float64 with a different summation order; ~1e-5 relative to the largest value."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chainrule import Tensor, autograd, nn  # noqa: E402
from chainrule.backend import _onednn_conv, _onednn_norm, conv, fused  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402

PRIMS, WHY = _onednn_conv.primitives()
pytestmark = pytest.mark.skipif(PRIMS is None, reason=f"oneDNN: {WHY}")
AFFINE = ["weight and bias", "weight", "bias", "none"]


def channels_last(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def close(ours, reference, rtol=2e-5):
    """|ours - reference| <= rtol * max |reference| elementwise (float32 rounding of sums over many values)."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=rtol * max(np.abs(reference).max(), 1e-30))


def affine(kind: str, c: int, rng):
    w = (1 + 0.5 * rng.standard_normal(c)).astype(np.float32) if "weight" in kind else None
    b = rng.standard_normal(c).astype(np.float32) if "bias" in kind else None
    return w, b


def run_batch_norm(x, gy, w, b, rm, rv, training, torch_ref=False, momentum=0.3, eps=1e-5):
    """(out, gx, gw, gb, running_mean, running_var) of one forward and backward; torch float64 if ``torch_ref``."""
    rm, rv = rm.copy(), rv.copy()
    if torch_ref:
        t = [None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b)]
        trm, trv = torch.tensor(rm, dtype=torch.float64), torch.tensor(rv, dtype=torch.float64)
        out = torch.nn.functional.batch_norm(t[0], trm, trv, t[1], t[2], training, momentum, eps)
        out.backward(torch.tensor(gy, dtype=torch.float64))
        grads = [None if a is None else a.grad.numpy() for a in t]
        return (out.detach().numpy(), *grads, trm.numpy(), trv.numpy())
    t = [None if a is None else Tensor(a, requires_grad=True) for a in (x, w, b)]
    out = F.batch_norm(t[0], rm, rv, t[1], t[2], training, momentum, eps)
    out.backward(gy)
    assert out.data.dtype == np.float32 and out.data.strides == x.strides  # x's layout kept
    return (out.data, *[None if a is None else a.grad for a in t], rm, rv)


@pytest.mark.parametrize("kind", ["channels_last", "nchw"])
@pytest.mark.parametrize("affine_kind", AFFINE)
@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
def test_batch_norm_matches_pytorch_and_numpy(onednn, kind, affine_kind, training):
    rng = np.random.default_rng(0)
    shape = (16, 8, 6, 7)
    layout = channels_last if kind == "channels_last" else np.ascontiguousarray
    x = layout((3 * rng.standard_normal(shape) + 2).astype(np.float32))
    gy = layout(rng.standard_normal(shape).astype(np.float32))
    w, b = affine(affine_kind, shape[1], rng)
    rm, rv = rng.standard_normal(8).astype(np.float32), (0.5 + rng.random(8)).astype(np.float32)
    # the oneDNN kernels run on channels-last only
    assert (fused.batch_norm_forward(x, w, b, 1e-5) is not None) == (kind == "channels_last")
    eps = 0.05  # large enough to matter (var ~ 9): a kernel that dropped it would fail
    ours = run_batch_norm(x, gy, w, b, rm, rv, training, eps=eps)
    reference = run_batch_norm(x, gy, w, b, rm, rv, training, torch_ref=True, eps=eps)
    conv.select_conv("numpy")
    assert fused.batch_norm_forward(x, w, b, 1e-5) is None
    numpy_path = run_batch_norm(x, gy, w, b, rm, rv, training, eps=eps)
    for mine, theirs, formula in zip(ours, reference, numpy_path):
        assert (mine is None) == (theirs is None) == (formula is None)
        if mine is not None:
            close(mine, theirs)
            close(formula, theirs)


def test_conv_net_sizes_match_the_numpy_formula(onednn):
    """A conv net's first batch norm (256 x 64 x 16 x 16 channels-last, n = 65536 values per channel), weight
    frozen at 1 as nn.ConvNet has it: oneDNN against NumPy and both against float64."""
    rng = np.random.default_rng(1)
    shape = (256, 64, 16, 16)
    x = channels_last((rng.standard_normal(shape) * rng.uniform(0.5, 2, (1, 64, 1, 1))).astype(np.float32))
    gy = channels_last(rng.standard_normal(shape).astype(np.float32))
    w, b = np.ones(64, np.float32), rng.standard_normal(64).astype(np.float32)
    rm, rv = np.zeros(64, np.float32), np.ones(64, np.float32)
    ours = run_batch_norm(x, gy, w, b, rm, rv, True, momentum=0.4, eps=1e-12)
    conv.select_conv("numpy")
    numpy_path = run_batch_norm(x, gy, w, b, rm, rv, True, momentum=0.4, eps=1e-12)
    reference = reference_batch_norm(x, gy, w, b, 1e-12)
    for mine, formula, theirs in zip(ours[:4], numpy_path[:4], reference):
        close(mine, formula, 3e-5)
        close(mine, theirs, 3e-5)
    close(ours[4], numpy_path[4], 1e-5)
    close(ours[5], numpy_path[5], 1e-5)


def reference_batch_norm(x, gy, w, b, eps):
    """float64 (out, gx, gw, gb) of training batch norm, the textbook formulas."""
    x, gy = x.astype(np.float64), gy.astype(np.float64)
    axes, n = (0, 2, 3), x.size // x.shape[1]
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    xhat = (x - mean) / np.sqrt(var + eps)
    gb, gw = gy.sum(axis=axes), (gy * xhat).sum(axis=axes)
    scale = w.reshape(1, -1, 1, 1) / np.sqrt(var + eps) / n
    gx = scale * (n * gy - gb.reshape(1, -1, 1, 1) - xhat * gw.reshape(1, -1, 1, 1))
    return xhat * w.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1), gx, gw, gb


def test_a_large_mean_keeps_the_variance(onednn):
    """Values 100 +- 1: a one-pass variance (E[x^2] - E[x]^2 in float32) would lose it to cancellation; oneDNN
    computes it from the deviations. What remains is the float32 sum behind the mean (as in NumPy's reduction
    over a channels-last array): xhat within ~1e-3 of float64 at n = 16384 values per channel."""
    rng = np.random.default_rng(2)
    shape = (64, 16, 16, 16)
    x = channels_last((100 + rng.standard_normal(shape)).astype(np.float32))
    gy = channels_last(rng.standard_normal(shape).astype(np.float32))
    out, mean, var = fused.batch_norm_forward(x, None, None, 1e-5)
    x64 = x.astype(np.float64)
    mean64, var64 = x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))
    np.testing.assert_allclose(var, var64, rtol=1e-4)
    np.testing.assert_allclose(mean, mean64, rtol=1e-5)
    out64, gx64, _, gb64 = reference_batch_norm(x, gy, np.ones(16), np.zeros(16), 1e-5)
    np.testing.assert_allclose(out, out64, rtol=0, atol=1e-3)
    gx, gw, gb = fused.batch_norm_backward(x, mean, var, None, True, gy, 1e-5)
    assert gw is None
    close(gb, gb64, 1e-5)
    close(gx, gx64, 1e-3)


def test_conv_net_batch_norm_module_over_steps_like_pytorch(onednn):
    """nn.BatchNorm2d as nn.ConvNet builds it (weight frozen at 1, eps 1e-12, momentum 0.4), channels-last, three
    training steps then evaluation: outputs, running statistics, grads of x and bias; no grad for the weight."""
    rng = np.random.default_rng(3)
    ours = nn.BatchNorm2d(12, eps=1e-12, momentum=0.4)
    ours.weight.requires_grad = False
    theirs = torch.nn.BatchNorm2d(12, eps=1e-12, momentum=0.4).double()
    theirs.weight.requires_grad_(False)
    for step in range(4):
        if step == 3:
            ours.eval()
            theirs.eval()
        x = channels_last((2 * rng.standard_normal((32, 12, 5, 5)) + 1).astype(np.float32))
        gy = channels_last(rng.standard_normal(x.shape).astype(np.float32))
        xt, tx = Tensor(x, requires_grad=True), torch.tensor(x, dtype=torch.float64, requires_grad=True)
        out, tout = ours(xt), theirs(tx)
        out.backward(gy)
        tout.backward(torch.tensor(gy, dtype=torch.float64))
        close(out.data, tout.detach().numpy())
        close(xt.grad, tx.grad.numpy())
        close(ours.bias.grad, theirs.bias.grad.numpy())
        assert ours.weight.grad is None
        close(ours.running_mean, theirs.running_mean.numpy(), 1e-5)
        close(ours.running_var, theirs.running_var.numpy(), 1e-5)
        ours.bias.grad = None
        theirs.bias.grad = None
        with torch.no_grad():  # a training step on the shift, identical on both sides
            theirs.bias -= 0.1 * torch.tensor(np.ones(12))
        ours.bias.data -= 0.1 * np.ones(12, np.float32)


def test_second_derivative_through_the_onednn_kernels(onednn):
    """create_graph recomputes the statistics from x on the graph: d/dx of |dL/dx|^2 and of the weight's gradient
    match PyTorch."""
    rng = np.random.default_rng(4)
    x = channels_last((2 * rng.standard_normal((8, 4, 3, 5)) + 1).astype(np.float32))
    w, b = (1 + rng.standard_normal(4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    gy = channels_last(rng.standard_normal(x.shape).astype(np.float32))
    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
    (gx, gw) = autograd.grad((F.batch_norm(xt, None, None, wt, bt, True) * Tensor(gy)).sum(), [xt, wt],
                             create_graph=True)
    (ggx, ggw) = autograd.grad((gx * gx).sum() + (gw * gw).sum(), [xt, wt])
    tx, tw, tb = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.batch_norm(tx, None, None, tw, tb, True)
    (tgx, tgw) = torch.autograd.grad((tout * torch.tensor(gy, dtype=torch.float64)).sum(), [tx, tw],
                                     create_graph=True)
    (tggx, tggw) = torch.autograd.grad((tgx * tgx).sum() + (tgw * tgw).sum(), [tx, tw])
    close(gx.data, tgx.detach().numpy())
    close(gw.data, tgw.detach().numpy())
    close(ggx.data if isinstance(ggx, Tensor) else ggx, tggx.numpy(), 1e-4)
    close(ggw.data if isinstance(ggw, Tensor) else ggw, tggw.numpy(), 1e-4)


def test_a_gradient_in_another_layout_is_copied_to_channels_last(onednn):
    rng = np.random.default_rng(5)
    x = channels_last(rng.standard_normal((6, 5, 4, 3)).astype(np.float32))
    gy = rng.standard_normal(x.shape).astype(np.float32)  # NCHW
    out, mean, var = fused.batch_norm_forward(x, None, None, 1e-5)
    gx, _, gb = fused.batch_norm_backward(x, mean, var, None, True, gy, 1e-5)
    assert gx.strides == x.strides
    _, gx64, _, gb64 = reference_batch_norm(x, gy, np.ones(5), np.zeros(5), 1e-5)
    close(gx, gx64)
    close(gb, gb64)


def test_the_dispatch_runs_onednn_only_where_it_should(onednn):
    nchw = np.random.default_rng(6).standard_normal((4, 3, 5, 5)).astype(np.float32)
    x, v = channels_last(nchw), np.ones(3, np.float32)
    assert fused.batch_norm_forward(x, v, v, 1e-5) is not None
    assert fused.batch_norm_forward(x, None, None, 1e-5) is not None
    assert fused.batch_norm_inference(x, v, v, None, None, 1e-5) is not None
    assert fused.batch_norm_forward(nchw, v, v, 1e-5) is None  # NCHW stays on NumPy
    assert fused.batch_norm_forward(x.astype(np.float64), None, None, 1e-5) is None  # float64 stays on NumPy
    assert fused.batch_norm_forward(x, v.astype(np.float64), None, 1e-5) is None
    assert fused.batch_norm_forward(x[:, :, :, ::2], None, None, 1e-5) is None  # not dense
    assert fused.batch_norm_forward(x[:, :, 0], None, None, 1e-5) is None  # 3-D: BatchNorm1d stays on NumPy
    assert fused.batch_norm_inference(nchw.reshape(4, -1), v, v, None, None, 1e-5) is None
    assert fused.batch_norm_backward(x, v, v, None, True, Tensor(x), 1e-5) is None  # create_graph: on the graph
    conv.select_conv("numpy")
    assert fused.batch_norm_forward(x, v, v, 1e-5) is None
    assert fused.batch_norm_inference(x, v, v, v, v, 1e-5) is None
    assert fused.batch_norm_backward(x, v, v, v, True, x, 1e-5) is None


def test_plans_are_cached_and_run_the_jit_kernel(onednn):
    """A second step at the same size creates no plan; at a conv net's width (C = 64) oneDNN runs its JIT kernel
    (``bnorm_jit:<isa>``), not a generic one."""
    prims = _onednn_norm.primitives()
    rng = np.random.default_rng(7)
    x = channels_last(rng.standard_normal((8, 64, 4, 4)).astype(np.float32))
    v = np.ones(64, np.float32)
    for step in range(2):
        if step:
            plans = len(prims.cache)
        out, mean, var = fused.batch_norm_forward(x, None, v, 1e-12)
        fused.batch_norm_backward(x, mean, var, None, True, out, 1e-12)
    assert len(prims.cache) == plans
    names = prims.impl("training", x.shape) + prims.impl("backward", x.shape)
    assert len(names) == 2 and all(name.startswith("bnorm_jit") for name in names), names
