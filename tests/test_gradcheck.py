"""Gradient checking: numerical_gradient (centered differences), rel_error (CS231n's definition) and gradcheck,
including samples=k and the failure message on a deliberately wrong custom Function."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import Function, GradcheckError, Tensor, gradcheck, numerical_gradient, rel_error


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ---- numerical_gradient -----------------------------------------------------------------------------------------


def test_numerical_gradient_of_a_scalar_function() -> None:
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.5]])
    before = x.copy()
    grad = numerical_gradient(lambda a: np.sum(a**2) + np.sin(a).sum(), x)
    np.testing.assert_allclose(grad, 2 * x + np.cos(x), rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x, before)  # perturbed in place, then restored exactly
    assert grad.shape == x.shape and grad.dtype == np.float64


def test_numerical_gradient_is_centered() -> None:
    # f(x) = x^2 at x = 1 with h = 0.1: the centered quotient is exact (2.0); a one-sided one would give 2.1.
    grad = numerical_gradient(lambda a: float(a[0] ** 2), np.array([1.0]), h=0.1)
    assert grad[0] == pytest.approx(2.0, abs=1e-12)
    # its error is O(h^2): for x^3 it is exactly h^2
    grad = numerical_gradient(lambda a: float(a[0] ** 3), np.array([2.0]), h=1e-2)
    assert grad[0] - 12.0 == pytest.approx(1e-4, rel=1e-5)


def test_numerical_gradient_of_an_array_function_with_upstream() -> None:
    x = np.array([0.3, -0.7, 1.2])
    df = np.array([1.0, -2.0, 0.5])
    grad = numerical_gradient(lambda a: np.tanh(a), x, df=df)
    np.testing.assert_allclose(grad, df * (1 - np.tanh(x) ** 2), rtol=1e-8)
    # without df, the gradient of sum(f(x))
    grad = numerical_gradient(lambda a: a * a, x)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-8)


# ---- rel_error --------------------------------------------------------------------------------------------------


def test_rel_error() -> None:
    assert rel_error(1.0, 1.0) == 0.0
    assert rel_error([1.0, 2.0], [1.0, 2.2]) == pytest.approx(0.2 / 4.2)
    # the max over elements of |a - b| / (|a| + |b|), not a ratio of norms
    assert rel_error([100.0, 1e-3], [100.0, 2e-3]) == pytest.approx(1e-3 / 3e-3)
    assert rel_error([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert rel_error([0.0], [1e-12]) == pytest.approx(1e-12 / 1e-8)  # the denominator is at least 1e-8
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0
    assert rel_error(3.0, -3.0) == 1.0
    assert isinstance(rel_error(np.float32(1), 2), float)


# ---- gradcheck --------------------------------------------------------------------------------------------------


def test_gradcheck_passes_on_correct_ops_and_returns_true() -> None:
    a = leaf([[0.5, -1.2, 0.3], [1.1, 0.2, -0.4]])
    b = leaf([[0.7], [-0.3], [1.5]])
    assert gradcheck(lambda x, y: (x @ y).tanh().sum() + (x * x).mean(), a, b) is True
    assert gradcheck(lambda x: x.softmax(axis=0), a) is True  # non-scalar output


def test_gradcheck_does_not_touch_the_callers_tensors() -> None:
    x = leaf([0.5, -1.0], dtype=np.float32)
    data = x.data.copy()
    assert gradcheck(lambda t: (t * t).sum(), x)
    np.testing.assert_array_equal(x.data, data)
    assert x.grad is None and x.dtype == np.float32


def test_gradcheck_runs_in_float64() -> None:
    seen = []

    def fn(t: Tensor) -> Tensor:
        seen.append(t.dtype)
        return (t.exp() * t).sum()

    # a float32 input passes a tight check because the check is done on a float64 copy
    assert gradcheck(fn, leaf([0.1, 0.2, 0.3], dtype=np.float32), atol=1e-8, rtol=1e-6)
    assert set(seen) == {np.dtype(np.float64)}


def test_gradcheck_constants_are_not_checked() -> None:
    calls = []
    x = leaf([1.0, 2.0])
    const = Tensor(np.array([3.0, 4.0]))

    def fn(a: Tensor, c: Tensor, k: float) -> Tensor:
        calls.append(1)
        return (a * c * k).sum()

    assert gradcheck(fn, x, const, 2.0)
    assert len(calls) == 1 + 2 * x.size  # one backward pass, then two evaluations per coordinate of x only


def test_gradcheck_samples() -> None:
    calls = []

    def fn(a: Tensor, b: Tensor) -> Tensor:
        calls.append(1)
        return (a @ b).sum()

    a = leaf(np.random.default_rng(0).standard_normal((20, 30)))
    b = leaf(np.random.default_rng(1).standard_normal((30, 10)))
    assert gradcheck(fn, a, b, samples=5)
    assert len(calls) == 1 + 2 * (5 + 5)
    calls.clear()
    assert gradcheck(fn, leaf([1.0, 2.0]).reshape(1, 2), leaf([[3.0], [4.0]]), samples=100)  # k >= size: all
    assert len(calls) == 1 + 2 * (2 + 2)


class WrongSquare(Function):
    """forward x^2, backward deliberately wrong: 3x instead of 2x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x


