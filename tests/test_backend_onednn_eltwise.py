"""The exact GELU on oneDNN's eltwise kernel (``chainrule.backend._onednn_eltwise``, dispatched by
``backend.fused.gelu_erf``): when it runs (float32, dense, the onednn convolution backend), that it matches PyTorch
in every layout, that the gradient and the second derivative are right, and that everything else keeps the NumPy
formula. Tolerance: 2e-6 absolute on values of order 1 (float32 against PyTorch float64)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chainrule import Tensor, autograd  # noqa: E402
from chainrule.backend import _onednn_conv, _onednn_eltwise, conv, fused  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402

PRIMS, WHY = _onednn_conv.primitives()
pytestmark = pytest.mark.skipif(PRIMS is None, reason=f"oneDNN: {WHY}")


def layout(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "channels_last":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if kind == "sliced":  # every other element of a wider buffer: not dense, so the NumPy formula runs
        wide = np.zeros(x.shape[:3] + (2 * x.shape[3],), dtype=x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    return np.ascontiguousarray(x)


def torch_gelu(x: np.ndarray, gy: np.ndarray):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.gelu(xt)
    y.backward(torch.tensor(gy, dtype=torch.float64))
    return y.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("x_kind", ["c", "channels_last", "sliced"])
@pytest.mark.parametrize("gy_kind", ["c", "channels_last"])
def test_gelu_matches_pytorch_in_every_layout(onednn, x_kind, gy_kind):
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal((3, 5, 4, 6))).astype(np.float32)
    x[0, 0, 0, :3] = [-12.0, 0.0, 12.0]  # tails and zero
    gy = rng.standard_normal(x.shape).astype(np.float32)
    y_ref, gx_ref = torch_gelu(x, gy)
    xt = Tensor(layout(x, x_kind), requires_grad=True)
    y = F.gelu(xt)
    y.backward(layout(gy, gy_kind))
    assert y.data.dtype == xt.grad.dtype == np.float32
    np.testing.assert_allclose(y.data, y_ref, rtol=0, atol=2e-6)
    np.testing.assert_allclose(xt.grad, gx_ref, rtol=0, atol=2e-6)
    if x_kind != "sliced":
        assert y.data.strides == xt.data.strides  # the output keeps the input's layout


def test_the_dispatch_runs_onednn_only_where_it_should(onednn):
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    assert fused.gelu_erf(x) is not None
    assert fused.gelu_erf(x.astype(np.float64)) is None  # float64 stays on the exact NumPy formula
    assert fused.gelu_erf(x[:, :, ::2]) is None  # not dense
    assert fused.gelu_erf(np.zeros((0, 3), np.float32)) is None
    conv.select_conv("numpy")
    assert fused.gelu_erf(x) is None and fused.gelu_erf_backward(x, x) is None


def test_dense_recognises_any_axis_order():
    a = np.zeros((2, 3, 4, 5), np.float32)
    assert _onednn_eltwise.dense(a) and _onednn_eltwise.dense(a.transpose(0, 2, 3, 1)) and _onednn_eltwise.dense(a.T)
    assert not _onednn_eltwise.dense(a[:, :, :, 1:]) and not _onednn_eltwise.dense(a[:, ::2])


def test_second_derivative_through_the_onednn_forward(onednn):
    """The forward on oneDNN saves no Phi; create_graph recomputes it on the graph, so d2/dx2 is PyTorch's."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    xt = Tensor(x, requires_grad=True)
    (g,) = autograd.grad(F.gelu(xt).sum(), [xt], create_graph=True)
    (gg,) = autograd.grad((g * g).sum(), [xt])
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.nn.functional.gelu(tx).sum(), [tx], create_graph=True)
    (tgg,) = torch.autograd.grad((tg * tg).sum(), [tx])
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=0, atol=2e-6)
    np.testing.assert_allclose(gg.data if isinstance(gg, Tensor) else gg, tgg.numpy(), rtol=0, atol=1e-5)
