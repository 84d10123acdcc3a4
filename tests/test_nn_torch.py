"""Forward and backward of chainrule.nn against torch.nn.functional, in float64 (PyTorch only as an oracle)."""

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-10, 1e-12


def pair(array):
    """The same float64 data as a chainrule Tensor and a torch tensor, both requiring grad."""
    return cr.Tensor(array.copy(), requires_grad=True), torch.tensor(array, requires_grad=True)


def check(ours, theirs, inputs, upstream=None):
    """Forward values equal, and the gradients of every input pair equal after backward(upstream)."""
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=RTOL, atol=ATOL)
    if upstream is None:
        upstream = np.random.default_rng(9).standard_normal(ours.shape)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    for a, b in inputs:
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.fixture
def rng():
    return np.random.default_rng(5)


ACTIVATIONS = [
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
    ("relu", F.relu, TF.relu),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
    ("elu", lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    ("gelu_erf", lambda x: F.gelu(x), lambda x: TF.gelu(x)),
    ("gelu_tanh", lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh")),
]


@pytest.mark.parametrize("name,ours,theirs", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activations(name, ours, theirs, rng):
    x = rng.standard_normal((6, 7)) * 3
    a, b = pair(x)
    check(ours(a), theirs(b), [(a, b)])


def test_linear_with_transposed_weight_layout(rng):
    x, w, bias = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    (xa, xb), (wa, wb), (ba, bb) = pair(x), pair(w), pair(bias)
    # chainrule stores (in, out); torch's F.linear takes (out, in).
    check(F.linear(xa, wa, ba), TF.linear(xb, wb.T, bb), [(xa, xb), (wa, wb), (ba, bb)])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(training, rng):
    x, g, b = rng.standard_normal((9, 4)) * 2 + 1, rng.standard_normal(4), rng.standard_normal(4)
    rm, rv = rng.standard_normal(4), rng.random(4) + 0.5
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    (xa, xb), (ga, gb), (ba, bb) = pair(x), pair(g), pair(b)
    ours = F.batch_norm(xa, rm, rv, ga, ba, training=training, momentum=0.2, eps=1e-3)
    theirs = TF.batch_norm(xb, rm_t, rv_t, gb, bb, training=training, momentum=0.2, eps=1e-3)
    check(ours, theirs, [(xa, xb), (ga, gb), (ba, bb)])
    np.testing.assert_allclose(rm, rm_t.numpy(), rtol=RTOL)  # running statistics updated the same way
    np.testing.assert_allclose(rv, rv_t.numpy(), rtol=RTOL)


def test_batchnorm1d_module_over_several_steps(rng):
    ours, theirs = nn.BatchNorm1d(3, momentum=0.3).to(np.float64), torch.nn.BatchNorm1d(3, momentum=0.3).double()
    for _ in range(4):
        x = rng.standard_normal((6, 3)) * 3 - 2
        np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=RTOL, atol=ATOL)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((5, 3))
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=RTOL, atol=ATOL)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=RTOL)


def test_layer_norm(rng):
    x, g, b = rng.standard_normal((3, 4, 5)) * 2, rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    (xa, xb), (ga, gb), (ba, bb) = pair(x), pair(g), pair(b)
    check(F.layer_norm(xa, (4, 5), ga, ba, eps=1e-4), TF.layer_norm(xb, (4, 5), gb, bb, eps=1e-4),
          [(xa, xb), (ga, gb), (ba, bb)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
def test_cross_entropy(reduction, smoothing, rng):
    s, y = rng.standard_normal((8, 5)) * 3, rng.integers(0, 5, size=8)
    a, b = pair(s)
    check(F.cross_entropy(a, y, reduction, smoothing),
          TF.cross_entropy(b, torch.tensor(y), reduction=reduction, label_smoothing=smoothing), [(a, b)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multiclass_hinge_is_c_times_multi_margin_loss(reduction, rng):
    s, y = rng.standard_normal((8, 5)) * 2, rng.integers(0, 5, size=8)
    a, b = pair(s)
    theirs = 5 * TF.multi_margin_loss(b, torch.tensor(y), margin=0.7, reduction=reduction)
    check(F.multiclass_hinge(a, y, margin=0.7, reduction=reduction), theirs, [(a, b)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse(reduction, rng):
    (pa, pb), (ta, tb) = pair(rng.standard_normal((4, 3))), pair(rng.standard_normal((4, 3)))
    check(F.mse(pa, ta, reduction), TF.mse_loss(pb, tb, reduction=reduction), [(pa, pb), (ta, tb)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits(reduction, rng):
    (xa, xb), (ta, tb) = pair(rng.standard_normal((4, 3)) * 5), pair(rng.random((4, 3)))
    check(F.binary_cross_entropy_with_logits(xa, ta, reduction),
          TF.binary_cross_entropy_with_logits(xb, tb, reduction=reduction), [(xa, xb), (ta, tb)])


def test_mlp_matches_torch_sequential_with_copied_weights(rng):
    ours = nn.MLP([4, 6, 5, 3], activation="gelu", seed=0).to(np.float64)
    layers = []
    for m in ours:
        if isinstance(m, nn.Linear):
            lin = torch.nn.Linear(m.in_features, m.out_features).double()
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(m.weight.data.T))
                lin.bias.copy_(torch.tensor(m.bias.data))
            layers.append(lin)
        else:
            layers.append(torch.nn.GELU())
    theirs = torch.nn.Sequential(*layers)
    x, y = rng.standard_normal((7, 4)), rng.integers(0, 3, size=7)
    loss = F.cross_entropy(ours(x), y)
    loss_t = TF.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
    np.testing.assert_allclose(loss.item(), loss_t.item(), rtol=RTOL)
    loss.backward()
    loss_t.backward()
    torch_linears = [m for m in theirs if isinstance(m, torch.nn.Linear)]
    for m, t in zip([m for m in ours if isinstance(m, nn.Linear)], torch_linears, strict=True):
        np.testing.assert_allclose(m.weight.grad, t.weight.grad.numpy().T, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(m.bias.grad, t.bias.grad.numpy(), rtol=1e-9, atol=1e-12)
