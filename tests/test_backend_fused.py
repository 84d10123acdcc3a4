"""chainrule.backend.fused: each compiled kernel gives, bit for bit, what the NumPy code it replaces gives, and the
callers (SGD, FlipCrop.take through DataLoader) fall back to that code where the kernel cannot run."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.backend import fused
from chainrule.data.augment import FlipCrop
from chainrule.data.loader import DataLoader
from chainrule.nn.module import Parameter
from chainrule.optim import SGD

needs_numba = pytest.mark.skipif(not fused.AVAILABLE, reason="numba not installed (or CHAINRULE_NO_NUMBA set)")


@pytest.fixture(params=["kernel", "numpy"])
def path(request, monkeypatch):
    """Run a test with the compiled kernels and again with them turned off (the NumPy fallback)."""
    if request.param == "kernel" and not fused.AVAILABLE:
        pytest.skip("numba not installed (or CHAINRULE_NO_NUMBA set)")
    if request.param == "numpy":
        monkeypatch.setattr(fused, "AVAILABLE", False)
    return request.param


@needs_numba
@pytest.mark.parametrize("padding", [1, 2, 4])
def test_gather_flip_crop_kernel_equals_gather_then_flipcrop(padding):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 8, 6, 3)).astype(np.float32)
    idx = rng.permutation(50)[:17]
    flip = rng.random(17) < 0.5
    dy, dx = rng.integers(0, 2 * padding + 1, 17), rng.integers(0, 2 * padding + 1, 17)
    got = fused.gather_flip_crop(X, idx, flip, dy, dx, padding)
    from chainrule.data.augment import _flip_crop_drawn

    expected = _flip_crop_drawn(X[idx], flip, dy, dx, padding).reshape(17, -1)
    assert got.shape == (17, 8 * 6 * 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("padding", [0, 2, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.float64])
def test_flipcrop_take_equals_call_on_the_gathered_batch(path, padding, dtype):
    rng = np.random.default_rng(0)
    X = (rng.random((50, 8, 6, 3)) * 255).astype(dtype)
    for index in (rng.permutation(50)[:17], slice(10, 27)):
        got = FlipCrop(padding).take(X, index, np.random.default_rng(3))
        expected = FlipCrop(padding)(X[index], np.random.default_rng(3))
        assert got.shape == expected.shape == (17, 8, 6, 3) and got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_flipcrop_take_gray_images(path):
    X = np.random.default_rng(0).standard_normal((20, 5, 7)).astype(np.float32)
    np.testing.assert_array_equal(FlipCrop(2).take(X, [3, 1, 4], np.random.default_rng(1)),
                                  FlipCrop(2)(X[[3, 1, 4]], np.random.default_rng(1)))


def test_dataloader_batches_do_not_depend_on_the_kernel(monkeypatch):
    X = np.random.default_rng(0).standard_normal((40, 8, 8, 3)).astype(np.float32)
    y = np.arange(40) % 4

    def batches():
        loader = DataLoader(X, y, 16, seed=5, augment=FlipCrop(4))
        return [b for _ in range(2) for b in loader]

    fast = batches()
    monkeypatch.setattr(fused, "AVAILABLE", False)
    slow = batches()
    assert len(fast) == len(slow) == 6
    for (xa, ya), (xb, yb) in zip(fast, slow):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def _sgd_run(params, steps, wds):
    opt = SGD([{"params": [p], "weight_decay": wd} for p, wd in zip(params, wds)], lr=0.05, momentum=0.9,
              nesterov=True)
    rng = np.random.default_rng(7)
    for step in range(steps):
        for p in params:
            p.grad = rng.standard_normal(p.shape).astype(p.data.dtype)
        opt.step()
        for group in opt.param_groups:
            group["lr"] *= 0.9  # a schedule: lr changes between steps
    return opt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_nesterov_is_bit_identical_with_and_without_the_kernel(monkeypatch, dtype):
    def run():
        rng = np.random.default_rng(1)
        params = [Parameter(rng.standard_normal(s).astype(dtype)) for s in [(30, 20), (20,), (7, 3)]]
        opt = _sgd_run(params, 5, (1e-2, 0.0, 3e-3))
        return [p.data.copy() for p in params] + [opt.state[p]["momentum_buffer"].copy() for p in params]

    fast = run()
    monkeypatch.setattr(fused, "AVAILABLE", False)
    slow = run()
    for a, b in zip(fast, slow):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


@needs_numba
def test_sgd_uses_the_kernel_for_float32_nesterov(monkeypatch):
    calls = []
    real = fused.sgd_nesterov_update

    def spy(*args):
        done = real(*args)
        calls.append(done)
        return done

    monkeypatch.setattr(fused, "sgd_nesterov_update", spy)
    rng = np.random.default_rng(1)
    params = [Parameter(rng.standard_normal((4, 3)).astype(np.float32))]
    _sgd_run(params, 3, (1e-3,))
    assert calls == [True, True]  # steps 2 and 3 (step 1 creates the momentum buffer)


def test_kernel_refuses_what_it_does_not_compile(path):
    x, g, buf = (np.ones((3, 4), np.float64) for _ in range(3))
    assert fused.sgd_nesterov_update(x, g, buf, 0.1, 0.9, 0.0) is False
    np.testing.assert_array_equal(x, 1.0)  # untouched: the caller's NumPy code runs instead
    strided = np.ones((3, 8), np.float32)[:, ::2]
    assert fused.sgd_nesterov_update(strided, strided.copy(), strided.copy(), 0.1, 0.9, 0.0) is False
    idx, flip, d = np.arange(2), np.zeros(2, bool), np.zeros(2, np.int64)
    assert fused.gather_flip_crop(np.ones((4, 3, 3, 3), np.uint8), idx, flip, d, d, 1) is None
    f32 = fused.gather_flip_crop(np.ones((4, 3, 3, 3), np.float32), idx, flip, d, d, 1)
    assert (f32 is None) == (path == "numpy")


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="must have one shape"):
        fused.sgd_nesterov_update(np.ones(3, np.float32), np.ones(4, np.float32), np.ones(3, np.float32), 0.1, 0.9, 0)
