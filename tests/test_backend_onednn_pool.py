"""Max pooling on oneDNN's pooling primitive (``chainrule.backend._onednn_pool``, dispatched by
``backend.fused.max_pool2d`` / ``max_pool2d_backward``): that oneDNN's workspace is chainrule's winning-tap ``arg``
(the same values and indices as the NumPy path and PyTorch float64, bit for bit, and the same gradients) in both
layouts, with ties, padding and ceil_mode; that the cases where oneDNN's rule differs (NaN, -inf, the lowest float,
256 taps), those it runs in its slow reference loop (dilation) and everything not float32 (N, C, H, W) dense run the
NumPy path; and that double backward keeps working."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import chainrule as cr  # noqa: E402
from chainrule import Tensor, autograd, nn  # noqa: E402
from chainrule.backend import _onednn_conv, _onednn_pool, conv, fused  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402
from chainrule.nn._pool import pool_window  # noqa: E402

PRIMS, WHY = _onednn_conv.primitives()
pytestmark = pytest.mark.skipif(PRIMS is None, reason=f"oneDNN: {WHY}")
TF = torch.nn.functional

# (input H, W), kernel, stride, padding, ceil_mode: the conv net's 2x2, 3x3 stride 2 padding 1 (overlapping), odd
# sizes, ceil_mode's extra row and column, asymmetric pairs, stride 1, a tiling window of 20 taps, global pooling
GEOMETRIES = [
    ((8, 8), 2, None, 0, False),
    ((7, 9), 2, None, 0, True),
    ((7, 7), 3, 2, 1, False),
    ((6, 5), 3, 2, 1, True),
    ((5, 6), (3, 2), (2, 3), (1, 1), True),
    ((4, 4), 3, 1, 1, False),
    ((11, 13), (5, 4), None, 0, False),
    ((6, 6), 6, None, 0, False),
]
IDS = [f"{hw}-k{k}-s{s}-p{p}-{'ceil' if c else 'floor'}" for hw, k, s, p, c in GEOMETRIES]


def layout(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "channels_last":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


def values(kind: str, shape, rng) -> np.ndarray:
    if kind == "ties":  # small integers: most windows hold their maximum more than once
        return rng.integers(-2, 3, shape).astype(np.float32)
    if kind == "equal":  # every window all-equal: tap 0 (or the first in-bounds tap) wins
        return np.full(shape, 1.5, np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def pool_and_grad(x: np.ndarray, up: np.ndarray, k, s, p, ceil):
    """(out, indices, input gradient) of chainrule's max_pool2d on x, on the backend selected now."""
    xa = Tensor(x, requires_grad=True)
    out, idx = F.max_pool2d(xa, k, s, p, 1, ceil, return_indices=True)
    plain = F.max_pool2d(xa, k, s, p, 1, ceil)
    plain.backward(up)
    np.testing.assert_array_equal(plain.data, out.data)
    return plain.data, idx, xa.grad


@pytest.mark.parametrize("kind", ["nchw", "channels_last"])
@pytest.mark.parametrize("data", ["normal", "ties", "equal"])
@pytest.mark.parametrize("hw,k,s,p,ceil", GEOMETRIES, ids=IDS)
def test_max_pool_on_onednn_matches_the_numpy_path_and_pytorch(onednn, hw, k, s, p, ceil, data, kind):
    rng = np.random.default_rng(0)
    x = values(data, (2, 5, *hw), rng)
    window = pool_window("max_pool2d", hw, k, s, p, 1, ceil)
    assert fused.max_pool2d(layout(x, kind), window, True) is not None  # the fast path runs here
    up = layout(rng.standard_normal((2, 5, *window.out_hw)).astype(np.float32), kind)
    out, idx, gx = pool_and_grad(layout(x, kind), up, k, s, p, ceil)
    conv.select_conv("numpy")
    ref_out, ref_idx, ref_gx = pool_and_grad(layout(x, kind), up, k, s, p, ceil)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(gx, ref_gx, rtol=0, atol=1e-6)  # overlapping windows may add in another order
    order = (0, 2, 3, 1) if kind == "channels_last" else (0, 1, 2, 3)
    assert out.transpose(order).flags.c_contiguous and gx.transpose(order).flags.c_contiguous  # x's layout kept
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    t_out, t_idx = TF.max_pool2d(xt, k, s, p, 1, ceil, return_indices=True)
    t_out.backward(torch.tensor(up, dtype=torch.float64))
    np.testing.assert_array_equal(out, t_out.detach().numpy())
    np.testing.assert_array_equal(idx, t_idx.numpy())
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=0, atol=1e-6)


