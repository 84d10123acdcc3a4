"""adaptive_avg_pool2d / adaptive_max_pool2d, pad and interpolate: against PyTorch float64 (values, gradients,
indices), gradchecks, layouts, errors, and their modules."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 7, 9))
X_CL = np.ascontiguousarray(X.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def same(ours_f, theirs_f, x, rtol=1e-12):
    """Values and input gradients of ours_f and theirs_f agree (the first output when they return pairs)."""
    a, t = cr.Tensor(x, requires_grad=True), torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    ours, theirs = ours_f(a), theirs_f(t)
    if isinstance(ours, tuple):
        np.testing.assert_array_equal(ours[1], theirs[1].numpy())
        ours, theirs = ours[0], theirs[0]
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=1e-13)
    up = RNG.standard_normal(ours.shape)
    ours.backward(up), theirs.backward(torch.tensor(up))
    np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=rtol, atol=1e-13)
    return ours


SIZES = [1, (3, 4), (7, 9), (5, 2), (2, None), (9, 10), (7, 3)]


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("x", [X, X_CL], ids=["nchw", "channels_last"])
def test_adaptive_pooling_matches_torch(size, x):
    same(lambda a: F.adaptive_avg_pool2d(a, size), lambda t: TF.adaptive_avg_pool2d(t, size), x)
    same(lambda a: F.adaptive_max_pool2d(a, size, True), lambda t: TF.adaptive_max_pool2d(t, size, True), x)
    same(lambda a: F.adaptive_max_pool2d(a, size), lambda t: TF.adaptive_max_pool2d(t, size), x)


def test_adaptive_max_pool_routes_ties_and_nan_as_pytorch():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 3] = np.nan
    x[0, 0, 4, 4] = np.nan
    for size in ((2, 2), (3, 3), (2, 4)):
        same(lambda a: F.adaptive_max_pool2d(a, size, True), lambda t: TF.adaptive_max_pool2d(t, size, True),
             x.copy())


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pads", [(1, 1), (1, 2, 0, 3), (2, 2, 2, 2), (0, 0, 1, 0), (3, 0, 0, 4)], ids=str)
def test_pad_matches_torch(pads, mode):
    x = X[0] if len(pads) == 2 else X
    same(lambda a: F.pad(a, pads, mode), lambda t: TF.pad(t, pads, mode), x)
    if len(pads) == 4:  # a channels-last input stays channels-last
        out = same(lambda a: F.pad(a, pads, mode), lambda t: TF.pad(t, pads, mode), X_CL)
        assert out.data.strides[1] == out.data.itemsize


def test_constant_pad_value_and_negative_padding_crops():
    same(lambda a: F.pad(a, (-1, 2, 1, -2), value=3.0), lambda t: TF.pad(t, (-1, 2, 1, -2), value=3.0), X)
    same(lambda a: F.pad(a, (1, 1, 0, 0, 2, 1)), lambda t: TF.pad(t, (1, 1, 0, 0, 2, 1)), X)  # three axes


INTERP = [dict(size=(14, 18)), dict(size=(5, 4)), dict(size=(3, 13)), dict(size=1), dict(scale_factor=2),
          dict(scale_factor=1.7), dict(scale_factor=(0.5, 1.3)), dict(scale_factor=3),
          dict(scale_factor=1.7, recompute_scale_factor=True)]


@pytest.mark.parametrize("mode,align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True)])
@pytest.mark.parametrize("kw", INTERP, ids=str)
def test_interpolate_matches_torch(kw, mode, align_corners):
    same(lambda a: F.interpolate(a, mode=mode, align_corners=align_corners, **kw),
         lambda t: TF.interpolate(t, mode=mode, align_corners=align_corners, **kw), X, rtol=1e-11)


def test_gradchecks_and_float32():
    x = cr.Tensor(RNG.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) / 7.0, requires_grad=True)  # no ties
    for fn in (lambda a: F.adaptive_avg_pool2d(a, (3, 4)), lambda a: F.adaptive_max_pool2d(a, (3, 4)),
               lambda a: F.pad(a, (1, 2, 2, 1), "reflect"), lambda a: F.pad(a, (2, 0, 1, 3), "circular"),
               lambda a: F.interpolate(a, scale_factor=1.5, mode="bilinear")):
        assert cr.gradcheck(fn, x)
        y = fn(cr.Tensor(x.data.astype(np.float32), requires_grad=True))
        assert y.dtype == np.float32


@pytest.mark.parametrize("call,error,match", [
    (lambda: F.pad(X, (1, 2, 3)), ValueError, r"expected pad as a tuple of ints \(left, right\[, top, bottom"),
    (lambda: F.pad(X, (9, 0, 0, 0), "reflect"), ValueError, r"reflect padding \(9, 0\) must be smaller than the "
                                                            r"input's size 9 along W; pad less"),
    (lambda: F.pad(X, (1, 1), "replicate"), ValueError, r"takes 2 pad values for a \(C, W\) or \(N, C, W\) input"),
    (lambda: F.pad(X, (1, 1, 1, 1), "wrap"), ValueError, r"expected mode in \('constant', 'reflect'"),
    (lambda: F.pad(X, (0, 0, -4, -3)), ValueError, r"padding \(-4, -3\) leaves nothing of the input's size 7"),
    (lambda: F.adaptive_avg_pool2d(X, (0, 2)), ValueError, r"expected output_size of integers >= 1, got \(0, 2\)"),
    (lambda: F.adaptive_max_pool2d(X[0, 0], 2), ValueError, r"shape \(N, C, H, W\) or \(C, H, W\), got shape \(7, 9\)"),
    (lambda: F.interpolate(X, size=4, scale_factor=2), ValueError, "exactly one of size and scale_factor"),
    (lambda: F.interpolate(X, scale_factor=0.1), ValueError, r"makes an output of \(0, 0\) from \(7, 9\)"),
    (lambda: F.interpolate(X, size=4, mode="bicubic"), ValueError, "expected mode 'nearest' or 'bilinear'"),
    (lambda: F.interpolate(X, size=4, align_corners=True), ValueError, "align_corners applies to mode='bilinear'"),
])
def test_resize_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_modules_match_torch():
    x = torch.tensor(X)
    pairs = [(nn.AdaptiveAvgPool2d((3, 4)), torch.nn.AdaptiveAvgPool2d((3, 4))),
             (nn.AdaptiveMaxPool2d(2), torch.nn.AdaptiveMaxPool2d(2)),
             (nn.Upsample(scale_factor=2, mode="bilinear"), torch.nn.Upsample(scale_factor=2, mode="bilinear")),
             (nn.Upsample(size=(4, 5)), torch.nn.Upsample(size=(4, 5))),
             (nn.ZeroPad2d((1, 2, 0, 1)), torch.nn.ZeroPad2d((1, 2, 0, 1))),
             (nn.ConstantPad2d(1, 2.5), torch.nn.ConstantPad2d(1, 2.5)),
             (nn.ReflectionPad2d(2), torch.nn.ReflectionPad2d(2)),
             (nn.ReplicationPad2d((3, 0, 1, 2)), torch.nn.ReplicationPad2d((3, 0, 1, 2))),
             (nn.CircularPad2d(1), torch.nn.CircularPad2d(1))]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(X).data, theirs(x).numpy(), rtol=1e-12, atol=1e-14)
        assert ours.state_dict() == {}
    assert repr(nn.ReflectionPad2d(2)) == "ReflectionPad2d((2, 2, 2, 2))"
    with pytest.raises(ValueError, match=r"ZeroPad2d: expected padding as an int or \(left, right, top, bottom\)"):
        nn.ZeroPad2d((1, 2))
    with pytest.raises(ValueError, match="Upsample: pass exactly one of size and scale_factor"):
        nn.Upsample()
