"""F.conv2d, F.conv_transpose2d, F.unfold, F.fold and their modules against PyTorch float64 on a grid of the shapes
where convolutions go wrong: forward values, gradients of every input, and second derivatives (Hessian-vector
products in random directions); modules' state_dict, init and torch weights; and the argument errors."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import Tensor, nn
from test_higher_ops import directions, hvp_chainrule, hvp_torch

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# conv2d: (name, x shape, weight shape, bias, keyword arguments)
CONV = [
    ("3x3 pad 1", (2, 3, 5, 5), (4, 3, 3, 3), True, dict(padding=1)),
    ("stride not dividing", (2, 2, 8, 7), (3, 2, 3, 3), True, dict(stride=3)),
    ("stride 2 pad 1 odd size", (1, 3, 7, 9), (2, 3, 3, 3), False, dict(stride=2, padding=1)),
    ("dilation with stride", (2, 2, 9, 8), (3, 2, 3, 2), True, dict(stride=(2, 3), dilation=(2, 1), padding=(1, 0))),
    ("same, even kernel (asymmetric padding)", (2, 3, 6, 5), (4, 3, 4, 2), True, dict(padding="same")),
    ("same with dilation", (1, 2, 5, 6), (2, 2, 3, 2), False, dict(padding="same", dilation=(2, 3))),
    ("valid", (2, 2, 5, 5), (3, 2, 2, 3), True, dict(padding="valid")),
    ("groups", (2, 4, 6, 6), (6, 2, 3, 3), True, dict(groups=2, padding=1, stride=2)),
    ("depthwise", (2, 3, 6, 5), (3, 1, 3, 3), True, dict(groups=3, padding=1)),
    ("depthwise multiplier 2", (1, 3, 5, 5), (6, 1, 2, 2), False, dict(groups=3, stride=2)),
    ("1x1", (2, 5, 4, 3), (3, 5, 1, 1), True, {}),
    ("1x1 stride 2", (2, 4, 5, 5), (2, 4, 1, 1), False, dict(stride=2)),
    ("kernel larger than the input, padded", (1, 2, 3, 2), (2, 2, 5, 4), True, dict(padding=(2, 2))),
    ("rectangular everything", (2, 2, 7, 4), (2, 2, 3, 1), True, dict(stride=(1, 2), padding=(0, 1), dilation=(2, 1))),
]

# conv_transpose2d: (name, x shape, weight shape (Cin, Cout/groups, kh, kw), bias, keyword arguments)
TRANSPOSE = [
    ("stride 2", (2, 3, 3, 4), (3, 2, 3, 3), True, dict(stride=2)),
    ("stride 2 pad 1 output_padding 1", (2, 2, 4, 3), (2, 3, 3, 3), True, dict(stride=2, padding=1, output_padding=1)),
    ("output_padding below the dilation", (1, 2, 3, 3), (2, 2, 3, 2), False, dict(output_padding=1, dilation=2)),
    ("groups", (2, 4, 3, 3), (4, 1, 2, 3), True, dict(groups=2, stride=(2, 1))),
    ("depthwise", (1, 3, 4, 4), (3, 1, 3, 3), True, dict(groups=3, padding=1)),
    ("stride 3 with rectangular output_padding", (1, 2, 2, 3), (2, 2, 2, 2), True,
     dict(stride=3, output_padding=(2, 1), dilation=(1, 2))),
    ("1x1", (2, 3, 3, 2), (3, 4, 1, 1), False, {}),
]

# unfold / fold: (name, x shape (N, C, H, W), keyword arguments)
WINDOWS = [
    ("2x2 stride 2", (2, 3, 4, 6), dict(kernel_size=2, stride=2)),
    ("3x3 pad 1", (1, 2, 5, 4), dict(kernel_size=3, padding=1)),
    ("dilation, stride not dividing", (2, 2, 7, 6), dict(kernel_size=(2, 3), dilation=(2, 1), stride=(2, 2),
                                                        padding=(1, 0))),
]


def _inputs(name, shapes):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return [rng.standard_normal(s) for s in shapes]


def _check_against_torch(ours, theirs, arrays):
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    twins = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, yt = ours(*tensors), theirs(*twins)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(3).standard_normal(y.shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    for a, b in zip(tensors, twins):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-12)


def _check_second_derivatives(name, ours, theirs, arrays):
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    v, w = directions(name, ours(*tensors).shape, [a.shape for a in arrays])
    expected = hvp_torch(theirs, [torch.tensor(a, requires_grad=True) for a in arrays], v, w)
    for a, b in zip(hvp_chainrule(ours, tensors, v, w), expected):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def _conv_fns(bias, kw):
    if bias:
        return (lambda x, w, b: F.conv2d(x, w, b, **kw)), (lambda x, w, b: TF.conv2d(x, w, b, **kw))
    return (lambda x, w: F.conv2d(x, w, **kw)), (lambda x, w: TF.conv2d(x, w, **kw))


def _transpose_fns(bias, kw):
    if bias:
        return (lambda x, w, b: F.conv_transpose2d(x, w, b, **kw)), (lambda x, w, b: TF.conv_transpose2d(x, w, b,
                                                                                                         **kw))
    return (lambda x, w: F.conv_transpose2d(x, w, **kw)), (lambda x, w: TF.conv_transpose2d(x, w, **kw))


def _conv_arrays(name, xs, ws, bias, out_channels):
    return _inputs(name, [xs, ws] + ([(out_channels,)] if bias else []))


@pytest.mark.parametrize("name,xs,ws,bias,kw", CONV, ids=[c[0] for c in CONV])
def test_conv2d_matches_torch(name, xs, ws, bias, kw):
    ours, theirs = _conv_fns(bias, kw)
    _check_against_torch(ours, theirs, _conv_arrays(name, xs, ws, bias, ws[0]))


@pytest.mark.parametrize("name,xs,ws,bias,kw", CONV, ids=[c[0] for c in CONV])
def test_conv2d_second_derivatives_match_torch(name, xs, ws, bias, kw):
    ours, theirs = _conv_fns(bias, kw)
    _check_second_derivatives(name, ours, theirs, _conv_arrays(name, xs, ws, bias, ws[0]))


@pytest.mark.parametrize("name,xs,ws,bias,kw", TRANSPOSE, ids=[c[0] for c in TRANSPOSE])
def test_conv_transpose2d_matches_torch(name, xs, ws, bias, kw):
    ours, theirs = _transpose_fns(bias, kw)
    _check_against_torch(ours, theirs, _conv_arrays(name, xs, ws, bias, ws[1] * kw.get("groups", 1)))


@pytest.mark.parametrize("name,xs,ws,bias,kw", TRANSPOSE, ids=[c[0] for c in TRANSPOSE])
def test_conv_transpose2d_second_derivatives_match_torch(name, xs, ws, bias, kw):
    ours, theirs = _transpose_fns(bias, kw)
    _check_second_derivatives(name, ours, theirs, _conv_arrays(name, xs, ws, bias, ws[1] * kw.get("groups", 1)))


@pytest.mark.parametrize("name,xs,kw", WINDOWS, ids=[c[0] for c in WINDOWS])
def test_unfold_and_fold_match_torch(name, xs, kw):
    (x,) = _inputs(name, [xs])
    _check_against_torch(lambda a: F.unfold(a, **kw) ** 2, lambda a: TF.unfold(a, **kw) ** 2, [x])
    cols = TF.unfold(torch.tensor(x), **kw).numpy()
    _check_against_torch(lambda c: F.fold(c, xs[2:], **kw) ** 2, lambda c: TF.fold(c, xs[2:], **kw) ** 2, [cols])
    _check_second_derivatives(name, lambda a: F.unfold(a, **kw) ** 3, lambda a: TF.unfold(a, **kw) ** 3, [x])
    _check_second_derivatives(name, lambda c: F.fold(c, xs[2:], **kw) ** 3,
                              lambda c: TF.fold(c, xs[2:], **kw) ** 3, [cols])


def test_conv2d_is_unfold_then_a_matrix_product():
    x, w = _inputs("im2col identity", [(2, 3, 6, 5), (4, 3, 3, 2)])
    cols = F.unfold(x, (3, 2), padding=1, stride=2)  # (N, C*kh*kw, L)
    y = (Tensor(w.reshape(4, -1)) @ cols).reshape(2, 4, 3, 3)
    np.testing.assert_allclose(y.data, F.conv2d(x, w, padding=1, stride=2).data, rtol=1e-12, atol=1e-12)


def test_unbatched_inputs_as_torch():
    x, w, b = _inputs("unbatched", [(3, 5, 5), (2, 3, 3, 3), (2,)])
    np.testing.assert_allclose(F.conv2d(x, w, b, padding=1).data,
                               TF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1).numpy())
    wt = _inputs("unbatched t", [(3, 2, 2, 2)])[0]
    np.testing.assert_allclose(F.conv_transpose2d(x, wt, stride=2).data,
                               TF.conv_transpose2d(torch.tensor(x), torch.tensor(wt), stride=2).numpy())
    assert F.unfold(x, 2).shape == (12, 16)
    assert F.fold(F.unfold(x, 2), (5, 5), 2).shape == (3, 5, 5)


def test_an_empty_batch_gives_empty_outputs_and_zero_weight_gradients():
    x = Tensor(np.zeros((0, 3, 5, 5)), requires_grad=True)
    w = Tensor(np.ones((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert y.shape == tuple(TF.conv2d(torch.zeros(0, 3, 5, 5), torch.ones(4, 3, 3, 3), padding=1).shape)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5) and not w.grad.any()
    assert F.conv_transpose2d(np.zeros((0, 3, 4, 4)), np.ones((3, 2, 3, 3)), stride=2).shape == (0, 2, 9, 9)
    assert F.unfold(np.zeros((0, 3, 4, 4)), 2).shape == (0, 12, 9)
    assert F.fold(np.zeros((0, 12, 9)), (4, 4), 2).shape == (0, 3, 4, 4)


def test_float32_stays_float32_forward_and_backward():
    x, w, b = (Tensor(a.astype(np.float32), requires_grad=True)
               for a in _inputs("f32", [(2, 3, 6, 6), (4, 3, 3, 3), (4,)]))
    y = F.conv2d(x, w, b, stride=2, padding=1)
    z = F.conv_transpose2d(y, w, None, stride=2, padding=1, output_padding=1)
    u = F.fold(F.unfold(z, 2, stride=2), (6, 6), 2, stride=2)
    assert y.dtype == z.dtype == u.dtype == np.float32
    (u * u).sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


# ---- modules --------------------------------------------------------------------------------------------------


def test_a_torch_conv2d_state_dict_loads_by_name_and_gives_the_same_output():
    theirs = torch.nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2).double()
    ours = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2, dtype=np.float64)
    assert set(ours.state_dict()) == set(theirs.state_dict()) == {"weight", "bias"}
    assert ours.weight.shape == tuple(theirs.weight.shape) == (6, 2, 3, 2)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = _inputs("module", [(2, 4, 7, 8)])[0]
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [(2, 1), "same"])
def test_conv2d_padding_modes_match_torch(mode, padding):
    theirs = torch.nn.Conv2d(4, 6, (2, 3), padding=padding, padding_mode=mode, dilation=(1, 2), groups=2).double()
    ours = nn.Conv2d(4, 6, (2, 3), padding=padding, padding_mode=mode, dilation=(1, 2), groups=2, dtype=np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = _inputs("padding modes", [(2, 4, 7, 8)])[0]
    xt, xc = torch.tensor(x, requires_grad=True), Tensor(x.copy(), requires_grad=True)
    y, yt = ours(xc), theirs(xt)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert f"padding_mode='{mode}'" in repr(ours)


def test_conv_transpose2d_module_with_output_size_matches_torch():
    theirs = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2).double()
    ours = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2, dtype=np.float64)
    assert ours.weight.shape == tuple(theirs.weight.shape) == (4, 3, 3, 3)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = _inputs("transpose module", [(2, 4, 5, 5)])[0]
    for size in (None, (9, 9), (10, 9), (10, 10)):
        expected = theirs(torch.tensor(x), output_size=size).detach().numpy()
        np.testing.assert_allclose(ours(x, size).data, expected, rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match=r"output_size \(11, 9\) is not reachable .* must lie in \[9, 10\]"):
        ours(x, (11, 9))


@pytest.mark.parametrize("cls,args,fan_in", [(nn.Conv2d, (8, 16, 3), 8 * 9), (nn.Conv2d, (8, 16, (2, 5), 1, 0, 1, 4),
                                                                              2 * 10),
                                            (nn.ConvTranspose2d, (8, 12, 3, 1, 0, 0, 2), 6 * 9)])
def test_init_is_torchs_kaiming_uniform_a_sqrt5(cls, args, fan_in):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, fan_in from weight.shape[1:] as torch computes it."""
    layer = cls(*args, seed=0)
    torch_layer = getattr(torch.nn, cls.__name__)(*args)
    fan_torch = torch.nn.init._calculate_fan_in_and_fan_out(torch_layer.weight)[0]
    assert fan_in == fan_torch
    bound = 1 / np.sqrt(fan_in)
    for p in (layer.weight.data, layer.bias.data):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
    w = layer.weight.data
    assert np.abs(w).max() > 0.9 * bound and abs(w.std() - bound / np.sqrt(3)) < 0.15 * bound  # uniform spread
    np.testing.assert_array_equal(cls(*args, seed=0).weight.data, w)  # seed reproduces


