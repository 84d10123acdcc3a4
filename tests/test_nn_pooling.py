"""max_pool2d / avg_pool2d: against PyTorch float64 on a grid of edge geometries (both memory layouts), against the
naive loops, gradient routing at ties, NaN and -inf, the errors, and the modules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.nn.reference_spatial import avg_pool_naive, max_pool_naive

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# (input H, W), kernel, stride, padding, dilation, ceil_mode: strides that do not divide, padding = half the
# kernel, windows starting in ceil_mode's extra region, dilation with stride, odd sizes, 1x1, asymmetric pairs
GEOMETRIES = [
    ((8, 8), 2, None, 0, 1, False),
    ((7, 9), 2, None, 0, 1, True),
    ((7, 7), 3, 2, 1, 1, False),
    ((7, 7), 3, 2, 1, 1, True),
    ((6, 5), 3, 2, 1, 1, True),
    ((5, 5), 3, 3, 1, 1, True),
    ((5, 6), (3, 2), (2, 3), (1, 1), (2, 1), True),
    ((9, 8), 3, 2, 1, 2, False),
    ((4, 4), 4, 1, 2, 1, False),
    ((1, 1), 1, 1, 0, 1, False),
    ((3, 5), 1, 2, 0, 1, True),
    ((2, 3), 2, 1, 1, 1, True),
]
IDS = [f"{hw}-k{k}-s{s}-p{p}-d{d}-{'ceil' if c else 'floor'}" for hw, k, s, p, d, c in GEOMETRIES]


def pair2(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def channels_last(a: np.ndarray) -> np.ndarray:
    """The same (N, C, H, W) values in an NHWC buffer, as PyTorch's channels_last."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def distinct(rng, shape):
    """Values without ties (so that gradients are unambiguous and numerically checkable)."""
    return rng.permutation(np.prod(shape)).reshape(shape) / 7.0 - 3.0


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("hw,k,s,p,d,ceil", GEOMETRIES, ids=IDS)
def test_max_pool2d_matches_torch(hw, k, s, p, d, ceil, layout):
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, (2, 3, *hw)).astype(np.float64)  # many ties: the routing rule is tested too
    if layout == "channels_last":
        x = channels_last(x)
    xa, xt = cr.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, idx = F.max_pool2d(xa, k, s, p, d, ceil, return_indices=True)
    ref, ref_idx = TF.max_pool2d(xt, k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(out.data, ref.detach().numpy())
    np.testing.assert_array_equal(idx, ref_idx.numpy())
    up = rng.standard_normal(out.shape)
    plain = F.max_pool2d(xa, k, s, p, d, ceil)
    np.testing.assert_array_equal(plain.data, out.data)
    plain.backward(up)
    ref.backward(torch.tensor(up))
    np.testing.assert_allclose(xa.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-14)
    if layout == "channels_last":  # kept channels-last, never reordered
        assert plain.data.strides[1] == plain.data.itemsize
        assert xa.grad.strides[1] == xa.grad.itemsize


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("hw,k,s,p,d,ceil", [g for g in GEOMETRIES if g[4] == 1],
                         ids=[i for i, g in zip(IDS, GEOMETRIES) if g[4] == 1])
def test_avg_pool2d_matches_torch(hw, k, s, p, d, ceil, layout, count_include_pad):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, *hw))
    if layout == "channels_last":
        x = channels_last(x)
    xa, xt = cr.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = F.avg_pool2d(xa, k, s, p, ceil, count_include_pad)
    ref = TF.avg_pool2d(xt, k, s, p, ceil, count_include_pad)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    up = rng.standard_normal(out.shape)
    out.backward(up)
    ref.backward(torch.tensor(up))
    np.testing.assert_allclose(xa.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-14)
    if layout == "channels_last":
        assert out.data.strides[1] == out.data.itemsize


