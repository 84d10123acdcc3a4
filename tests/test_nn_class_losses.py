"""cross_entropy / nll_loss with PyTorch's weight=, ignore_index=, label_smoothing= on (N, C) and (N, C, H, W), and
binary_cross_entropy_with_logits with pos_weight= / weight=: against PyTorch float64, gradchecks, modules, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(0)
W4 = RNG.random(4) + 0.2


def labels(shape, ignore_index=-100, every=3):
    y = RNG.integers(0, 4, shape)
    y.flat[::every] = ignore_index  # some positions ignored
    return y


def channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


CASES = list(itertools.product([(6, 4), (3, 4, 5, 2), "channels_last"], ["mean", "sum", "none"], [0.0, 0.3],
                               [None, "weight"], [-100, 1]))


@pytest.mark.parametrize("shape,reduction,eps,weight,ignore_index", CASES)
def test_cross_entropy_and_nll_loss_match_torch(shape, reduction, eps, weight, ignore_index):
    scores = RNG.standard_normal((3, 4, 5, 2) if shape == "channels_last" else shape) * 2
    if shape == "channels_last":
        scores = channels_last(scores)
    y = labels(scores.shape[:1] + scores.shape[2:], ignore_index)
    w = None if weight is None else W4
    wt = None if w is None else torch.tensor(w)
    for ours_f, theirs_f in (
        (lambda s: F.cross_entropy(s, y, reduction, eps, weight=w, ignore_index=ignore_index),
         lambda s: TF.cross_entropy(s, torch.tensor(y), wt, ignore_index=ignore_index, reduction=reduction,
                                    label_smoothing=eps)),
        (lambda s: F.nll_loss(s, y, w, ignore_index, reduction),
         lambda s: TF.nll_loss(s, torch.tensor(y), wt, ignore_index=ignore_index, reduction=reduction)),
    ):
        # (torch's nll_loss backward refuses a channels_last input, so torch gets the same values contiguous)
        a, t = cr.Tensor(scores, requires_grad=True), torch.tensor(np.ascontiguousarray(scores), requires_grad=True)
        ours, theirs = ours_f(a), theirs_f(t)
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
        up = RNG.standard_normal(ours.shape)
        ours.backward(up), theirs.backward(torch.tensor(up))
        np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-11, atol=1e-14)


def test_cross_entropy_spatial_gradcheck_with_every_option():
    s = cr.Tensor(RNG.standard_normal((2, 3, 2, 3)), requires_grad=True)
    y = np.array([[[0, 2, -100], [1, 1, 0]], [[2, -100, 1], [0, 2, 2]]])
    w = np.array([0.5, 2.0, 1.5])
    for red in ("mean", "sum", "none"):
        assert cr.gradcheck(lambda s: F.cross_entropy(s, y, red, 0.2, weight=w), s)
        assert cr.gradcheck(lambda s: F.nll_loss(F.log_softmax(s, 1), y, w, reduction=red), s)


def test_unbatched_scores_and_every_position_ignored():
    s = RNG.standard_normal(5)
    for red in ("mean", "sum", "none"):
        ours = F.cross_entropy(s, 3, red, 0.1)
        theirs = TF.cross_entropy(torch.tensor(s), torch.tensor(3), reduction=red, label_smoothing=0.1)
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)
    y = np.full(4, -100)
    s = RNG.standard_normal((4, 3))
    for red in ("mean", "sum"):  # nothing counted: "mean" is 0/0 = nan, as PyTorch; "sum" is 0
        ours = F.cross_entropy(s, y, red).item()
        theirs = TF.cross_entropy(torch.tensor(s), torch.tensor(y), reduction=red).item()
        assert (np.isnan(ours) and np.isnan(theirs)) or ours == theirs


def test_float32_stays_float32_with_weights():
    s = cr.Tensor(RNG.standard_normal((4, 3, 2, 2)).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(s, labels((4, 2, 2)) % 3, weight=[1.0, 2.0, 3.0], label_smoothing=0.1)
    loss.backward()
    assert loss.dtype == s.grad.dtype == np.float32


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight,pos_weight", [(None, None), (None, "per class"), ("per row", None),
                                               ("per row", "per element")])
def test_bce_with_logits_pos_weight_and_weight_match_torch(reduction, weight, pos_weight):
    x, t = RNG.standard_normal((5, 3)) * 4, RNG.random((5, 3))
    w = None if weight is None else RNG.random((5, 1))
    pw = None if pos_weight is None else RNG.random(3 if pos_weight == "per class" else (5, 3)) * 3
    xa, ta = cr.Tensor(x, requires_grad=True), cr.Tensor(t, requires_grad=True)
    xt, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
    ours = F.binary_cross_entropy_with_logits(xa, ta, reduction, weight=w, pos_weight=pw)
    theirs = TF.binary_cross_entropy_with_logits(xt, tt, None if w is None else torch.tensor(w), reduction=reduction,
                                                 pos_weight=None if pw is None else torch.tensor(pw))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    up = RNG.standard_normal(ours.shape)
    ours.backward(up), theirs.backward(torch.tensor(up))
    np.testing.assert_allclose(xa.grad, xt.grad.numpy(), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(ta.grad, tt.grad.numpy(), rtol=1e-11, atol=1e-14)
    assert cr.gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction, weight=w, pos_weight=pw),
                        cr.Tensor(x, requires_grad=True), cr.Tensor(t, requires_grad=True))


def test_bce_with_logits_pos_weight_is_stable_at_large_logits():
    x = np.array([[-800.0, 800.0, 0.0]])
    out = F.binary_cross_entropy_with_logits(x, np.array([[1.0, 0.0, 1.0]]), "none", pos_weight=np.array([2.0]))
    theirs = TF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64),
                                                 reduction="none", pos_weight=torch.tensor([2.0], dtype=torch.float64))
    np.testing.assert_allclose(out.data, theirs.numpy(), rtol=1e-12)


def test_loss_modules_take_pytorch_keywords_and_state_dict_keys():
    s, y = RNG.standard_normal((6, 4)), labels(6)
    w = np.array([1.0, 2.0, 0.5, 1.0])
    ce, ce_t = nn.CrossEntropyLoss(label_smoothing=0.1, weight=w), torch.nn.CrossEntropyLoss(torch.tensor(w),
                                                                                            label_smoothing=0.1)
    assert list(ce.state_dict()) == list(ce_t.state_dict()) == ["weight"]
    np.testing.assert_allclose(ce(s, y).item(), ce_t(torch.tensor(s), torch.tensor(y)).item(), rtol=1e-12)
    nll, nll_t = nn.NLLLoss(w, ignore_index=2), torch.nn.NLLLoss(torch.tensor(w), ignore_index=2)
    y2 = labels(6, ignore_index=2)
    np.testing.assert_allclose(nll(s, y2).item(), nll_t(torch.tensor(s), torch.tensor(y2)).item(), rtol=1e-12)
    x, t, pw = RNG.standard_normal((5, 3)), RNG.random((5, 3)), np.array([1.0, 3.0, 0.5])
    bce, bce_t = nn.BCEWithLogitsLoss(pos_weight=pw), torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw))
    assert list(bce.state_dict()) == list(bce_t.state_dict()) == ["pos_weight"]
    np.testing.assert_allclose(bce(x, t).item(), bce_t(torch.tensor(x), torch.tensor(t)).item(), rtol=1e-12)
    assert nn.CrossEntropyLoss().state_dict() == {}


@pytest.mark.parametrize("call,error,match", [
    (lambda: F.cross_entropy(np.zeros((2, 3, 4, 4)), np.zeros((2, 4), int)), ValueError,
     r"expected labels of shape \(2, 4, 4\), got shape \(2, 4\) \(scores \(2, 3, 4, 4\): one label per sample and "
     r"position\)"),
    (lambda: F.cross_entropy(np.zeros((2, 3, 2, 2)), np.array([[[0, 1], [3, 0]], [[0, 0], [0, 0]]])), ValueError,
     r"expected labels in \[0, 3\) or ignore_index=-100, got 3 at index \(0, 1, 0\)"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), [0, 1], weight=[1.0, 2.0]), ValueError,
     r"expected weight of shape \(3,\), one per class, got \(2,\)"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), [0, 1], weight=cr.Tensor(np.ones(3), requires_grad=True)),
     ValueError, r"weight is a constant .* pass weight.detach\(\)"),
    (lambda: F.nll_loss(np.zeros(3), [0, 1]), ValueError, r"one unbatched sample and need one label"),
    (lambda: F.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)),
     ValueError, r"pos_weight of shape \(2,\) does not broadcast to the input's shape \(2, 3\)"),
    (lambda: F.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)), weight=np.ones((4, 2, 3))),
     ValueError, r"weight of shape \(4, 2, 3\) does not broadcast"),
])
def test_class_loss_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