def test_onednn_workspace_is_the_winning_tap_of_max_taps(onednn):
    """The forward's arg, straight from oneDNN's workspace, equals the NumPy taps' arg (row-major tap numbers,
    padded taps counted, the first maximum on ties) and is read back by the NumPy gather (``gather_taps``)."""
    from chainrule.nn._functions import pooling

    rng = np.random.default_rng(1)
    x = layout(rng.integers(0, 3, (3, 8, 9, 7)).astype(np.float32), "channels_last")
    window = pool_window("max_pool2d", (9, 7), 3, 2, 1, 1, True)
    out, arg = fused.max_pool2d(x, window, want_arg=True)
    conv.select_conv("numpy")
    ref_out, ref_arg = pooling.max_taps(x, window, want_arg=True)
    assert arg.dtype == ref_arg.dtype == np.uint8
    np.testing.assert_array_equal(arg, ref_arg)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(pooling.gather_taps(x, arg, window), out)
    assert fused.max_pool2d(x, window, want_arg=False) is None  # (the numpy backend is selected now)


def test_the_conv_nets_pooling_runs_oneDNNs_jit_kernels_channels_last(onednn):
    rng = np.random.default_rng(2)
    x = layout(rng.standard_normal((4, 16, 8, 8)).astype(np.float32), "channels_last")
    xa = Tensor(x, requires_grad=True)
    y = nn.MaxPool2d(2)(xa)
    y.backward(np.ones(y.shape, np.float32))
    plans = {key[:4]: plan for key, plan in _onednn_pool.primitives().cache.items()}
    assert plans[("forward", True, x.shape, "nhwc")].impl.startswith("jit")
    assert plans[("backward", x.shape, "nhwc", "nhwc")].impl.startswith("jit")
    assert y.data.strides[1] == y.data.itemsize and xa.grad.strides[1] == xa.grad.itemsize


def test_problems_oneDNN_runs_in_its_reference_loop_take_the_numpy_path(onednn):
    """Dilated windows (and the channels-last backward of a global window) have only oneDNN's scalar reference
    loop, slower than the taps: the NumPy path runs them, with the same results."""
    rng = np.random.default_rng(7)
    x = layout(rng.standard_normal((2, 8, 9, 8)).astype(np.float32), "channels_last")
    dilated = pool_window("max_pool2d", (9, 8), 3, 2, 1, 2, False)
    assert fused.max_pool2d(x, dilated, True) is None
    whole = pool_window("max_pool2d", (9, 8), (9, 8), None, 0, 1, False)
    out, arg = fused.max_pool2d(x, whole, True)
    assert fused.max_pool2d_backward(np.ones_like(out), arg, whole, True) is None
    xa, xt = Tensor(x, requires_grad=True), torch.tensor(x, dtype=torch.float64, requires_grad=True)
    F.max_pool2d(xa, 3, 2, 1, 2).sum().backward()
    TF.max_pool2d(xt, 3, 2, 1, 2).sum().backward()
    np.testing.assert_array_equal(xa.grad, xt.grad.numpy())


@pytest.mark.parametrize("bad", ["nan", "-inf", "lowest"])
@pytest.mark.parametrize("kind", ["nchw", "channels_last"])
def test_windows_where_onednns_rule_differs_take_the_numpy_path(onednn, bad, kind):
    """oneDNN skips NaN and starts its maximum at the lowest float32; such inputs run the taps, and the gradient
    (on oneDNN, from the NumPy winners) routes as PyTorch's NCHW kernel."""
    x = np.arange(2 * 3 * 6 * 6, dtype=np.float32).reshape(2, 3, 6, 6) % 7
    value = {"nan": np.nan, "-inf": -np.inf, "lowest": np.finfo(np.float32).min}[bad]
    x[0, 0, :3, :3] = -np.inf
    x[0, 0, 1, 1] = x[1, 2, 4, 5] = x[1, 2, 5, 4] = value
    x[0, 1, :2, :2] = value
    xs = layout(x, kind)
    window = pool_window("max_pool2d", (6, 6), 3, 2, 1, 1, True)
    assert fused.max_pool2d(xs, window, True) is None
    xa, xt = Tensor(xs, requires_grad=True), torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out, idx = F.max_pool2d(xa, 3, 2, 1, 1, True, return_indices=True)
    t_out, t_idx = TF.max_pool2d(xt, 3, 2, 1, 1, True, return_indices=True)
    np.testing.assert_array_equal(out.data, t_out.detach().numpy().astype(np.float32))
    np.testing.assert_array_equal(idx, t_idx.numpy())
    F.max_pool2d(xa, 3, 2, 1, 1, True).backward(np.ones(out.shape, np.float32))  # (a sum would overflow)
    t_out.backward(torch.ones_like(t_out))
    np.testing.assert_array_equal(xa.grad, xt.grad.numpy())


