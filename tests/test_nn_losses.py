"""Losses: gradchecks for every reduction, slow references, stability at |scores| = 1e4, dtypes, label checks."""

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.nn import reference

REDUCTIONS = ("mean", "sum", "none")


@pytest.fixture
def rng():
    return np.random.default_rng(1)


def scores_and_labels(rng, n=6, c=4, scale=1.0):
    return cr.Tensor(scale * rng.standard_normal((n, c)), requires_grad=True), rng.integers(0, c, size=n)


# ---- gradchecks --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_gradcheck(reduction, smoothing, rng):
    s, y = scores_and_labels(rng)
    assert cr.gradcheck(lambda s: F.cross_entropy(s, y, reduction, label_smoothing=smoothing), s)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multiclass_hinge_gradcheck(reduction, rng):
    s, y = scores_and_labels(rng, scale=3.0)
    assert cr.gradcheck(lambda s: F.multiclass_hinge(s, y, margin=0.5, reduction=reduction), s)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_gradcheck(reduction, rng):
    a, b = cr.Tensor(rng.standard_normal((5, 3)), requires_grad=True), cr.Tensor(rng.standard_normal((5, 3)),
                                                                                 requires_grad=True)
    assert cr.gradcheck(lambda a, b: F.mse(a, b, reduction), a, b)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_gradcheck(reduction, rng):
    x = cr.Tensor(3 * rng.standard_normal((5, 3)), requires_grad=True)
    t = cr.Tensor(rng.random((5, 3)), requires_grad=True)
    assert cr.gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction), x, t)


def test_l2_penalty_gradcheck_and_value(rng):
    w1, w2 = cr.Tensor(rng.standard_normal((3, 4)), requires_grad=True), cr.Tensor(rng.standard_normal(4),
                                                                                   requires_grad=True)
    assert cr.gradcheck(lambda a, b: F.l2_penalty([a, b], 0.3), w1, w2)
    np.testing.assert_allclose(F.l2_penalty([w1, w2], 0.3).item(), 0.3 * ((w1.data**2).sum() + (w2.data**2).sum()))


def test_l2_penalty_of_a_module_takes_weight_matrices_only():
    model = nn.MLP([3, 4, 2], norm="batch", seed=0)
    expected = 0.5 * sum((m.weight.data.astype(np.float64) ** 2).sum() for m in model if isinstance(m, nn.Linear))
    penalty = F.l2_penalty(model, 0.5)
    np.testing.assert_allclose(penalty.item(), expected, rtol=1e-5)
    penalty.backward()
    assert model[1].weight.grad is None and model[0].bias.grad is None  # BatchNorm gamma and biases untouched
    np.testing.assert_allclose(model[0].weight.grad, 2 * 0.5 * model[0].weight.data, rtol=1e-6)
    with pytest.raises(ValueError, match="lam >= 0"):
        F.l2_penalty(model, -1.0)


# ---- values against references -----------------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_matches_naive_loop(smoothing, rng):
    s, y = scores_and_labels(rng, n=9, c=5, scale=4.0)
    loss = F.cross_entropy(s, y, label_smoothing=smoothing)
    loss.backward()
    ref_loss, ref_grad = reference.softmax_loss_naive(s.data, y, smoothing)
    assert abs(loss.item() - ref_loss) < 1e-12
    assert cr.rel_error(s.grad, ref_grad) < 1e-9


def test_cross_entropy_backward_is_softmax_minus_onehot_over_n(rng):
    s, y = scores_and_labels(rng, n=5, c=3)
    F.cross_entropy(s, y).backward()
    p = np.exp(s.data - s.data.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(s.grad, (p - np.eye(3)[y]) / 5, rtol=1e-12)


def test_multiclass_hinge_matches_naive_loop(rng):
    s, y = scores_and_labels(rng, n=12, c=5, scale=2.0)
    loss = F.multiclass_hinge(s, y)
    loss.backward()
    ref_loss, ref_grad = reference.svm_loss_naive(s.data, y)
    assert abs(loss.item() - ref_loss) < 1e-12
    np.testing.assert_allclose(s.grad, ref_grad, rtol=1e-12)


def test_reductions_are_consistent(rng):
    s, y = scores_and_labels(rng, n=7)
    for fn in (lambda r: F.cross_entropy(s, y, r), lambda r: F.multiclass_hinge(s, y, reduction=r),
               lambda r: F.mse(s, np.zeros(s.shape), r),
               lambda r: F.binary_cross_entropy_with_logits(s, np.ones(s.shape) / 2, r)):
        per = fn("none").data
        assert per.shape in ((7,), (7, 4))
        np.testing.assert_allclose(fn("sum").item(), per.sum(), rtol=1e-12)
        np.testing.assert_allclose(fn("mean").item(), per.mean(), rtol=1e-12)


def test_hinge_and_cross_entropy_at_known_values():
    s = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])  # the lecture's cat/car/frog example
    y = np.array([0, 1, 2])
    np.testing.assert_allclose(F.multiclass_hinge(s, y, reduction="none").data, [2.9, 0.0, 12.9], atol=1e-12)
    uniform = F.cross_entropy(np.zeros((4, 10)), np.arange(4))
    np.testing.assert_allclose(uniform.item(), np.log(10))  # the "loss at initialisation ~ log C" sanity check


def test_bce_matches_the_definition(rng):
    x, t = rng.standard_normal(20), rng.random(20)
    sig = 1 / (1 + np.exp(-x))
    expected = -(t * np.log(sig) + (1 - t) * np.log(1 - sig)).mean()
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(x, t).item(), expected, rtol=1e-12)


# ---- stability and dtypes ----------------------------------------------------------------------------------------

