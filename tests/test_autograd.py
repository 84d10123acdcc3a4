"""chainrule.autograd.grad and backward(create_graph=True): PyTorch's semantics, whole-model second derivatives
against PyTorch (HVP of an MLP loss, gradient penalty), a third derivative, gradgradcheck catching a wrong second
derivative, once-differentiable errors, version counters and thread-local grad mode under create_graph."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import Function, Tensor, nn
from chainrule.autograd import once_differentiable
from chainrule.ops import xp


def leaf(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# ---- semantics ------------------------------------------------------------------------------------------------

def test_grad_returns_a_tuple_and_touches_no_grad() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    out = cr.autograd.grad(y, x)
    assert isinstance(out, tuple) and len(out) == 1
    np.testing.assert_array_equal(out[0].data, [2.0, 4.0])
    assert x.grad is None and not out[0].requires_grad


def test_grad_of_several_outputs_with_grad_outputs_and_an_intermediate_input() -> None:
    x = leaf([1.0, -2.0, 0.5])
    h = x.tanh()
    a, b = h * 3.0, (h * h).sum()
    v = np.array([1.0, 2.0, -1.0])
    gh, gx = cr.autograd.grad([a, b], [h, x], grad_outputs=[v, None])
    t = np.tanh(x.data)
    np.testing.assert_allclose(gh.data, 3 * v + 2 * t)
    np.testing.assert_allclose(gx.data, (3 * v + 2 * t) * (1 - t * t))


def test_allow_unused() -> None:
    x, z = leaf([1.0]), leaf([2.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match=r"inputs\[1\].*was not used.*allow_unused=True"):
        cr.autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = cr.autograd.grad(y, [x, z], allow_unused=True)
    assert gz is None and gx.data.tolist() == [2.0]


def test_grad_checks_its_arguments() -> None:
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"outputs\[0\] does not require grad"):
        cr.autograd.grad(Tensor([1.0]), x)
    with pytest.raises(RuntimeError, match=r"inputs\[0\] does not require grad"):
        cr.autograd.grad((x * 2).sum(), Tensor([1.0]))
    with pytest.raises(ValueError, match=r"grad can be omitted only for a single-element output"):
        cr.autograd.grad(x * 2, x)
    with pytest.raises(ValueError, match=r"2 grad_outputs for 1 outputs"):
        cr.autograd.grad((x * 2).sum(), x, grad_outputs=[None, None])


def test_retain_graph_defaults_to_create_graph() -> None:
    x = leaf([1.0, 2.0])
    y = (x.exp()).sum()
    cr.autograd.grad(y, x, create_graph=True)
    cr.autograd.grad(y, x)  # the graph was retained by the create_graph call; this one releases it
    with pytest.raises(RuntimeError, match=r"already released"):
        cr.autograd.grad(y, x)


def test_backward_create_graph_makes_grad_a_graph_that_accumulates() -> None:
    x = leaf([1.0, 2.0])
    (x ** 3).sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor) and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.data, [3.0, 12.0])
    first = x.grad
    (x * x).sum().backward(create_graph=True)  # accumulates out of place: .grad is rebound to the sum
    np.testing.assert_allclose(x.grad.data, [5.0, 16.0])
    np.testing.assert_allclose(first.data, [3.0, 12.0])
    (h,) = cr.autograd.grad(x.grad.sum(), x)  # d/dx (3x^2 + 2x) = 6x + 2
    np.testing.assert_allclose(h.data, [8.0, 14.0])
    x.grad = None


def test_backward_gradient_alias_and_a_gradient_on_the_graph() -> None:
    x, v = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    (x * x).backward(gradient=v, create_graph=True)  # x.grad = 2 x v, on the graph of x and v
    (gv,) = cr.autograd.grad(x.grad.sum(), v)
    np.testing.assert_allclose(gv.data, 2 * x.data)
    with pytest.raises(TypeError, match=r"got grad and gradient"):
        (x * x).backward(np.ones(2), gradient=np.ones(2))
    x.grad = None


def test_plain_backward_after_create_graph_keeps_accumulating() -> None:
    x = leaf([1.0, 2.0])
    (x * x).sum().backward(create_graph=True)
    (x * 3).sum().backward()  # a plain backward into a .grad that is a Tensor: a new Tensor holding the sum
    np.testing.assert_allclose(x.grad.data, [5.0, 7.0])


def test_create_graph_under_no_grad_still_records_the_backward() -> None:
    x = leaf([0.5, -1.0])
    y = x.tanh().sum()
    with cr.no_grad():
        (g,) = cr.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad
    assert cr.is_grad_enabled()


def test_third_derivative_against_torch() -> None:
    torch = pytest.importorskip("torch")
    a = np.array([0.3, -0.8, 1.4])
    x = leaf(a)
    (g1,) = cr.autograd.grad((x.tanh() * x.exp()).sum(), x, create_graph=True)
    (g2,) = cr.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = cr.autograd.grad(g2.sum(), x)
    tx = torch.tensor(a, requires_grad=True)
    (t1,) = torch.autograd.grad((tx.tanh() * tx.exp()).sum(), tx, create_graph=True)
    (t2,) = torch.autograd.grad(t1.sum(), tx, create_graph=True)
    (t3,) = torch.autograd.grad(t2.sum(), tx)
    for ours, theirs in ((g1, t1), (g2, t2), (g3, t3)):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)


def test_third_derivative_of_a_power() -> None:
    x = leaf([1.0, 2.0])
    (g,) = cr.autograd.grad((x ** 4).sum(), x, create_graph=True)
    (h,) = cr.autograd.grad(g.sum(), x, create_graph=True)
    (t,) = cr.autograd.grad(h.sum(), x)
    np.testing.assert_allclose(t.data, 24 * x.data)


# ---- whole models against PyTorch ---------------------------------------------------------------------------------

def _torch_twin(net: nn.MLP, torch, act):
    """PyTorch Linear layers with the chainrule MLP's weights (chainrule's weight is (in, out))."""
    layers = [m for m in net.modules() if isinstance(m, nn.Linear)]
    ws = [torch.tensor(m.weight.data, requires_grad=True) for m in layers]
    bs = [torch.tensor(m.bias.data, requires_grad=True) for m in layers]

    def forward(x):
        for i, (w, b) in enumerate(zip(ws, bs)):
            x = x @ w + b
            if i < len(ws) - 1:
                x = act(x)
        return x

    return forward, [p for wb in zip(ws, bs) for p in wb]


def test_hvp_of_an_mlp_cross_entropy_loss_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    net = nn.MLP([5, 7, 6, 3], activation="tanh", seed=0, dtype=np.float64)
    params = [p for m in net.modules() if isinstance(m, nn.Linear) for p in (m.weight, m.bias)]
    v = [rng.standard_normal(p.shape) for p in params]
    grads = cr.autograd.grad(F.cross_entropy(net(Tensor(x)), y), params, create_graph=True)
    hv = cr.autograd.grad(sum((g * vi).sum() for g, vi in zip(grads, v)), params)

    forward, tparams = _torch_twin(net, torch, torch.tanh)
    tloss = torch.nn.functional.cross_entropy(forward(torch.tensor(x)), torch.tensor(y))
    tgrads = torch.autograd.grad(tloss, tparams, create_graph=True)
    thv = torch.autograd.grad(sum((g * torch.tensor(vi)).sum() for g, vi in zip(tgrads, v)), tparams)
    for ours, theirs in zip(hv, thv):
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-9, atol=1e-12)


def test_gradient_penalty_of_a_relu_net_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((12, 3))
    net = nn.MLP([3, 16, 8, 1], activation="relu", seed=2, dtype=np.float64)
    x = Tensor(xs.copy(), requires_grad=True)
    (dx,) = cr.autograd.grad(net(x).sum(), x, create_graph=True)
    penalty = (((dx * dx).sum(axis=1).sqrt() - 1) ** 2).mean()
    penalty.backward()
    layers = [m for m in net.modules() if isinstance(m, nn.Linear)]

    forward, tparams = _torch_twin(net, torch, torch.relu)
    tx = torch.tensor(xs, requires_grad=True)
    (tdx,) = torch.autograd.grad(forward(tx).sum(), tx, create_graph=True)
    tpenalty = ((tdx.norm(dim=1) - 1) ** 2).mean()
    tpenalty.backward()
    np.testing.assert_allclose(penalty.item(), tpenalty.item(), rtol=1e-12)
    # x and the biases reach the penalty only through ReLU masks (piecewise constant): PyTorch's zeros, our None
    assert x.grad is None and np.all(tx.grad.numpy() == 0)
    for m, (tw, tb) in zip(layers, zip(tparams[::2], tparams[1::2])):
        np.testing.assert_allclose(np.asarray(m.weight.grad), tw.grad.numpy(), rtol=1e-9, atol=1e-12)
        assert m.bias.grad is None and (tb.grad is None or np.all(tb.grad.numpy() == 0))


# ---- gradgradcheck and once-differentiable ------------------------------------------------------------------------

class BadSquare(Function):
    """x^2 whose backward reads x as a bare array: first derivative right, second wrong (0 instead of 2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * xp.value(x)


def test_gradgradcheck_catches_a_wrong_second_derivative() -> None:
    x = leaf([0.3, -1.2, 2.0])
    assert cr.gradcheck(BadSquare.apply, x)
    with pytest.raises(cr.GradcheckError, match=r"gradgradcheck \(second derivatives"):
        cr.gradgradcheck(BadSquare.apply, x)
    assert cr.gradgradcheck(lambda x: x * x, x)


def test_gradgradcheck_fails_on_a_detached_factor() -> None:
    x = leaf([0.3, -1.2, 2.0])
    with pytest.raises(cr.GradcheckError):
        cr.gradgradcheck(lambda x: x * x.detach(), x)
    # and it is the PyTorch answer: d/dx of x * const(x) is the constant, whose own derivative is 0
    (g,) = cr.autograd.grad((x * x.detach()).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, x.data)
    assert not g.requires_grad  # as in PyTorch: nothing of the gradient depends on x


class OnceCube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        assert isinstance(x, np.ndarray) and isinstance(grad, np.ndarray)
        return grad * 3 * np.square(x)


def test_once_differentiable_raises_naming_the_op() -> None:
    x = leaf([1.0, 2.0])
    y = (OnceCube.apply(x) * 2).sum()
    (g,) = cr.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.data, 6 * x.data ** 2)
    with pytest.raises(RuntimeError, match=r"OnceCube.backward is marked once_differentiable"):
        cr.autograd.grad(g.sum(), x)
    x.grad = None
    OnceCube.apply(x).sum().backward()  # first order: as any op
    np.testing.assert_allclose(x.grad, 3 * x.data ** 2)