def test_gradcheck_failure_names_input_coordinate_and_both_values() -> None:
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: WrongSquare.apply(t).sum(), x)
    message = str(info.value)
    assert message.startswith("gradcheck: input 0 (shape (3,)) at (0,): analytic 3 vs numerical 2")
    assert "rel_error 0.2" in message and "atol=1e-05" in message and "rtol=0.001" in message
    assert isinstance(info.value, AssertionError)  # fails a test like an assert


def test_gradcheck_failure_in_a_second_input_and_one_coordinate() -> None:
    class WrongAtOne(Function):
        """a * b, but the gradient for b is wrong only at coordinate (1, 0)."""

        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            gb = grad * a
            gb[1, 0] += 0.5
            return grad * b, gb

    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    b = leaf([[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2, 2\)\) at \(1, 0\): analytic 3.5 vs numerical 3"):
        gradcheck(lambda x, y: WrongAtOne.apply(x, y).sum(), a, b)


def test_gradcheck_samples_can_miss_and_find_a_single_wrong_coordinate() -> None:
    class WrongAtZero(Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            g = 2 * grad
            g.flat[0] += 1.0
            return g

    x = leaf(np.ones(50))
    fn = lambda t: WrongAtZero.apply(t).sum()  # noqa: E731
    with pytest.raises(GradcheckError, match=r"at \(0,\)"):
        gradcheck(fn, x)
    # the sampled coordinates depend only on the seed: find one seed that misses (0,) and one that hits it
    outcomes = set()
    for seed in range(40):
        try:
            outcomes.add(gradcheck(fn, x, samples=5, seed=seed))
        except GradcheckError:
            outcomes.add(False)
    assert outcomes == {True, False}


def test_gradcheck_tolerances() -> None:
    class SlightlyOff(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return grad * (1.0 + 1e-4)

    x = leaf([1.0, 2.0])
    fn = lambda t: SlightlyOff.apply(t).sum()  # noqa: E731
    assert gradcheck(fn, x)  # rtol=1e-3 by default
    with pytest.raises(GradcheckError):
        gradcheck(fn, x, atol=1e-8, rtol=1e-6)


def test_gradcheck_input_errors() -> None:
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda t: t.sum(), Tensor(np.ones(2)))
    with pytest.raises(TypeError, match="fn must return a Tensor, got float"):
        gradcheck(lambda t: 1.0, leaf([1.0]))


def test_gradcheck_catches_a_wrong_builtin_style_op_on_a_large_input() -> None:
    x = leaf(np.random.default_rng(0).uniform(0.5, 2.0, (40, 40)))
    assert gradcheck(lambda t: cr.log(t).sum(), x, samples=20)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: WrongSquare.apply(t).sum(), x, samples=3)


def test_pytorch_tuple_form_of_the_inputs_is_accepted():
    import torch

    from chainrule.gradcheck import gradcheck, gradgradcheck

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    x, y = (Tensor(v, requires_grad=True) for v in (a, b))
    tx, ty = (torch.tensor(v, requires_grad=True) for v in (a, b))
    for check, torch_check in ((gradcheck, torch.autograd.gradcheck), (gradgradcheck, torch.autograd.gradgradcheck)):
        assert torch_check(lambda p, q: (p @ q).tanh(), (tx, ty))  # the form PyTorch users write
        assert check(lambda p, q: (p @ q).tanh(), (x, y)) is True
        assert check(lambda p, q: (p @ q).tanh(), [x, y]) is True
        assert check(lambda p, q: (p @ q).tanh(), x, y) is True  # chainrule's own form still works
        assert check(lambda p: p.tanh(), x) is True and check(lambda p: p.tanh(), (x,)) is True


def test_check_parameters_samples_entries_and_applies_the_cs231n_rule():
    from chainrule import Tensor, nn
    from chainrule.gradcheck import check_parameters
    import chainrule.nn.functional as F

    model = nn.MLP([4, 3, 2], activation="tanh", seed=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    X, y = Tensor(rng.standard_normal((5, 4))), rng.integers(0, 2, size=5)
    loss, checks = check_parameters(lambda: F.cross_entropy(model(X), y), model.named_parameters(), samples=5,
                                    rng=rng)
    assert loss > 0 and [c.name for c in checks] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [c.checked for c in checks] == [5, 3, 5, 2] and all(c.ok for c in checks)
    assert max(c.max_rel_error for c in checks) < 1e-6
    # a loss whose analytic gradient is wrong (the graph sees only half of the weights' effect) fails
    w = model[0].weight
    _, bad = check_parameters(lambda: F.cross_entropy(model(X), y) + (w * w.data).sum() * 0.5,
                              [("0.weight", w)], rng=rng)
    assert not bad[0].ok and bad[0].max_rel_error > 1e-3
