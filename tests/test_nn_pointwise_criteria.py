"""The slide's pointwise and criterion rows (hardtanh, softplus, logsigmoid, glu, softshrink, rrelu; l1, smooth
l1, soft margin, binary cross-entropy, multi-label margin): against PyTorch float64, gradchecks, the modules,
rrelu's seeded randomness, errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 6)) * 3
X[np.abs(X) < 0.05] = 0.5  # no element at a kink's numerical-difference distance
T = RNG.standard_normal((4, 6))
P = np.clip(RNG.random((4, 6)), 0.02, 0.98)
Y_PM = np.sign(RNG.standard_normal((4, 6)))
Y_ML = np.array([[3, 0, -1, 1, 2, 2], [0, 1, 2, 3, 4, 5], [-1, 0, 0, 0, 0, 0], [5, 5, 2, -1, 0, 0]])


def same(ours_f, theirs_f, *xs, const=()):
    """Values and gradients of every input of ours_f and theirs_f agree; ``const`` are passed to both as
    constants after the inputs."""
    a = [cr.Tensor(x, requires_grad=True) for x in xs]
    t = [torch.tensor(x, requires_grad=True) for x in xs]
    ours, theirs = ours_f(*a, *const), theirs_f(*t, *(torch.tensor(c) for c in const))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    up = RNG.standard_normal(ours.shape)
    ours.backward(up), theirs.backward(torch.tensor(up))
    for ai, ti in zip(a, t):
        np.testing.assert_allclose(ai.grad, ti.grad.numpy(), rtol=1e-11, atol=1e-14)


POINTWISE = [
    ("hardtanh", lambda x: F.hardtanh(x, -0.5, 2.0), lambda x: TF.hardtanh(x, -0.5, 2.0)),
    ("softplus", lambda x: F.softplus(x, 2.0, 5.0), lambda x: TF.softplus(x, 2.0, 5.0)),
    ("softplus negative beta", lambda x: F.softplus(x, -1.5), lambda x: TF.softplus(x, -1.5)),
    ("logsigmoid", F.logsigmoid, TF.logsigmoid),
    ("glu last", F.glu, TF.glu),
    ("glu dim 0", lambda x: F.glu(x, 0), lambda x: TF.glu(x, 0)),
    ("softshrink", lambda x: F.softshrink(x, 0.7), lambda x: TF.softshrink(x, 0.7)),
    ("rrelu eval", lambda x: F.rrelu(x, 0.1, 0.3), lambda x: TF.rrelu(x, 0.1, 0.3)),
]


@pytest.mark.parametrize("name,ours,theirs", POINTWISE, ids=[p[0] for p in POINTWISE])
def test_pointwise_match_torch_and_gradcheck(name, ours, theirs):
    same(ours, theirs, X)
    assert cr.gradcheck(ours, cr.Tensor(X, requires_grad=True))
    y = ours(cr.Tensor(X.astype(np.float32), requires_grad=True))
    y.sum().backward()
    assert y.dtype == np.float32


def test_softplus_and_logsigmoid_do_not_overflow():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    with np.errstate(all="raise"):
        for ours, theirs in ((F.softplus(x).data, TF.softplus(torch.tensor(x))),
                             (F.logsigmoid(x).data, TF.logsigmoid(torch.tensor(x)))):
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12)


def test_rrelu_training_draws_seeded_slopes_in_range():
    x = -np.ones((200, 50))
    x[:, :10] = 1.0
    y = F.rrelu(x, 0.1, 0.3, training=True, generator=5).data
    slopes = -y[:, 10:]
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and abs(slopes.mean() - 0.2) < 0.005
    np.testing.assert_array_equal(y[:, :10], 1.0)
    np.testing.assert_array_equal(y, F.rrelu(x, 0.1, 0.3, training=True, generator=5).data)
    xa = cr.Tensor(x, requires_grad=True)
    out = F.rrelu(xa, training=True, generator=1)
    out.backward(np.ones(x.shape))
    np.testing.assert_array_equal(xa.grad, out.data / x)  # the gradient is the drawn multiplier
    m = nn.RReLU(0.1, 0.3, seed=7)
    state = m.rng_state()
    first = m(x).data
    m.set_rng_state(state)
    np.testing.assert_array_equal(m(x).data, first)
    m.eval()
    np.testing.assert_allclose(m(x).data, TF.rrelu(torch.tensor(x), 0.1, 0.3).numpy())


CRITERIA = [
    ("l1_loss", lambda x, t, r: F.l1_loss(x, t, r), lambda x, t, r: TF.l1_loss(x, t, reduction=r), [X, T], ()),
    ("smooth_l1_loss", lambda x, t, r: F.smooth_l1_loss(x, t, r, 0.8),
     lambda x, t, r: TF.smooth_l1_loss(x, t, reduction=r, beta=0.8), [X, T], ()),
    ("smooth_l1_loss beta 0", lambda x, t, r: F.smooth_l1_loss(x, t, r, 0.0),
     lambda x, t, r: TF.smooth_l1_loss(x, t, reduction=r, beta=0.0), [X, T], ()),
    ("soft_margin_loss", lambda x, r, y: F.soft_margin_loss(x, y, r),
     lambda x, r, y: TF.soft_margin_loss(x, y, reduction=r), [X], (Y_PM,)),
    ("binary_cross_entropy", lambda p, t, r: F.binary_cross_entropy(p, t, None, r),
     lambda p, t, r: TF.binary_cross_entropy(p, t, reduction=r), [P, np.clip(T, 0, 1)], ()),
    ("binary_cross_entropy weight", lambda p, r, t, w: F.binary_cross_entropy(p, t, w, r),
     lambda p, r, t, w: TF.binary_cross_entropy(p, t, w, reduction=r), [P], (np.clip(T, 0, 1), P[:1] * 2)),
    ("multilabel_margin_loss", lambda x, r, y: F.multilabel_margin_loss(x, y, r),
     lambda x, r, y: TF.multilabel_margin_loss(x, y, reduction=r), [X * 0.3], (Y_ML,)),
    ("multilabel_margin_loss unbatched", lambda x, r, y: F.multilabel_margin_loss(x, y, r),
     lambda x, r, y: TF.multilabel_margin_loss(x, y, reduction=r), [X[1] * 0.3], (Y_ML[0],)),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name,ours,theirs,inputs,const", CRITERIA, ids=[c[0] for c in CRITERIA])
def test_criteria_match_torch_and_gradcheck(name, ours, theirs, inputs, const, reduction):
    n = len(inputs)
    same(lambda *a: ours(*a[:n], reduction, *a[n:]), lambda *t: theirs(*t[:n], reduction, *t[n:]), *inputs,
         const=const)
    tensors = [cr.Tensor(a, requires_grad=True) for a in inputs]
    assert cr.gradcheck(lambda *a: ours(*a, reduction, *const), *tensors)


def test_binary_cross_entropy_at_zero_and_one_is_finite_as_pytorch():
    p, t = np.array([0.0, 1.0, 0.3]), np.array([0.2, 0.7, 0.5])
    pa = cr.Tensor(p, requires_grad=True)
    out = F.binary_cross_entropy(pa, t, reduction="sum")
    pt = torch.tensor(p, requires_grad=True)
    ref = TF.binary_cross_entropy(pt, torch.tensor(t), reduction="sum")
    out.backward(), ref.backward()
    np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-12)  # logs clamped at -100
    np.testing.assert_allclose(pa.grad, pt.grad.numpy(), rtol=1e-12)  # p (1 - p) clamped at 1e-12
    ta = cr.Tensor(t, requires_grad=True)  # the target's gradient uses the clamped logs too (PyTorch's is +-inf)
    F.binary_cross_entropy(p, ta, reduction="sum").backward()
    np.testing.assert_allclose(ta.grad[:2], [100.0, -100.0])


def test_loss_modules_match_torch():
    w = P[:1] * 2
    pairs = [(nn.L1Loss(), torch.nn.L1Loss(), X, T), (nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5), X, T),
             (nn.SoftMarginLoss("sum"), torch.nn.SoftMarginLoss(reduction="sum"), X, Y_PM),
             (nn.BCELoss(w), torch.nn.BCELoss(torch.tensor(w)), P, np.clip(T, 0, 1)),
             (nn.MultiLabelMarginLoss(), torch.nn.MultiLabelMarginLoss(), X, Y_ML)]
    for ours, theirs, a, b in pairs:
        np.testing.assert_allclose(ours(a, b).item(), theirs(torch.tensor(a), torch.tensor(b)).item(), rtol=1e-12)
        assert list(ours.state_dict()) == list(theirs.state_dict())
    modules = [(nn.Hardtanh(-2, 2), torch.nn.Hardtanh(-2, 2)), (nn.Softplus(2), torch.nn.Softplus(2)),
               (nn.LogSigmoid(), torch.nn.LogSigmoid()), (nn.GLU(0), torch.nn.GLU(0)),
               (nn.Softshrink(1.0), torch.nn.Softshrink(1.0))]
    for ours, theirs in modules:
        np.testing.assert_allclose(ours(X).data, theirs(torch.tensor(X)).numpy(), rtol=1e-12)


@pytest.mark.parametrize("call,error,match", [
    (lambda: F.glu(np.zeros((2, 5))), ValueError, r"glu: the size along dim -1 must be even .* got 5"),
    (lambda: F.glu(np.zeros((2, 4)), 2), ValueError, r"glu: dim 2 is out of range for an input of shape \(2, 4\)"),
    (lambda: F.softshrink(X, -0.1), ValueError, r"softshrink: lambd must be >= 0, got -0.1"),
    (lambda: F.hardtanh(X, 1.0, -1.0), ValueError, r"min_val 1.0 must be <= max_val -1.0"),
    (lambda: F.rrelu(X, 0.5, 0.1), ValueError, r"expected 0 <= lower <= upper, got lower=0.5, upper=0.1"),
    (lambda: F.softplus(np.arange(3)), TypeError, r"softplus: expected a floating-point input, got dtype int"),
    (lambda: F.binary_cross_entropy(np.array([0.5, 1.5]), np.zeros(2)), ValueError,
     r"expected probabilities in \[0, 1\], got 1.5 at index \(1,\); apply sigmoid first"),
    (lambda: F.l1_loss(X, T[:2]), ValueError, r"l1_loss: input has shape \(4, 6\) but target has shape \(2, 6\)"),
    (lambda: F.smooth_l1_loss(X, T, beta=-1), ValueError, r"beta must be >= 0, got -1"),
    (lambda: F.multilabel_margin_loss(X, Y_ML + 1), ValueError, r"target classes in \[0, 6\) or -1 .* got 6 at index"),
    (lambda: F.multilabel_margin_loss(X, Y_ML[:2]), ValueError, r"expected integer targets of the scores' shape"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
