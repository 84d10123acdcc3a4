"""Ops at the edges of their domains: every reproducer gives PyTorch's answer (float64), or a documented refusal.

Values and gradients are compared with PyTorch where it is installed (the tests that need it skip without it, e.g.
on a Python with no torch wheel); the refusals and the rules are checked on their own.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor, ops

try:
    import torch
except ImportError:  # pragma: no cover - torch has no wheel for some Pythons chainrule supports
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch (the oracle) is not installed")


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


def both(fn, *arrays):
    """fn on chainrule float64 leaves and on torch float64 leaves: ((out, grads), (out, grads)); the output's sum
    is backpropagated."""
    xs = [leaf(a) for a in arrays]
    out = fn(cr, *xs)
    out.sum().backward()
    ts = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    tout = fn(torch, *ts)
    tout.sum().backward()
    return (out.data, [x.grad for x in xs]), (tout.detach().numpy(), [t.grad.numpy() for t in ts])


def assert_same(ours, theirs) -> None:
    (out, grads), (tout, tgrads) = ours, theirs
    np.testing.assert_allclose(out, tout, rtol=1e-12, atol=0, equal_nan=True)
    assert out.shape == tout.shape
    for g, tg in zip(grads, tgrads):
        assert g.shape == tg.shape
        np.testing.assert_allclose(g, tg, rtol=1e-12, atol=0, equal_nan=True)


# ---- pow -------------------------------------------------------------------------------------------------------


def test_x_pow_zero_has_gradient_zero_at_zero() -> None:
    x = leaf([0.0])
    (x**0.0).sum().backward()
    assert x.grad.tolist() == [0.0]  # was nan (0 * 0 ** -1)
    a, b = leaf([0.0, 2.0]), leaf([0.0, 0.0])
    (a**b).sum().backward()
    assert a.grad.tolist() == [0.0, 0.0]


def test_d_pow_d_exponent_at_zero_base_and_negative_exponent_is_minus_inf() -> None:
    a, b = leaf([0.0]), leaf([-1.0])
    (a**b).sum().backward()
    assert b.grad.tolist() == [-np.inf] and a.grad.tolist() == [-np.inf]  # torch: -inf, -inf (was nan)


@needs_torch
def test_pow_gradients_match_torch_on_a_grid_of_edge_values() -> None:
    base = np.array([-2.0, 0.0, 0.5, 2.0])
    exps = np.array([-1.0, 0.0, 0.5, 2.0, 3.0])
    a, b = np.meshgrid(base, exps)
    with np.errstate(all="ignore"):
        assert_same(*both(lambda m, x, y: x**y, a, b))
    assert_same(*both(lambda m, x: x**0.0, base))
    assert_same(*both(lambda m, x: x**2, base))


# ---- logsumexp, softmax, max over empty and infinite rows -------------------------------------------------------


@needs_torch
@pytest.mark.parametrize("row", [[-np.inf, -np.inf], [1.0, np.inf], [np.inf, np.inf], [np.nan, 1.0], [3.0, -np.inf]])
def test_logsumexp_of_infinite_rows_matches_torch(row) -> None:
    assert_same(*both(lambda m, x: m.logsumexp(x, dim=1), [row]))


def test_logsumexp_edge_values() -> None:
    assert leaf([[-np.inf, -np.inf]]).logsumexp(axis=1).tolist() == [-np.inf]  # was nan
    assert leaf([[1.0, np.inf]]).logsumexp(axis=1).tolist() == [np.inf]  # was nan


@needs_torch
@pytest.mark.parametrize("shape, axis", [((2, 0), 1), ((0, 3), 1), ((0,), 0), ((2, 0), (0, 1))])
def test_logsumexp_over_empty_tensors_matches_torch(shape, axis) -> None:
    assert_same(*both(lambda m, x: m.logsumexp(x, dim=axis), np.zeros(shape)))


def test_max_of_an_empty_tensor_over_a_non_empty_axis() -> None:
    x = Tensor(np.zeros((0, 3)), requires_grad=True)
    out = x.max(axis=1)
    assert out.shape == (0,)
    out.sum().backward()
    assert x.grad.shape == (0, 3)
    assert cr.min(x, axis=1).shape == (0,)


@needs_torch
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_an_empty_axis_matches_torch(name) -> None:
    assert_same(*both(lambda m, x: getattr(m, name)(x, dim=-1), np.zeros((3, 0))))
    assert_same(*both(lambda m, x: getattr(m, name)(x, dim=1), np.zeros((0, 3))))


# ---- clip with tensor bounds ----------------------------------------------------------------------------------


@needs_torch
def test_clip_with_tensor_bounds_gives_the_active_bound_its_gradient() -> None:
    x = np.array([[-2.0, -1.0, 0.5, 1.0, 3.0]])
    lo = np.full((1, 5), -1.0)
    hi = np.array([1.0])
    assert_same(*both(lambda m, a, b, c: m.clamp(a, b, c), x, lo, hi))
    assert_same(*both(lambda m, a, b: m.clamp(a, min=b), x, lo))
    assert_same(*both(lambda m, a, c: m.clamp(a, max=c), x, hi))
    assert_same(*both(lambda m, a, b: m.clamp(a, min=b), [np.nan], [1.0]))


def test_clip_tensor_bound_gradient_is_one_where_active() -> None:
    x, lo, hi = leaf([-2.0, 0.5, 3.0]), leaf([-1.0, -1.0, -1.0]), leaf([1.0, 1.0, 1.0])
    cr.clip(x, lo, hi).sum().backward()
    assert (x.grad.tolist(), lo.grad.tolist(), hi.grad.tolist()) == ([0, 1, 0], [1, 0, 0], [0, 0, 1])


# ---- 0-d tensors with an axis -----------------------------------------------------------------------------------


@needs_torch
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "logsumexp"])
def test_reductions_of_a_0d_tensor_over_its_axis_match_torch(name, axis, keepdim) -> None:
    assert_same(*both(lambda m, x: getattr(m, name)(x, dim=axis, keepdim=keepdim), np.array(2.0)))


@pytest.mark.parametrize("op", [
    lambda x: x.sum(axis=0), lambda x: x.mean(axis=0), lambda x: x.max(axis=0), lambda x: x.min(axis=-1),
    lambda x: x.var(axis=0), lambda x: x.logsumexp(axis=0), lambda x: x.squeeze(0), lambda x: x.squeeze(-1),
])
def test_0d_tensor_with_an_axis_gives_its_value(op) -> None:
    x = leaf(2.0)
    out = op(x)
    expected = 0.0 if out.grad_fn.__class__.__name__ == "Var" else 2.0
    assert out.shape == () and out.item() == expected
    out.backward()
    assert x.grad.shape == () and x.grad.item() == (0.0 if expected == 0.0 else 1.0)


@needs_torch
def test_0d_var_squeeze_unsqueeze_match_torch() -> None:
    assert_same(*both(lambda m, x: x.var(dim=0, correction=0) if m is torch else x.var(axis=0), np.array(2.0)))
    assert_same(*both(lambda m, x: x.squeeze(0), np.array(2.0)))
    assert_same(*both(lambda m, x: x.unsqueeze(-1), np.array(2.0)))


# ---- maximum / minimum with NaN ---------------------------------------------------------------------------------


@needs_torch
@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_with_nan_send_the_gradient_to_both_sides_like_torch(name) -> None:
    a = [np.nan, 1.0, 2.0, 3.0, np.nan]
    b = [1.0, np.nan, 2.0, 1.0, np.nan]
    assert_same(*both(lambda m, x, y: getattr(m, name)(x, y), a, b))


def test_maximum_with_nan_gradient_rule() -> None:
    a, b = leaf([np.nan, 1.0]), leaf([1.0, np.nan])
    cr.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [1.0, 1.0] and b.grad.tolist() == [1.0, 1.0]


# ---- concatenate(axis=None), var ddof ---------------------------------------------------------------------------


def test_concatenate_axis_none_flattens_like_numpy() -> None:
    a, b = leaf(np.arange(6.0).reshape(2, 3)), leaf([[7.0], [8.0]])
    out = cr.concatenate([a, b], axis=None)
    np.testing.assert_array_equal(out.data, np.concatenate([a.data, b.data], axis=None))
    (out * Tensor(np.arange(8.0))).sum().backward()
    np.testing.assert_array_equal(a.grad, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(b.grad, [[6.0], [7.0]])


@pytest.mark.parametrize("n, ddof", [(1, 1), (2, 2), (2, 3), (0, 0)])
def test_var_with_n_minus_ddof_at_most_zero_refuses_and_says_so(n, ddof) -> None:
    """The documented choice: PyTorch and NumPy return nan/inf with a warning; chainrule refuses."""
    with pytest.raises(ValueError, match=rf"var: each reduction needs more than ddof={ddof} values"):
        leaf(np.ones(n)).var(ddof=ddof)
    assert "n - ddof <= 0" in ops.Var.__doc__ and "raises" in ops.Var.__doc__


# ---- argmax / max(dim=) ---------------------------------------------------------------------------------------


@needs_torch
def test_max_with_dim_returns_values_and_indices_like_torch() -> None:
    data = np.array([[1.0, 5.0, 5.0], [7.0, 2.0, 0.0]])
    x, t = leaf(data), torch.tensor(data, requires_grad=True)
    values, indices = x.max(dim=1)
    tvalues, tindices = t.max(dim=1)
    np.testing.assert_array_equal(values.data, tvalues.detach().numpy())
    np.testing.assert_array_equal(indices.data, tindices.numpy())
    assert indices.dtype == np.int64 and not indices.requires_grad
    values.sum().backward()
    tvalues.sum().backward()
    np.testing.assert_array_equal(x.grad, t.grad.numpy())  # max(dim=) sends a tie's gradient to its index...
    np.testing.assert_array_equal(x.min(dim=0, keepdim=True).indices.data, t.min(dim=0, keepdim=True).indices)
    np.testing.assert_array_equal(x.argmax(dim=1).data, t.argmax(dim=1).numpy())
    np.testing.assert_array_equal(cr.argmin(x).data, torch.argmin(t).numpy())


def test_max_with_axis_splits_ties_and_returns_values_only() -> None:
    x = leaf([[1.0, 5.0, 5.0]])
    out = x.max(axis=1)  # ...while NumPy-style max (PyTorch's amax) splits a tie evenly
    assert isinstance(out, Tensor)
    out.sum().backward()
    assert x.grad.tolist() == [[0.0, 0.5, 0.5]]