def test_the_dispatch_runs_onednn_only_where_it_should(onednn):
    x = np.random.default_rng(3).standard_normal((2, 3, 16, 16)).astype(np.float32)
    w2 = pool_window("max_pool2d", (16, 16), 2, None, 0, 1, False)
    out, arg = fused.max_pool2d(x, w2, True)
    assert fused.max_pool2d(x, w2, False)[1] is None  # forward_inference: no winners written
    assert fused.max_pool2d(x.astype(np.float64), w2, True) is None  # float64 stays on NumPy
    assert fused.max_pool2d(x[:, :, :, ::2], pool_window("max_pool2d", (16, 8), 2, None, 0, 1, False), True) is None
    assert fused.max_pool2d(x[0], w2, True) is None  # (C, H, W): the taps
    assert fused.max_pool2d(x, pool_window("max_pool2d", (16, 16), 16, None, 0, 1, False), True) is None  # 256 taps
    assert fused.max_pool2d(np.zeros((0, 3, 16, 16), np.float32), w2, True) is None
    assert fused.max_pool2d_backward(out.astype(np.float64), arg, w2, False) is None
    assert fused.max_pool2d_backward(out, arg.astype(np.int32), w2, False) is None
    conv.select_conv("numpy")
    assert fused.max_pool2d(x, w2, True) is None and fused.max_pool2d_backward(out, arg, w2, False) is None


def test_backward_takes_a_gradient_in_another_layout_and_numpy_winners(onednn):
    """A channels-last input whose gradient arrives NCHW (copied once to the winners' layout); winners from the
    NumPy path (here a float64 twin's) are read as oneDNN's own."""
    from chainrule.nn._functions import pooling

    rng = np.random.default_rng(4)
    x = layout(rng.integers(-2, 3, (2, 6, 7, 7)).astype(np.float32), "channels_last")
    window = pool_window("max_pool2d", (7, 7), 3, 2, 1, 1, False)
    _, arg = pooling.max_taps(x.astype(np.float64), window, want_arg=True)  # NumPy's winners, x's layout
    up = rng.standard_normal(arg.shape).astype(np.float32)  # C-contiguous
    gx = fused.max_pool2d_backward(up, arg, window, channels_last=True)
    assert gx is not None and gx.strides[1] == gx.itemsize
    conv.select_conv("numpy")
    np.testing.assert_allclose(gx, pooling.scatter_taps(up, arg, window, True), rtol=1e-6, atol=0)


@pytest.mark.parametrize("backend", ["onednn", "numpy"])
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), ((5, 4), (5, 4), 0)])
def test_an_inf_or_nan_gradient_reaches_only_the_winners(onednn, backend, k, s, p):
    """As PyTorch: a non-finite gradient goes to its window's winner; the losing taps get 0, not inf * 0 = NaN."""
    conv.select_conv(backend)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 10, 8)).astype(np.float32)
    xa, xt = Tensor(x, requires_grad=True), torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y, ty = F.max_pool2d(xa, k, s, p), TF.max_pool2d(xt, k, s, p)
    up = rng.standard_normal(y.shape).astype(np.float32)
    up[0, 0, 0, 0], up[1, 2, 1, 1], up[0, 1, 0, 1] = np.inf, np.nan, -np.inf
    y.backward(up)
    ty.backward(torch.tensor(up, dtype=torch.float64))
    np.testing.assert_allclose(xa.grad, xt.grad.numpy(), rtol=1e-6, atol=0)  # (NaN where torch's NaN is)


def test_max_pool_module_gradient_and_double_backward_on_onednn(onednn):
    """nn.MaxPool2d on the conv net's layout: the gradient, and a second derivative through the winners saved by
    the oneDNN forward (max pooling's backward is linear given them), as PyTorch's."""
    rng = np.random.default_rng(6)
    x = layout(rng.standard_normal((3, 4, 10, 10)).astype(np.float32), "channels_last")
    xa, xt = Tensor(x, requires_grad=True), torch.tensor(x, dtype=torch.float64, requires_grad=True)
    pool, t_pool = nn.MaxPool2d(3, stride=2, padding=1), torch.nn.MaxPool2d(3, stride=2, padding=1)
    (g,) = autograd.grad((pool(xa) ** 2).sum(), [xa], create_graph=True)
    (gg,) = autograd.grad((g * g).sum(), [xa])
    (tg,) = torch.autograd.grad((t_pool(xt) ** 2).sum(), [xt], create_graph=True)
    (tgg,) = torch.autograd.grad((tg * tg).sum(), [xt])
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gg.data if isinstance(gg, Tensor) else gg, tgg.numpy(), rtol=1e-5, atol=1e-5)
    assert cr.backend.conv.info()["conv"] == "onednn"