def test_avg_pool2d_divisor_override_matches_torch():
    x = np.random.default_rng(3).standard_normal((2, 2, 7, 6))
    for kw in (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, divisor_override=4),
               dict(kernel_size=2, divisor_override=-3)):
        xa, xt = cr.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref = F.avg_pool2d(xa, **kw), TF.avg_pool2d(xt, **kw)
        np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12)
        out.sum().backward(), ref.sum().backward()
        np.testing.assert_allclose(xa.grad, xt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("hw,k,s,p,d,ceil", GEOMETRIES, ids=IDS)
def test_fast_pooling_matches_the_naive_loops(hw, k, s, p, d, ceil):
    rng = np.random.default_rng(4)
    x = rng.integers(-2, 3, (2, 2, *hw)).astype(np.float64)
    xa = cr.Tensor(x, requires_grad=True)
    out, idx = F.max_pool2d(xa, k, s, p, d, ceil, return_indices=True)
    up = rng.standard_normal(out.shape)
    out.backward(up)
    geom = dict(kernel=pair2(k), stride=pair2(k if s is None else s), padding=pair2(p))
    ref, ref_idx, ref_dx = max_pool_naive(x, up, dilation=pair2(d), ceil_mode=ceil, **geom)
    np.testing.assert_array_equal(out.data, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(xa.grad, ref_dx, rtol=1e-13)
    if d == 1:
        for cip in (True, False):
            xa = cr.Tensor(x, requires_grad=True)
            out = F.avg_pool2d(xa, k, s, p, ceil, cip)
            out.backward(up)
            ref, ref_dx = avg_pool_naive(x, up, ceil_mode=ceil, count_include_pad=cip, **geom)
            np.testing.assert_allclose(out.data, ref, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(xa.grad, ref_dx, rtol=1e-13, atol=1e-15)


def test_max_pool_routes_a_tie_to_the_first_maximum_in_row_major_order():
    x = np.array([[[[1.0, 1.0], [1.0, 1.0]]]])
    xa = cr.Tensor(x, requires_grad=True)
    F.max_pool2d(xa, 2).sum().backward()
    np.testing.assert_array_equal(xa.grad[0, 0], [[1.0, 0.0], [0.0, 0.0]])
    # overlapping windows (3x3, stride 1) each choose their own first maximum
    x = np.zeros((1, 1, 4, 4))
    xa = cr.Tensor(x, requires_grad=True)
    _, idx = F.max_pool2d(xa, 3, 1, return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[0, 1], [4, 5]])


def test_max_pool_nan_and_minus_infinity_windows_route_as_pytorch():
    nan, inf = np.nan, np.inf
    x = np.array([[[[nan, 1.0, 0.0], [1.0, nan, 0.0], [-inf, -inf, 2.0]]]])
    for kw in (dict(kernel_size=2, stride=1), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)):
        for data in (x, np.full((1, 1, 3, 3), -inf)):
            xa, xt = cr.Tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
            out, idx = F.max_pool2d(xa, return_indices=True, **kw)
            ref, ref_idx = TF.max_pool2d(xt, return_indices=True, **kw)
            np.testing.assert_array_equal(out.data, ref.detach().numpy())
            np.testing.assert_array_equal(idx, ref_idx.numpy())
            F.max_pool2d(xa, **kw).sum().backward(), ref.sum().backward()
            np.testing.assert_array_equal(xa.grad, xt.grad.numpy())


@pytest.mark.parametrize("op", ["max", "avg"])
def test_pooling_gradcheck_and_unbatched_input(op):
    rng = np.random.default_rng(5)
    pool = (lambda x: F.max_pool2d(x, 3, 2, 1, 1, True)) if op == "max" else \
        (lambda x: F.avg_pool2d(x, 3, 2, 1, True, False))
    assert cr.gradcheck(pool, cr.Tensor(distinct(rng, (2, 2, 5, 6)), requires_grad=True))
    x3 = distinct(rng, (3, 5, 5))  # (C, H, W), as PyTorch
    ours = pool(cr.Tensor(x3)).data
    theirs = (TF.max_pool2d(torch.tensor(x3), 3, 2, 1, 1, True) if op == "max"
              else TF.avg_pool2d(torch.tensor(x3), 3, 2, 1, True, False)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)


def test_pooling_keeps_float32():
    x = cr.Tensor(np.random.default_rng(6).standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    for y in (F.max_pool2d(x, 2), F.avg_pool2d(x, 3, 1, 1)):
        y.sum().backward()
        assert y.dtype == x.grad.dtype == np.float32


@pytest.mark.parametrize("call,error,match", [
    (lambda x: F.max_pool2d(x, 3, padding=2), ValueError, r"padding 2 is more than half the kernel 3.*<= kernel_size"),
    (lambda x: F.avg_pool2d(x, (2, 4), padding=(1, 3)), ValueError, "more than half the kernel"),
    (lambda x: F.max_pool2d(x, 2, stride=0), ValueError, r"stride must be >= 1 in both dimensions, got 0; pass e\.g\. "
                                                         r"stride=1"),
    (lambda x: F.avg_pool2d(x, 2, stride=(1, -1)), ValueError, r"stride must be >= 1 in both dimensions, got "
                                                               r"\(1, -1\)"),
    (lambda x: F.max_pool2d(x, 0), ValueError, "kernel_size must be >= 1"),
    (lambda x: F.max_pool2d(x, 2, dilation=0), ValueError, "dilation must be >= 1"),
    (lambda x: F.max_pool2d(x, 2, padding=-1), ValueError, "padding must be >= 0"),
    (lambda x: F.max_pool2d(x, 9), ValueError, r"output H would be smaller than 1: input H 5 \+ padding 0 is smaller "
                                               r"than the kernel's extent 9"),
    (lambda x: F.max_pool2d(x, 3, dilation=3), ValueError, "kernel's extent 7"),
    (lambda x: F.max_pool2d(x[0, 0], 2), ValueError, r"shape \(N, C, H, W\) or \(C, H, W\), got shape \(5, 6\)"),
    (lambda x: F.avg_pool2d(x, 2.5), TypeError, r"kernel_size must be an int or a pair of ints \(h, w\), got 2.5"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor_override as a nonzero integer"),
    (lambda x: F.max_pool2d(x.astype(np.int64), 2), TypeError, "floating-point input"),
])
def test_pooling_errors_name_the_rule_the_value_and_the_fix(call, error, match):
    with pytest.raises(error, match=match):
        call(np.zeros((1, 2, 5, 6)))


def test_pool_modules_match_torch_and_check_arguments_at_construction():
    x = np.random.default_rng(7).standard_normal((2, 3, 9, 7))
    pairs = [(nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
             (nn.MaxPool2d(2, dilation=2), torch.nn.MaxPool2d(2, dilation=2)),
             (nn.AvgPool2d(3, 2, 1, True, False), torch.nn.AvgPool2d(3, 2, 1, True, False)),
             (nn.AvgPool2d((2, 3), divisor_override=5), torch.nn.AvgPool2d((2, 3), divisor_override=5))]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).numpy(), rtol=1e-13)
        assert ours.state_dict() == {}
    values, idx = nn.MaxPool2d(2, return_indices=True)(x)
    np.testing.assert_array_equal(idx, torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))[1].numpy())
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    with pytest.raises(ValueError, match="MaxPool2d: padding 2 is more than half the kernel 2"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="AvgPool2d: stride must be >= 1"):
        nn.AvgPool2d(2, stride=0)


