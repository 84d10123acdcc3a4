"""sigmoid, softmax, log_softmax and logsumexp are stable for inputs up to |x| = 1e4 in float32 and float64: no
overflow, no NaN, no floating-point warning of any kind (everything runs under ``np.errstate(all="raise")``), in
forward and in backward, with the values the mathematics gives."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from chainrule import Tensor, ops

DTYPES = [np.float32, np.float64]

# |x| up to 1e4, and the moderate values where exp() over- or underflows or leaves the normal range in one of the
# two dtypes (float32: exp overflows above ~88.7, goes subnormal below ~-87.3; float64: ~709.8 and ~-708.4).
EXTREMES = [1e4, -1e4, 1e3, -1e3, 750.0, -750.0, 720.0, -720.0, 100.0, -100.0, 95.0, -95.0, 89.0, -89.0, 30.0, -30.0,
            1.0, -1.0, 0.0]


def raising(fn, *args, **kwargs):
    """Call fn with every floating-point condition raised and every warning an error."""
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


def upstream(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    # Not powers of two, so products with tiny values are inexact (that is when underflow is flagged).
    return np.random.default_rng(0).uniform(0.3, 3.0, shape).astype(dtype)


def check_finite(out: Tensor, x: Tensor) -> None:
    """The output's values and the input's gradient are all finite."""
    assert np.all(np.isfinite(out.data)), out.data
    assert x.grad is not None and np.all(np.isfinite(x.grad)), x.grad


# ---- sigmoid -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_extremes(dtype: Any) -> None:
    x = Tensor(np.array(EXTREMES, dtype=dtype), requires_grad=True)
    y = raising(ops.sigmoid, x)
    g = upstream(y.shape, dtype)
    raising(y.backward, g)
    assert y.dtype == dtype and x.grad.dtype == dtype
    check_finite(y, x)
    xs = np.array(EXTREMES, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        exact = 1 / (1 + np.exp(-xs))
    tol = dict(rtol=1e-6, atol=1e-30) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(y.data, exact, **tol)
    assert y.data[0] == 1 and y.data[1] == 0  # sigmoid(+-1e4) saturates exactly
    assert x.grad[0] == 0 and x.grad[1] == 0  # and its slope is exactly 0 there, not NaN
    # float32 keeps 7 digits of sigmoid near 1, so there the slope 1 - sigmoid(x) is only good to ~1e-7 absolute.
    with np.errstate(under="ignore"):
        np.testing.assert_allclose(x.grad, g * exact * (1 - exact), rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-7 if dtype == np.float32 else 1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_plus_minus_1e4_scalar(dtype: Any) -> None:
    for v, expected in [(1e4, 1.0), (-1e4, 0.0)]:
        x = Tensor(np.array(v, dtype=dtype), requires_grad=True)
        y = raising(ops.sigmoid, x)
        raising(y.backward)
        assert y.item() == expected and x.grad.item() == 0.0


# ---- softmax / log_softmax / logsumexp ----------------------------------------------------------------------------


def rows(dtype: Any) -> np.ndarray:
    """Rows with a dominant entry, huge spreads, all-equal huge values and moderate ones."""
    return np.array([
        [1e4, -1e4, 0.0, 1.0],
        [-1e4, -1e4, -1e4, -1e4],
        [1e4, 1e4, 1e4, 1e4],
        [1e4, 1e4 - 1, -1e4, 5.0],
        [0.0, 0.0, 0.0, -95.0],
        [0.0, 0.0, 0.0, -750.0],
        [0.0, 0.0, 0.0, -720.0],
        [3.0, 2.0, 1.0, 0.0],
        [-1e4, 1e4, -1e4, 0.5],
    ], dtype=dtype)


def exact_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=axis, keepdims=True)
    with np.errstate(under="ignore"):
        return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_extremes(dtype: Any, axis: int) -> None:
    x = Tensor(rows(dtype), requires_grad=True)
    p = raising(ops.softmax, x, axis=axis)
    raising(p.backward, upstream(p.shape, dtype))
    assert p.dtype == dtype and x.grad.dtype == dtype
    check_finite(p, x)
    with np.errstate(under="ignore"):
        exact = np.exp(exact_log_softmax(rows(dtype), axis))
    np.testing.assert_allclose(p.data, exact, rtol=1e-5, atol=1e-7 if dtype == np.float32 else 1e-15)
    np.testing.assert_allclose(p.data.sum(axis=axis), 1.0, rtol=1e-6)
    # The gradient of sum(softmax) is zero: softmax sums to 1 whatever x is.
    x.zero_grad()
    raising(lambda: ops.softmax(x, axis=axis).sum().backward())
    np.testing.assert_allclose(x.grad, 0.0, atol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0])
def test_log_softmax_extremes(dtype: Any, axis: int) -> None:
    x = Tensor(rows(dtype), requires_grad=True)
    out = raising(ops.log_softmax, x, axis=axis)
    g = upstream(out.shape, dtype)
    raising(out.backward, g)
    assert out.dtype == dtype and x.grad.dtype == dtype
    check_finite(out, x)
    exact = exact_log_softmax(rows(dtype), axis)
    np.testing.assert_allclose(out.data, exact, rtol=1e-6, atol=1e-6 if dtype == np.float32 else 1e-12)
    assert out.data.min() < -1e4  # log-probabilities of -2e4 are represented, not -inf
    with np.errstate(under="ignore"):
        expected_grad = g - np.exp(exact) * g.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(x.grad, expected_grad, rtol=1e-5, atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, False), (0, True), ((0, 1), True)])
def test_logsumexp_extremes(dtype: Any, axis: Any, keepdims: bool) -> None:
    x = Tensor(rows(dtype), requires_grad=True)
    out = raising(ops.logsumexp, x, axis=axis, keepdims=keepdims)
    g = upstream(out.shape, dtype)
    raising(out.backward, g)
    assert out.dtype == dtype and x.grad.dtype == dtype
    check_finite(out, x)
    xs = rows(np.float64)
    m = xs.max(axis=axis, keepdims=True)
    with np.errstate(under="ignore"):
        lse = m + np.log(np.exp(xs - m).sum(axis=axis, keepdims=True))
        softmax = np.exp(xs - lse)
    exact = lse if keepdims else np.squeeze(lse, axis=axis)
    np.testing.assert_allclose(out.data, exact, rtol=1e-6 if dtype == np.float32 else 1e-13)
    g_full = g if keepdims or axis is None else np.expand_dims(g, axis)
    np.testing.assert_allclose(x.grad, g_full * softmax, rtol=1e-5, atol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_of_equal_huge_values(dtype: Any) -> None:
    x = Tensor(np.full(3, 1e4, dtype=dtype), requires_grad=True)
    out = raising(ops.logsumexp, x)
    raising(out.backward)
    np.testing.assert_allclose(out.item(), 1e4 + np.log(3), rtol=1e-7)
    np.testing.assert_allclose(x.grad, 1 / 3, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_from_log_softmax_at_extremes(dtype: Any) -> None:
    """The usual composite: -log_softmax(scores)[range(N), y].mean() is finite and has gradient p - onehot."""
    scores = Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [5.0, 2.0, -3.0]], dtype=dtype),
                    requires_grad=True)
    y = np.array([1, 2, 0])
    loss = raising(lambda: -ops.log_softmax(scores, axis=1)[np.arange(3), y].mean())
    raising(loss.backward)
    assert loss.dtype == dtype and np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), (2e4 + np.log(2) + exact_log_softmax(scores.data, 1)[2, 0] * -1) / 3,
                               rtol=1e-5)
    with np.errstate(under="ignore"):
        p = np.exp(exact_log_softmax(scores.data, 1))
    onehot = np.eye(3)[y]
    np.testing.assert_allclose(scores.grad, (p - onehot) / 3, atol=1e-6)