LOSSES = {
    "cross_entropy": lambda s, y: F.cross_entropy(s, y),
    "cross_entropy_smoothed": lambda s, y: F.cross_entropy(s, y, label_smoothing=0.1),
    "cross_entropy_none": lambda s, y: F.cross_entropy(s, y, "none"),
    "multiclass_hinge": lambda s, y: F.multiclass_hinge(s, y),
    "mse": lambda s, y: F.mse(s, np.zeros(s.shape)),
    "bce_with_logits": lambda s, y: F.binary_cross_entropy_with_logits(s, (s.data > 0) * 0.25),
    "bce_with_logits_sum": lambda s, y: F.binary_cross_entropy_with_logits(s, np.zeros(s.shape), "sum"),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_finite_at_huge_scores_without_warnings(name, dtype):
    rng = np.random.default_rng(0)
    s = cr.Tensor((1e4 * rng.choice([-1, 1], size=(6, 5))).astype(dtype), requires_grad=True)
    s.data[0] = [1e4, -1e4, 1e4, -1e4, 1e4]
    y = np.array([1, 0, 4, 2, 3, 1])
    with np.errstate(all="raise"):
        loss = LOSSES[name](s, y)
        loss.backward(np.ones(loss.shape, dtype=dtype))
    assert np.all(np.isfinite(loss.data)) and np.all(np.isfinite(s.grad))
    assert loss.dtype == dtype and s.grad.dtype == dtype


def test_cross_entropy_at_huge_scores_has_the_right_value():
    s = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=np.float32)
    with np.errstate(all="raise"):
        losses = F.cross_entropy(s, np.array([1, 2]), "none").data
    np.testing.assert_allclose(losses, [2e4, np.log(2)], rtol=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_float32_loss_and_grad(name, rng):
    s = cr.Tensor(rng.standard_normal((6, 5)).astype(np.float32), requires_grad=True)
    loss = LOSSES[name](s, rng.integers(0, 5, size=6))
    assert loss.dtype == np.float32
    loss.backward(np.ones(loss.shape, dtype=np.float32))
    assert s.grad.dtype == np.float32


def test_mse_target_array_follows_input_dtype_but_tensor_must_match(rng):
    pred = cr.Tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    assert F.mse(pred, rng.standard_normal((3, 2))).dtype == np.float32
    with pytest.raises(TypeError, match="target dtype float64 does not match input dtype float32"):
        F.mse(pred, cr.Tensor(rng.standard_normal((3, 2))))
    with pytest.raises(ValueError, match=r"input has shape \(3, 2\) but target has shape \(6,\)"):
        F.mse(pred, np.zeros(6))


# ---- label validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["cross_entropy", "multiclass_hinge"])
def test_label_errors_name_index_and_value(loss):
    fn = getattr(F, loss)
    s = np.zeros((5, 10), dtype=np.float32)
    ignore = " or ignore_index=-100" if loss == "cross_entropy" else ""
    with pytest.raises(ValueError, match=rf"^{loss}: expected labels in \[0, 10\){ignore}, got 12 at index 3$"):
        fn(s, np.array([0, 1, 2, 12, 4]))
    with pytest.raises(ValueError, match=rf"expected labels in \[0, 10\){ignore}, got -1 at index 0"):
        fn(s, np.array([-1, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"expected integer labels, got 2.5 at index 2"):
        fn(s, np.array([0.0, 1.0, 2.5, 3.0, 4.0]))
    with pytest.raises(ValueError, match=r"expected integer labels, got nan at index 4"):
        fn(s, np.array([0.0, 1.0, 2.0, 3.0, np.nan]))
    with pytest.raises(ValueError, match=r"scores have 5 rows but y has 4 labels"):
        fn(s, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"expected labels of shape \(5,\), got shape \(5, 1\)"):
        fn(s, np.zeros((5, 1), dtype=int))
    with pytest.raises(ValueError, match=r"expected integer labels, got dtype bool"):
        fn(s, np.zeros(5, dtype=bool))
    with pytest.raises(ValueError, match=r"expected reduction in"):
        fn(s, np.zeros(5, dtype=int), reduction="avg")
    with pytest.raises(ValueError, match=r"(expected|for a batch pass) scores of shape \(N, C\)"):
        fn(np.zeros(5), np.zeros(5, dtype=int))
    # Integral floats, lists and Tensors of labels are accepted.
    ok = fn(s, [0.0, 1.0, 2.0, 3.0, 9.0])
    assert np.isfinite(ok.item())
    assert fn(s, cr.Tensor(np.array([0, 1, 2, 3, 9]))).item() == ok.item()


def test_label_smoothing_range():
    with pytest.raises(ValueError, match=r"label_smoothing in \[0, 1\], got 1.5"):
        F.cross_entropy(np.zeros((2, 3)), [0, 1], label_smoothing=1.5)


def test_loss_modules_match_functions(rng):
    s, y = scores_and_labels(rng)
    t = rng.random(s.shape)
    pairs = [
        (nn.CrossEntropyLoss(label_smoothing=0.1)(s, y), F.cross_entropy(s, y, label_smoothing=0.1)),
        (nn.MultiClassHingeLoss(margin=2.0, reduction="sum")(s, y), F.multiclass_hinge(s, y, 2.0, "sum")),
        (nn.MSELoss()(s, t), F.mse(s, t)),
        (nn.BCEWithLogitsLoss(reduction="none")(s, t), F.binary_cross_entropy_with_logits(s, t, "none")),
    ]
    for got, expected in pairs:
        np.testing.assert_array_equal(got.data, expected.data)
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean', label_smoothing=0.0)"
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