def test_every_geometry_combination_of_small_pools_matches_torch():
    """A dense sweep of tiny cases (kernels 1-3, strides 1-3, all legal paddings, dilation 1-2, both modes)."""
    rng = np.random.default_rng(8)
    for h, k, s, d, ceil in itertools.product((3, 4, 5), (1, 2, 3), (1, 2, 3), (1, 2), (False, True)):
        for p in range(k // 2 + 1):
            if h + 2 * p < d * (k - 1) + 1:
                continue
            x = rng.integers(-2, 3, (1, 2, h, h + 1)).astype(np.float64)
            ours, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
            ref, ref_idx = TF.max_pool2d(torch.tensor(x), k, s, p, d, ceil, return_indices=True)
            np.testing.assert_array_equal(ours.data, ref.numpy())
            np.testing.assert_array_equal(idx, ref_idx.numpy())
            ours = F.avg_pool2d(x, k, s, p, ceil, False)
            np.testing.assert_allclose(ours.data, TF.avg_pool2d(torch.tensor(x), k, s, p, ceil, False).numpy(),
                                       rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_large_tiling_windows_reduce_as_blocks_with_the_same_routing(layout):
    """Windows of more than 16 taps that tile the input (global pooling, 5x4 kernels) take the block path: the same
    values, indices (ties, NaN, -inf) and gradients as PyTorch."""
    rng = np.random.default_rng(9)
    x = rng.integers(-2, 3, (2, 3, 11, 13)).astype(np.float64)
    x[0, 0, 0, 1] = x[0, 0, 3, 2] = np.nan
    x[1, 2, :5, :4] = -np.inf
    xs = channels_last(x) if layout == "channels_last" else x
    for ours_f, theirs_f in ((lambda a: F.max_pool2d(a, (5, 4), return_indices=True),
                              lambda t: TF.max_pool2d(t, (5, 4), return_indices=True)),
                             (lambda a: F.adaptive_max_pool2d(a, 1, True),
                              lambda t: TF.adaptive_max_pool2d(t, 1, True))):
        xa, xt = cr.Tensor(xs, requires_grad=True), torch.tensor(x, requires_grad=True)
        (out, idx), (ref, ref_idx) = ours_f(xa), theirs_f(xt)
        np.testing.assert_array_equal(out.data, ref.detach().numpy())
        np.testing.assert_array_equal(idx, ref_idx.numpy())
    for ours_f, theirs_f in ((lambda a: F.max_pool2d(a, (5, 4)), lambda t: TF.max_pool2d(t, (5, 4))),
                             (lambda a: F.avg_pool2d(a, (5, 6)), lambda t: TF.avg_pool2d(t, (5, 6))),
                             (lambda a: F.adaptive_avg_pool2d(a, 1), lambda t: TF.adaptive_avg_pool2d(t, 1))):
        xa, xt = cr.Tensor(xs, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref = ours_f(xa), theirs_f(xt)
        np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-13, atol=1e-15)
        up = rng.standard_normal(out.shape)
        out.backward(up), ref.backward(torch.tensor(up))
        np.testing.assert_allclose(xa.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
