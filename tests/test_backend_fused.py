"""chainrule.backend.fused: each single-pass kernel gives exactly what the code it would replace gives."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.backend import fused
from chainrule.data.augment import FlipCrop
from chainrule.nn.module import Parameter
from chainrule.optim import SGD


@pytest.fixture(params=["kernel", "numpy"])
def path(request, monkeypatch):
    if request.param == "kernel" and not fused.AVAILABLE:
        pytest.skip("numba not installed (or CHAINRULE_NO_NUMBA set)")
    if request.param == "numpy":
        monkeypatch.setattr(fused, "AVAILABLE", False)
    return request.param


@pytest.mark.parametrize("padding", [0, 2, 4])
def test_gather_flip_crop_equals_gather_then_flipcrop(path, padding):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 8, 6, 3)).astype(np.float32)
    idx = rng.permutation(50)[:17]
    got = fused.gather_flip_crop(X, idx, np.random.default_rng(3), padding)
    expected = FlipCrop(padding)(X[idx], np.random.default_rng(3)).reshape(17, -1)
    assert got.shape == (17, 8 * 6 * 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_sgd_nesterov_update_equals_sgd_step(path):
    rng = np.random.default_rng(1)
    params = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in [(30, 20), (20,)]]
    opt = SGD([{"params": params[:1], "weight_decay": 1e-2}, {"params": params[1:], "weight_decay": 0.0}],
              lr=0.05, momentum=0.9, nesterov=True)
    for p in params:
        p.grad = rng.standard_normal(p.shape).astype(np.float32)
    opt.step()  # creates the momentum buffers
    mine = [(p.data.copy(), opt.state[p]["momentum_buffer"].copy(), wd) for p, wd in zip(params, (1e-2, 0.0))]
    for _ in range(3):
        opt.step()
        for (x, buf, wd), p in zip(mine, params):
            fused.sgd_nesterov_update(x, p.grad, buf, 0.05, 0.9, wd)
    for (x, buf, _), p in zip(mine, params):
        np.testing.assert_allclose(x, p.data, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(buf, opt.state[p]["momentum_buffer"], rtol=1e-6, atol=1e-7)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="must have one shape"):
        fused.sgd_nesterov_update(np.ones(3, np.float32), np.ones(4, np.float32), np.ones(3, np.float32), 0.1, 0.9, 0)
