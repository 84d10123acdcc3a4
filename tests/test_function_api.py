"""The extension API, ``chainrule.Function``, in the shape of ``torch.autograd.Function``: custom ops with
save_for_backward / saved_tensors / needs_input_grad / None gradients, and clear errors for wrong backward()s."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import Function, Tensor, no_grad, ops


def leaf(values) -> Tensor:
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True)


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


class ScaleShift(Function):
    """y = x * scale + shift, with a number option ``power`` applied to scale; records needs_input_grad."""

    seen: list = []

    @staticmethod
    def forward(ctx, x, scale, shift, power=1):
        ctx.save_for_backward(x, scale)
        ctx.power = power  # any attribute can be stored on ctx
        ScaleShift.seen.append(ctx.needs_input_grad)
        return x * scale**power + shift

    @staticmethod
    def backward(ctx, grad):
        x, scale = ctx.saved_tensors
        gx = grad * scale**ctx.power if ctx.needs_input_grad[0] else None
        gscale = (grad * x * ctx.power * scale ** (ctx.power - 1)).sum() if ctx.needs_input_grad[1] else None
        gshift = grad if ctx.needs_input_grad[2] else None  # shift has x's shape here
        return gx, gscale, gshift


def test_custom_function_forward_backward_and_node() -> None:
    x = leaf([1.0, -2.0, 0.5])
    y = Cube.apply(x)
    np.testing.assert_allclose(y.data, x.data**3)
    assert isinstance(y.grad_fn, Cube) and isinstance(y.grad_fn, Function)
    assert y.grad_fn.parents == (x,) and y.grad_fn.needs_input_grad == (True,)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 3 * x.data**2)
    assert cr.gradcheck(lambda t: Cube.apply(t), leaf([0.3, -1.2, 2.0]))


def test_custom_function_composes_with_builtin_ops() -> None:
    x = leaf([0.2, 0.4])
    y = (Cube.apply(x.tanh() * 2.0) + x).exp().sum()
    y.backward()
    t = np.tanh(x.data)
    expected = np.exp((2 * t) ** 3 + x.data) * (3 * (2 * t) ** 2 * 2 * (1 - t**2) + 1)
    np.testing.assert_allclose(x.grad, expected)


def test_needs_input_grad_and_none_gradients() -> None:
    ScaleShift.seen.clear()
    x = leaf([1.0, 2.0])
    scale = Tensor(np.array(3.0))  # a constant tensor
    shift = 0.5  # a plain number
    y = ScaleShift.apply(x, scale, shift, power=2)
    assert ScaleShift.seen[-1] == (True, False, False)
    assert y.grad_fn.parents == (x, scale, None)  # None for a non-Tensor argument
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [9.0, 9.0])
    assert scale.grad is None

    s = leaf(3.0)
    b = leaf([0.0, 0.0])
    x.zero_grad()
    ScaleShift.apply(x, s, b).sum().backward()
    assert ScaleShift.seen[-1] == (True, True, True)
    np.testing.assert_allclose(s.grad, 3.0)
    np.testing.assert_allclose(b.grad, [1.0, 1.0])
    assert cr.gradcheck(lambda *a: ScaleShift.apply(*a, power=3), leaf([0.5, -1.0]), leaf(1.3), leaf([0.1, 0.2]))


def test_none_gradient_for_a_differentiable_input_means_zero() -> None:
    class StopGradToScale(Function):
        @staticmethod
        def forward(ctx, x, s):
            ctx.save_for_backward(s)
            return x * s

        @staticmethod
        def backward(ctx, grad):
            (s,) = ctx.saved_tensors
            return grad * s, None  # s requires grad, but this op passes it none

    a = leaf([1.0, 2.0])
    s = (a * 2.0).sum()  # a non-leaf that requires grad: its node then receives no gradient at all
    x = leaf([3.0])
    StopGradToScale.apply(x, s).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0])
    assert a.grad is None
    # and alongside a path that does carry gradient to a
    x.zero_grad()
    (StopGradToScale.apply(x, s) + s).sum().backward()
    np.testing.assert_allclose(a.grad, [2.0, 2.0])


def test_the_same_gradient_array_for_two_inputs_is_not_shared() -> None:
    class Sum2(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            g = grad * 1.0  # one fresh array, returned for both inputs
            return g, g

    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    Sum2.apply(a, b).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 1.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_backward_may_return_a_bare_array_for_one_input() -> None:
    # Cube returns a bare array; a 1-tuple works the same
    class Twice(Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            return (2 * grad,)

    x = leaf([1.0])
    Twice.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0])


def test_forward_may_return_a_number_or_list() -> None:
    class SumSquares(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return float((x * x).sum())

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x = leaf([1.0, 2.0])
    y = SumSquares.apply(x)
    assert isinstance(y.data, np.ndarray) and y.shape == ()
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_nothing_recorded_without_grad_inputs_or_under_no_grad() -> None:
    y = Cube.apply(Tensor(np.array([2.0])))
    assert y.grad_fn is None and not y.requires_grad
    with no_grad():
        y = Cube.apply(leaf([2.0]))
    assert y.grad_fn is None and not y.requires_grad
    np.testing.assert_array_equal(y.data, [8.0])


def test_integer_output_is_not_recorded() -> None:
    class ArgMax(Function):
        @staticmethod
        def forward(ctx, x):
            return np.argmax(x, axis=-1)

        @staticmethod
        def backward(ctx, grad):  # pragma: no cover - never called
            raise AssertionError("an integer output has no gradient")

    idx = ArgMax.apply(leaf([[1.0, 3.0, 2.0]]))
    assert idx.dtype.kind == "i" and not idx.requires_grad and idx.grad_fn is None


def test_saved_tensors_released_and_retained() -> None:
    x = leaf([1.0, 2.0])
    y = Cube.apply(x)
    node = y.grad_fn
    y.sum().backward(retain_graph=True)
    assert node.saved_tensors[0] is x.data
    y.sum().backward()
    with pytest.raises(RuntimeError, match=r"Cube: its saved arrays were released by an earlier backward\(\)"):
        node.saved_tensors
    with pytest.raises(RuntimeError, match=r"already released.*retain_graph=True"):
        y.sum().backward()


# ---- wrong backward()s raise clear errors ---------------------------------------------------------------------


def test_wrong_number_of_gradients() -> None:
    class TooFew(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(RuntimeError, match=r"TooFew\.backward returned 1 gradients for 2 forward arguments; "
                                           r"return one per argument \(None if not differentiable\)"):
        TooFew.apply(leaf([1.0]), leaf([2.0])).sum().backward()

    class TooMany(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    with pytest.raises(RuntimeError, match=r"TooMany\.backward returned 2 gradients for 1 forward arguments"):
        TooMany.apply(leaf([1.0])).sum().backward()


def test_wrong_gradient_shape() -> None:
    class NoUnbroadcast(Function):  # forgets to sum the gradient back to b's shape
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    a = leaf(np.ones((2, 3)))
    b = leaf(np.ones(3))
    with pytest.raises(RuntimeError, match=r"NoUnbroadcast\.backward returned shape \(2, 3\) as the gradient of "
                                           r"argument 1, which has shape \(3,\)"):
        NoUnbroadcast.apply(a, b).sum().backward()


def test_gradient_that_is_not_an_array() -> None:
    class ReturnsList(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return [g * 2 for g in grad]

    with pytest.raises(RuntimeError, match=r"ReturnsList\.backward returned a list as the gradient of argument 0"):
        ReturnsList.apply(leaf([1.0, 2.0])).sum().backward()


def test_missing_forward_or_backward() -> None:
    class NoForward(Function):
        pass

    with pytest.raises(NotImplementedError, match="static forward"):
        NoForward.apply(leaf([1.0]))

    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

    y = NoBackward.apply(leaf([1.0]))
    with pytest.raises(NotImplementedError, match="static backward"):
        y.sum().backward()


def test_every_builtin_op_is_a_function() -> None:
    """The engine special-cases nothing: the nodes of built-in ops are ordinary Function subclasses."""
    x = leaf(np.ones((2, 2)))
    for y in [x + x, x * 2.0, x @ x, x.sum(), x[0], x.T, ops.softmax(x), ops.concatenate([x, x]), x.relu()]:
        assert isinstance(y.grad_fn, Function)
        assert type(y.grad_fn).apply.__func__ is Function.apply.__func__
        assert type(y.grad_fn).backward is not Function.backward