def test_conv_net_modules_train_in_a_sequential():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding="same", seed=0), nn.ReLU(),
                          nn.ConvTranspose2d(4, 2, 2, stride=2, seed=1), nn.Flatten(), nn.Linear(2 * 8 * 8, 3, seed=2))
    x = np.random.default_rng(0).standard_normal((5, 3, 4, 4)).astype(np.float32)
    loss = F.cross_entropy(model(x), np.array([0, 1, 2, 0, 1]))
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    assert "Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding='same')" in repr(model)


def test_unfold_and_fold_modules():
    x = _inputs("modules", [(2, 3, 4, 4)])[0]
    cols = nn.Unfold(2, stride=2)(x)
    assert cols.shape == (2, 12, 4)
    np.testing.assert_allclose(nn.Fold((4, 4), 2, stride=2)(cols).data, x)  # non-overlapping: fold inverts unfold


# ---- bad arguments: one error naming the rule, the value and the fix -------------------------------------------


@pytest.mark.parametrize("call,error,match", [
    (lambda x, w: F.conv2d(x[0, 0], w), ValueError, r"expected a 4-D input \(N, C, H, W\).* got a 2-D input"),
    (lambda x, w: F.conv2d(x, w, groups=4), ValueError, r"groups=4 must divide both the input channels \(6\)"),
    (lambda x, w: F.conv2d(x, w[:, :2], groups=2), ValueError, r"weight \(4, 2, 3, 3\) with groups=2 expects 4 input "
                                                               r"channels, but the input .* has 6"),
    (lambda x, w: F.conv2d(x, w, stride=0), ValueError, r"stride must be >= 1 in both dimensions, got 0; pass e.g."),
    (lambda x, w: F.conv2d(x, w, stride=(1, -2)), ValueError, r"stride must be >= 1 .* got \(1, -2\)"),
    (lambda x, w: F.conv2d(x, w, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda x, w: F.conv2d(x, w, dilation=0), ValueError, r"dilation must be >= 1"),
    (lambda x, w: F.conv2d(x, w, stride=1.5), TypeError, r"stride must be an int or a pair of ints"),
    (lambda x, w: F.conv2d(x, w, padding="full"), ValueError, r"padding must be an int, a pair, 'same' or 'valid'"),
    (lambda x, w: F.conv2d(x, w, padding="same", stride=2), ValueError, r"padding='same' needs stride 1"),
    (lambda x, w: F.conv2d(x[:, :, :2], w), ValueError, r"conv2d: output H would be 0 \(< 1\).* pad more"),
    (lambda x, w: F.conv2d(x, w.astype(np.float32)), TypeError, r"input dtype float64 and weight dtype float32"),
    (lambda x, w: F.conv2d(x, w, np.zeros(3)), ValueError, r"expected a bias of shape \(4,\)"),
    (lambda x, w: F.conv2d(x, w[0]), ValueError, r"expected a 4-D weight \(out_channels, in_channels/groups"),
    (lambda x, w: F.conv_transpose2d(x, w.transpose(1, 0, 2, 3), stride=2, output_padding=2), ValueError,
     r"output_padding \(2, 2\) must be smaller than the stride \(2, 2\) or the dilation \(1, 1\)"),
    (lambda x, w: F.conv_transpose2d(x, w), ValueError, r"the weight \(4, 6, 3, 3\) expects 4 input channels"),
    (lambda x, w: F.conv_transpose2d(x[:, :, :1, :1], w.transpose(1, 0, 2, 3), padding=2), ValueError,
     r"the output would be \(-1, -1\) \(< 1\)"),
    (lambda x, w: F.conv_transpose2d(x, w.transpose(1, 0, 2, 3)[:, :2], groups=4), ValueError,
     r"groups=4 must divide the input channels \(6\)"),
    (lambda x, w: F.unfold(x, 0), ValueError, r"unfold: kernel_size must be >= 1"),
    (lambda x, w: F.unfold(x, 9), ValueError, r"unfold: output H would be -3"),
    (lambda x, w: F.fold(F.unfold(x, 2), (5, 6), 2), ValueError, r"has 4 x 5 = 20 blocks, but the input has L = 16"),
    (lambda x, w: F.fold(np.zeros((1, 7, 4)), (3, 3), 2), ValueError, r"rows must be C \* kh \* kw, a multiple of"),
    (lambda x, w: nn.Conv2d(6, 4, 3, groups=4), ValueError, r"Conv2d: groups=4 must divide both"),
    (lambda x, w: nn.Conv2d(6, 4, 3, padding_mode="mirror"), ValueError,
     r"Conv2d: padding_mode must be one of \('zeros', 'reflect', 'replicate', 'circular'\).* got 'mirror'"),
    (lambda x, w: nn.ConvTranspose2d(6, 4, 3, padding_mode="reflect"), ValueError,
     r"ConvTranspose2d: padding_mode must be one of \('zeros',\)"),
    (lambda x, w: nn.Conv2d(6, 4, 3, stride=2, padding="same"), ValueError, r"padding='same' needs stride 1"),
])
def test_bad_arguments_name_the_rule_value_and_fix(call, error, match):
    x, w = _inputs("errors", [(2, 6, 5, 5), (4, 6, 3, 3)])
    with pytest.raises(error, match=match):
        call(x, w)
