"""The Tensor and its backward engine: defaults, accumulation, graph release, retain_grad, deep chains, reused
subexpressions, broadcasting, no_grad, dtypes, error messages, reference cycles and gradient aliasing."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule import Function, Tensor, enable_grad, is_grad_enabled, no_grad


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ---- the Tensor itself ----------------------------------------------------------------------------------------


def test_tensor_basics() -> None:
    data = np.arange(6.0).reshape(2, 3)
    t = Tensor(data, requires_grad=True)
    assert t.data is data  # wraps, does not copy
    assert t.shape == (2, 3) and t.ndim == 2 and t.dtype == np.float64 and t.size == 6 and len(t) == 2
    assert t.requires_grad and t.grad is None and t.is_leaf and t.grad_fn is None
    assert t.T.shape == (3, 2) and np.array_equal(t.T.data, data.T)
    assert t.numpy() is data
    assert Tensor(2.5).item() == 2.5 and isinstance(Tensor([[7.0]]).item(), float)
    assert np.asarray(t) is data
    d = t.detach()
    assert d.data is data and not d.requires_grad and d.grad_fn is None
    assert Tensor(t).data is data


def test_default_dtypes() -> None:
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor([[1, 2.5]]).dtype == np.float32
    assert Tensor(np.zeros(2)).dtype == np.float64  # NumPy arrays keep their dtype
    assert Tensor(np.float64(1.0)).dtype == np.float64
    assert Tensor([1, 2]).dtype.kind == "i"
    assert Tensor([True]).dtype == np.bool_
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64


def test_repr_names_the_op() -> None:
    x = leaf([1.0, 2.0])
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=Mul" in repr(x * 2.0)
    assert type((x @ x).grad_fn).__name__ == "MatMul"


def test_numpy_operand_on_the_left_gives_a_tensor() -> None:
    x = leaf([1.0, 2.0])
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    y.backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_comparisons_give_boolean_tensors_off_the_graph() -> None:
    x = leaf([-1.0, 0.0, 2.0])
    mask = x > 0
    assert isinstance(mask, Tensor) and mask.dtype == np.bool_ and not mask.requires_grad
    np.testing.assert_array_equal(mask.data, [False, False, True])
    np.testing.assert_array_equal((x <= 0).data, [True, True, False])
    np.testing.assert_array_equal((x >= x).data, [True, True, True])
    np.testing.assert_array_equal((x < 0.5).data, [True, True, False])


# ---- backward(): the default gradient and its errors --------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_backward_defaults_to_one_for_a_single_element(shape) -> None:
    x = leaf(np.full(shape, 3.0))
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, np.full(shape, 6.0))


@pytest.mark.parametrize("shape, text", [((3,), r"\(3,\)"), ((2, 3), r"\(2, 3\)")])
def test_backward_without_grad_on_non_scalar_names_the_shape(shape, text) -> None:
    y = leaf(np.ones(shape)) * 2.0
    with pytest.raises(ValueError, match=rf"single-element output, got shape {text}"):
        y.backward()


def test_backward_with_explicit_grad() -> None:
    x = leaf([1.0, 2.0, 3.0])
    (x * x).backward(np.array([1.0, 0.5, -1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, -6.0])
    x2 = leaf([1.0, 2.0])
    (x2 * 3.0).backward(Tensor(np.array([1.0, 2.0])))  # a Tensor works as the upstream gradient too
    np.testing.assert_array_equal(x2.grad, [3.0, 6.0])
    x3 = leaf([1.0, 2.0], dtype=np.float32)
    (x3 * 3.0).backward(np.array([1.0, 2.0]))  # a float64 upstream for a float32 output is converted
    assert x3.grad.dtype == np.float32
    np.testing.assert_array_equal(x3.grad, [3.0, 6.0])


def test_backward_grad_of_wrong_shape() -> None:
    y = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), expected the output's shape \(2,\)"):
        y.backward(np.ones(3))


def test_backward_on_tensor_without_graph() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).backward()
    with no_grad():
        y = leaf([1.0]) * 2.0
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_backward_on_a_leaf() -> None:
    x = leaf([1.0, 2.0])
    g = np.array([5.0, 6.0])
    x.backward(g)
    np.testing.assert_array_equal(x.grad, g)
    assert not np.shares_memory(x.grad, g)
    x.backward(g)
    np.testing.assert_array_equal(x.grad, 2 * g)


# ---- accumulation, release, retain_graph, retain_grad ---------------------------------------------------------


def test_leaf_gradients_accumulate_until_zeroed() -> None:
    x = leaf([1.0, -2.0])
    for k in range(1, 4):
        (x * 3.0).sum().backward()
        np.testing.assert_array_equal(x.grad, [3.0 * k, 3.0 * k])
    x.zero_grad()
    assert x.grad is None
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0])


def test_graph_is_released_after_backward() -> None:
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"already released.*retain_graph=True"):
        y.backward()


def test_saved_arrays_are_freed_after_backward() -> None:
    x = leaf(np.linspace(0, 1, 100))
    y = x.logsumexp()  # LogSumExp saves a private array (x - max): only the graph holds it
    saved = weakref.ref(y.grad_fn.saved_tensors[0])
    assert saved() is not None
    y.backward()
    assert saved() is None
    with pytest.raises(RuntimeError, match=r"LogSumExp: its saved arrays were released"):
        y.grad_fn.saved_tensors


def test_retain_graph_allows_a_second_backward() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])
    y.backward()  # the last one may release
    np.testing.assert_array_equal(x.grad, [6.0, 12.0])
    with pytest.raises(RuntimeError, match="already released"):
        y.backward()


def test_two_losses_sharing_a_subgraph() -> None:
    x = leaf([1.0, 2.0])
    h = x * 2.0
    a = h.sum()
    b = (h * h).sum()
    a.backward(retain_graph=True)
    b.backward()
    np.testing.assert_allclose(x.grad, 2.0 + 8.0 * x.data)
    with pytest.raises(RuntimeError, match="already released"):
        (h * 3.0).sum().backward()  # h's node was released by b.backward()


def test_retain_grad_on_intermediates() -> None:
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2.0
    assert h.retain_grad() is h
    k = h + 1.0  # not retained
    y = (k * h).sum()
    y.retain_grad()
    y.backward()
    np.testing.assert_allclose(h.grad, 2 * h.data + 1)  # d/dh sum((h + 1) h) = 2h + 1
    assert k.grad is None
    np.testing.assert_array_equal(y.grad, 1.0)
    np.testing.assert_allclose(x.grad, 2 * (2 * h.data + 1))
    assert x.retain_grad() is x  # harmless on a leaf


# ---- graph shape: deep chains, reused subexpressions, broadcasting ---------------------------------------------


def test_chain_of_100000_ops() -> None:
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(50_000):
        y = (y * 2.0) * 0.5  # exact in binary floating point
    y = y.sum()
    y.backward()  # no recursion limit: the topological sort is iterative
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    del y  # and freeing the 100,000-node chain does not overflow the C stack


def test_reused_subexpression_x_times_x_plus_x() -> None:
    x = leaf([-1.5, 0.0, 2.0])
    a = x * x + x
    a.backward(np.ones(3))
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_diamond_graphs() -> None:
    x = leaf([0.5, -1.0])
    b = x * 2.0
    c = b * 3.0 + b * 4.0  # b feeds two branches: the copy gate adds their gradients
    c.sum().backward()
    np.testing.assert_allclose(x.grad, [14.0, 14.0])

    # a node reused at different depths
    x = leaf([0.3, -0.7, 1.1])
    h1 = x * 3.0
    h2 = h1.tanh()
    y = (h1 * h2 + h1 + h2.exp() * h1).sum()
    y.backward()
    u = 3 * x.data
    t = np.tanh(u)
    dt = 1 - t**2
    expected = 3 * (t + u * dt + 1 + np.exp(t) * dt * u + np.exp(t))
    np.testing.assert_allclose(x.grad, expected)


def test_each_node_backward_runs_once() -> None:
    calls = []

    class Double(Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            calls.append(grad.copy())
            return 2 * grad

    x = leaf([1.0])
    d = Double.apply(x)
    y = d * d + d * 3.0 + d  # d is used four times
    y.backward(np.ones(1))
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], 2 * d.data + 4)  # all four contributions arrived before it ran
    np.testing.assert_allclose(x.grad, 2 * (2 * d.data + 4))


def test_broadcast_gradients_are_summed_back() -> None:
    a = leaf(np.ones((3, 4)))
    b = leaf(np.arange(4.0))
    c = leaf(np.ones((3, 1)))
    s = leaf(2.0)
    y = (a + b) * c * s
    y.backward(np.ones((3, 4)))
    assert b.grad.shape == (4,) and c.grad.shape == (3, 1) and s.grad.shape == ()
    np.testing.assert_allclose(b.grad, np.full(4, 3 * 2.0))
    np.testing.assert_allclose(c.grad, ((1 + np.arange(4.0)) * 2).sum() * np.ones((3, 1)))
    np.testing.assert_allclose(s.grad, ((1 + np.arange(4.0)) * 3).sum())


def test_inputs_without_requires_grad_get_no_gradient() -> None:
    x = leaf([1.0, 2.0])
    const = Tensor(np.array([3.0, 4.0]))
    (x * const + const).sum().backward()
    assert const.grad is None
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    d = x.detach()
    assert not (d * 2.0).requires_grad


# ---- no_grad ---------------------------------------------------------------------------------------------------


def test_no_grad_context_manager() -> None:
    x = leaf([1.0, 2.0])
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2.0).exp().sum()
        assert not y.requires_grad and y.grad_fn is None
        with enable_grad():
            assert (x * 2.0).grad_fn is not None
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert (x * 2.0).requires_grad


def test_no_grad_decorator_and_exceptions() -> None:
    @no_grad()
    def step(t: Tensor) -> Tensor:
        """Docstring kept."""
        assert not is_grad_enabled()
        return t * 2.0

    x = leaf([1.0])
    assert step.__name__ == "step" and step.__doc__ == "Docstring kept."
    out = step(x)
    assert out.grad_fn is None and not out.requires_grad
    assert is_grad_enabled()

    @no_grad()
    def recurse(n: int) -> bool:
        return recurse(n - 1) if n else is_grad_enabled()

    assert recurse(3) is False and is_grad_enabled()

    @enable_grad()
    def record(t: Tensor) -> Tensor:
        return t * 2.0

    with no_grad():
        assert record(x).grad_fn is not None  # enable_grad as a decorator re-enables inside no_grad
        assert not is_grad_enabled()

    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError("boom")
    assert is_grad_enabled()  # restored after an exception


# ---- dtypes ----------------------------------------------------------------------------------------------------


def test_float32_in_float32_out_and_python_scalars_do_not_upcast() -> None:
    x = leaf([0.5, 1.5], dtype=np.float32)
    results = [x * 2.5, 2.5 * x, x + 1, 1 - x, x / 3.0, 3.0 / x, x**2, x**0.5, 2.0**x, -x, x.exp(), x.log(),
               x.sigmoid(), x.tanh(), x.mean(), x.var(), x.softmax(), x.logsumexp(), x.clip(0.7, 1.0),
               cr.maximum(x, 1.0), cr.where(x > 1, x, 0.0)]
    for r in results:
        assert r.dtype == np.float32, r
    loss = sum((r.sum() for r in results), Tensor(np.float32(0.0)))
    assert loss.dtype == np.float32
    loss.backward()
    assert x.grad.dtype == np.float32


def test_mixed_precision_follows_numpy_and_grads_keep_the_leaf_dtype() -> None:
    a = leaf([1.0, 2.0], dtype=np.float32)
    b = leaf([3.0, 4.0], dtype=np.float64)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])

    c = leaf([1.0, 2.0], dtype=np.float32)
    d = c.astype(np.float64)
    assert d.dtype == np.float64
    (d * d).sum().backward()
    assert c.grad.dtype == np.float32
    np.testing.assert_array_equal(c.grad, [2.0, 4.0])


@pytest.mark.parametrize("data", [np.arange(3), np.array([1, 2], dtype=np.int32), np.array([True, False])])
def test_integer_and_bool_tensors_cannot_require_grad(data) -> None:
    with pytest.raises(TypeError, match=rf"only floating-point tensors can require grad, got dtype {data.dtype}"):
        Tensor(data, requires_grad=True)
    t = Tensor(data)  # but they exist
    with pytest.raises(TypeError, match="floating-point"):
        t.requires_grad_()
    assert not t.requires_grad


def test_integer_tensors_in_ops() -> None:
    i = Tensor(np.array([1, 2, 3]))
    assert (i + 1).dtype.kind == "i" and not (i + 1).requires_grad
    x = leaf([1.0, 1.0, 1.0])
    y = x * i
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0, 3.0])
    assert i.grad is None
    as_int = x.astype(np.int64)  # a non-float result is off the graph
    assert as_int.dtype == np.int64 and not as_int.requires_grad and as_int.grad_fn is None


# ---- no reference cycles: the graph is freed by reference counting alone --------------------------------------


@pytest.mark.parametrize("run_backward", [False, True])
@pytest.mark.parametrize("retain", [False, True])
def test_graph_has_no_reference_cycles(run_backward: bool, retain: bool) -> None:
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        x = leaf(np.linspace(-1, 1, 6).reshape(2, 3))
        w = leaf(np.ones((3, 2)))
        h = (x @ w).tanh()
        if retain:
            h.retain_grad()
        y = (h * h + h)[0].logsumexp() + x.max() + cr.concatenate([h, h]).sum()
        refs = [weakref.ref(y), weakref.ref(h), weakref.ref(y.grad_fn), weakref.ref(h.grad_fn)]
        if run_backward:
            y.backward(retain_graph=retain)
        del y, h
        assert [r() for r in refs] == [None] * len(refs), "graph objects were kept alive by a reference cycle"
        assert x.grad is not None or not run_backward  # the leaves, held by the test, are fine
    finally:
        if was_enabled:
            gc.enable()


# ---- gradient arrays of different tensors never alias -----------------------------------------------------------


def _independent(*arrays: np.ndarray) -> bool:
    return all(not np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])


@pytest.mark.parametrize("build", [
    lambda a, b: a + b,
    lambda a, b: a - (-b),
    lambda a, b: a.reshape(3, 2).reshape(2, 3) + b,
    lambda a, b: a.T.T + b,
    lambda a, b: a[:, :] + b[...],
    lambda a, b: cr.concatenate([a, b], axis=0)[0:2] + cr.concatenate([a, b], axis=0)[2:4],
    lambda a, b: cr.stack([a, b]).sum(axis=0),
    lambda a, b: cr.where(np.ones((2, 3), bool), a, b) + b,
    lambda a, b: a.sum(axis=0, keepdims=True) + b,
])
def test_leaf_gradients_never_alias(build) -> None:
    a = leaf(np.arange(6.0).reshape(2, 3))
    b = leaf(np.ones((2, 3)))
    g = np.ones((2, 3))
    build(a, b).backward(g)
    assert _independent(a.grad, b.grad, g, a.data, b.data)
    before = b.grad.copy()
    a.grad += 100.0  # an in-place change to one gradient...
    np.testing.assert_array_equal(b.grad, before)  # ...leaves the other alone
    g += 5.0  # and the caller's upstream array is not part of any gradient
    np.testing.assert_array_equal(b.grad, before)


def test_the_same_leaf_twice_and_retained_intermediates_do_not_alias() -> None:
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    h = a * 1.0
    h.retain_grad()
    y = h + b + a
    y.backward(np.ones(2))
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    assert _independent(a.grad, b.grad, h.grad)
    # a second backward accumulates in place into a.grad without touching b.grad or h.grad
    (a * 2.0 + b).backward(np.ones(2))
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])
    np.testing.assert_array_equal(h.grad, [1.0, 1.0])


def test_gradient_is_writable_and_owned() -> None:
    x = leaf(np.ones((2, 2)))
    x.sum().backward()  # Sum's backward is a read-only broadcast view: the engine must copy it
    assert x.grad.flags.writeable and x.grad.flags.owndata
    x.grad *= 3
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 3.0))