class NumpyInBackward(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * np.cos(x)  # a NumPy function on what is a Tensor under create_graph


class SavesAnIntermediate(Function):
    @staticmethod
    def forward(ctx, x):
        c = np.cos(x)
        ctx.save_for_backward(c)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (c,) = ctx.saved_tensors
        return grad * c


def test_a_backward_that_cannot_be_recorded_raises_naming_the_op() -> None:
    x = leaf([0.1, 0.7])
    NumpyInBackward.apply(x).sum().backward()  # fine to first order
    with pytest.raises(RuntimeError, match=r"NumpyInBackward.backward, run with create_graph=True, called a NumPy "
                                           r"function on a Tensor"):
        cr.autograd.grad(NumpyInBackward.apply(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"SavesAnIntermediate: create_graph=True needs the values.*saved_on_graph"):
        cr.autograd.grad(SavesAnIntermediate.apply(x).sum(), x, create_graph=True)
    np.asarray(x)  # the create_graph state ends with the backward, even when it raised


# ---- version counters and threads --------------------------------------------------------------------------------

def test_in_place_change_after_create_graph_is_caught_when_differentiating_again() -> None:
    x = leaf([0.5, 1.5])
    (g,) = cr.autograd.grad((x.exp() * x).sum(), x, create_graph=True)
    with cr.no_grad():
        x.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"modified in place"):
        cr.autograd.grad(g.sum(), x)


def test_create_graph_in_one_thread_leaves_other_threads_alone() -> None:
    """The create_graph state (grad mode on, NumPy conversion of Tensors refused) is per thread."""
    entered, release = threading.Event(), threading.Event()
    seen = {}

    class Slow(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            entered.set()
            release.wait(10)
            return grad * 2

    def worker():
        x = leaf([1.0])
        seen["grad"] = cr.autograd.grad(Slow.apply(x).sum(), x, create_graph=True)[0].requires_grad

    t = threading.Thread(target=worker)
    with cr.no_grad():
        t.start()
        assert entered.wait(10)
        try:
            assert not cr.is_grad_enabled()  # the other thread's create_graph did not switch this one's mode
            np.asarray(leaf([1.0]))          # nor does it refuse conversions here
        finally:
            release.set()
            t.join(10)
    assert seen["grad"] is False  # 2 * grad: the upstream gradient is a constant seed, so nothing to differentiate


def test_retain_grad_under_create_graph_and_autograd_grad() -> None:
    x = leaf([1.0, 2.0])
    h = (x * x).retain_grad()
    y = (h * h).sum()
    cr.autograd.grad(y, x, retain_graph=True)
    assert h.grad is None and x.grad is None  # autograd.grad returns gradients, it stores none
    y.backward(create_graph=True)
    assert isinstance(h.grad, Tensor) and h.grad.requires_grad  # dy/dh = 2h, on the graph
    np.testing.assert_allclose(h.grad.data, 2 * x.data ** 2)
    (g,) = cr.autograd.grad(h.grad.sum(), x)  # d/dx sum(2 x^2) = 4x
    np.testing.assert_allclose(g.data, 4 * x.data)
    x.grad = h.grad = None


def test_a_create_graph_backward_leaves_no_reference_cycles() -> None:
    """autograd.grad(create_graph=True) graphs are freed by reference counting, as first-order graphs are."""
    import gc

    x, w = leaf(np.random.default_rng(0).standard_normal((4, 3))), leaf(np.ones((3, 2)))

    def second_order():
        loss = F.cross_entropy(F.gelu(F.linear(x, w)), np.array([0, 1, 1, 0]))
        gx, gw = cr.autograd.grad(loss, [x, w], create_graph=True)
        cr.autograd.grad((gw * gw).sum() + (gx * gx).sum(), [x, w])

    second_order()  # warm up (caches made on first use)
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        second_order()
        assert gc.collect() == 0
    finally:
        if was:
            gc.enable()


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSProp"])
def test_optimizers_and_clipping_take_gradients_left_by_create_graph(name) -> None:
    from chainrule import optim

    def trained(create_graph):
        net = nn.MLP([3, 4, 2], seed=0, dtype=np.float64)
        opt = getattr(optim, name)(net.parameters(), lr=0.1)
        loss = (net(Tensor(np.linspace(-1, 1, 15).reshape(5, 3))) ** 2).sum()
        loss.backward(create_graph=create_graph)
        norm = optim.clip_grad_norm(net.parameters(), 0.5)
        opt.step()
        return norm, [p.data.copy() for p in net.parameters()], net, opt

    norm, weights, net, opt = trained(True)
    norm_plain, weights_plain, _, _ = trained(False)
    assert norm == norm_plain
    for a, b in zip(weights, weights_plain):
        np.testing.assert_array_equal(a, b)
    first = next(iter(net.parameters()))
    assert isinstance(first.grad, Tensor)
    opt.zero_grad(set_to_none=False)  # a gradient on a graph becomes zeros off it
    assert isinstance(first.grad, np.ndarray) and not first.grad.any()


def test_clipping_a_gradient_on_a_graph_bumps_its_version() -> None:
    from chainrule import optim

    x = leaf([3.0, 4.0])
    (x * x).sum().backward(create_graph=True)
    g = x.grad
    optim.clip_grad_norm([x], 1.0)  # scales g's array in place
    np.testing.assert_allclose(g.data, [0.6, 0.8], rtol=1e-6)
    assert g._version == 1


def test_an_input_listed_twice_gets_its_gradient_twice() -> None:
    x = leaf([1.0, 2.0])
    h = x * 3.0
    g1, g2, gh = cr.autograd.grad((h * x).sum(), [x, x, h])
    np.testing.assert_allclose(g1.data, 6 * x.data)
    np.testing.assert_allclose(g2.data, 6 * x.data)
    np.testing.assert_allclose(gh.data, x.data)
    assert g1 is not g2


def test_grad_refuses_complex_grad_outputs_and_names_the_wrongly_typed_argument():
    from chainrule import autograd

    x = Tensor(np.arange(3.0), requires_grad=True)
    with pytest.raises(TypeError, match=r"grad: grad_outputs is complex.*real"):
        autograd.grad((x * 2).sum() * 1, x, grad_outputs=np.array(1 + 2j))
    y = x * 2
    with pytest.raises(TypeError, match=r"grad_outputs is complex"):
        autograd.grad(y, x, grad_outputs=np.ones(3) * (1 + 1j))
    with pytest.raises(TypeError, match=r"grad_outputs\[1\] is complex"):
        autograd.grad([x * 2, x * 3], x, grad_outputs=[np.ones(3), np.ones(3, np.complex64)])
    with pytest.raises(TypeError, match=r"grad: grad_outputs must be a Tensor, a NumPy array or a number.*'abc'"):
        autograd.grad(y, x, grad_outputs="abc")
    with pytest.raises(TypeError, match=r"grad_outputs\[0\] must be a Tensor.*got dict"):
        autograd.grad([x * 2, x * 3], x, grad_outputs=[{"a": 1}, np.ones(3)])
    with pytest.raises(TypeError, match=r"backward: gradient is complex"):
        (x * 2).backward(np.ones(3, np.complex128))
    assert x.grad is None
    np.testing.assert_array_equal(autograd.grad(x * 2, x, grad_outputs=np.ones(3, np.int64))[0].data, [2, 2, 2])
