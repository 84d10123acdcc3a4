"""BatchNorm2d / F.batch_norm on (N, C, H, W) and Dropout2d: against PyTorch float64, the naive spatial batchnorm,
memory layouts, state_dict interchange with torch.nn.BatchNorm2d."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.nn.reference_spatial import spatial_batchnorm_naive

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def channels_last(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_4d_matches_torch(training, layout):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5, 6)) * 2 + 1
    if layout == "channels_last":
        x = channels_last(x)
    g, b, rm, rv = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4), rng.random(4) + 0.5
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    xa, ga, ba = (cr.Tensor(a, requires_grad=True) for a in (x, g, b))
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, g, b))
    ours = F.batch_norm(xa, rm, rv, ga, ba, training=training, momentum=0.2, eps=1e-3)
    theirs = TF.batch_norm(xt, rm_t, rv_t, gt, bt, training=training, momentum=0.2, eps=1e-3)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rm, rm_t.numpy(), rtol=1e-12)  # unbiased over N*H*W values, as torch
    np.testing.assert_allclose(rv, rv_t.numpy(), rtol=1e-12)
    up = rng.standard_normal(x.shape)
    if layout == "channels_last":  # as the next channels-last layer would send it
        up = channels_last(up)
    ours.backward(up), theirs.backward(torch.tensor(up))
    for a, t in ((xa, xt), (ga, gt), (ba, bt)):
        np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-9, atol=1e-11)
    if layout == "channels_last":
        assert ours.data.strides[1] == ours.data.itemsize and xa.grad.strides[1] == xa.grad.itemsize


def test_batch_norm_4d_matches_the_naive_spatial_batchnorm():
    rng = np.random.default_rng(1)
    x, g, b, up = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal(3), rng.standard_normal(3), \
        rng.standard_normal((2, 3, 4, 5))
    xa, ga, ba = (cr.Tensor(a, requires_grad=True) for a in (x, g, b))
    out = F.batch_norm(xa, None, None, ga, ba, training=True)
    out.backward(up)
    ref, dx, dg, db = spatial_batchnorm_naive(x, g, b, up)
    for ours, theirs in ((out.data, ref), (xa.grad, dx), (ga.grad, dg), (ba.grad, db)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-11)


def test_batch_norm_4d_gradcheck():
    rng = np.random.default_rng(2)
    x, g, b = (cr.Tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 3, 3, 2), (3,), (3,)))
    assert cr.gradcheck(lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True), x, g, b)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    assert cr.gradcheck(lambda x, g, b: F.batch_norm(x, rm, rv, g, b, training=False), x, g, b)


@pytest.mark.parametrize("affine,momentum", [(True, 0.3), (False, 0.1), (True, None)])
def test_batchnorm2d_module_over_several_steps_and_state_dict(affine, momentum):
    rng = np.random.default_rng(3)
    ours = nn.BatchNorm2d(3, momentum=momentum, affine=affine).to(np.float64)
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum, affine=affine).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if affine:
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(rng.standard_normal(3)))
            theirs.bias.copy_(torch.tensor(rng.standard_normal(3)))
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 5)) * 3 - 2
        np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 5, 5))
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-12)
    assert int(ours.num_batches_tracked) == 3


def test_batchnorm2d_keeps_float32_and_refuses_one_value_per_channel():
    bn = nn.BatchNorm2d(2)
    x = cr.Tensor(np.random.default_rng(4).standard_normal((2, 2, 3, 3)).astype(np.float32), requires_grad=True)
    y = bn(x)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == bn.running_mean.dtype == np.float32
    bn(np.zeros((1, 2, 2, 1), np.float32))  # N = 1 is fine: 2 values per channel
    with pytest.raises(ValueError, match=r"more than 1 value per channel, got input \(1, 2, 1, 1\)"):
        bn(np.zeros((1, 2, 1, 1), np.float32))


def test_dropout2d_zeroes_whole_channels_seeded_and_matches_its_mask():
    x = np.ones((50, 8, 3, 4))
    y = F.dropout2d(x, 0.25, generator=0).data
    per_channel = y.reshape(50, 8, -1)
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))  # each channel all kept or all dropped
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.05
    np.testing.assert_array_equal(y, F.dropout2d(x, 0.25, generator=0).data)
    xa = cr.Tensor(np.random.default_rng(5).standard_normal((4, 3, 2, 2)), requires_grad=True)
    out = F.dropout2d(xa, 0.5, generator=2)
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(xa.grad, out.data / np.where(xa.data == 0, 1, xa.data))
    with pytest.raises(ValueError, match=r"dropout2d: expected input of shape \(N, C, H, W\), got \(4, 3\); for one "
                                         r"\(C, H, W\) image pass x\[None\], for \(N, D\) features use dropout"):
        F.dropout2d(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"got \(8, 3, 4\)"):  # PyTorch reads 3-D as (N, C, L) today, (C, H, W) later
        F.dropout2d(x[0], 0.5, generator=1)


def test_dropout2d_module_train_eval_and_resume():
    m = nn.Dropout2d(0.5, seed=7)
    x = np.ones((6, 4, 2, 2), np.float32)
    state = m.rng_state()
    first = m(x).data
    m.set_rng_state(state)
    np.testing.assert_array_equal(m(x).data, first)
    m.eval()
    np.testing.assert_array_equal(m(x).data, x)
    assert repr(m) == "Dropout2d(p=0.5)"
