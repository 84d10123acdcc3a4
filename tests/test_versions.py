"""Version counters: an in-place change after the forward pass makes backward raise before any gradient is computed,
naming the op and the fix, wherever PyTorch raises; changes that do not touch what a node saved are fine."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor, nn, no_grad
from chainrule.optim import SGD, Adam

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

STALE = r"modified in place after .* was computed .* Fix: call backward\(\) before the change"


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


def test_issue_reproducer_raises_before_any_gradient_changes() -> None:
    """l2's graph saved w; SGD changed w in place; torch raises, and so must we, leaving every .grad as it was."""
    w = leaf([1.0, 2.0])
    l1 = (w * w).sum()
    l2 = (w**3).sum()
    l1.backward()
    SGD([w], lr=0.5).step()
    before = w.grad.copy()
    with pytest.raises(RuntimeError, match=r"backward: Pow saved its input 0 \(a float64 tensor of shape \(2,\)\).*"
                                           r"now at version 1.*optimizer steps.*Fix: call backward\(\) before"):
        l2.backward()
    np.testing.assert_array_equal(w.grad, before)  # no wrong number reached the user ([2, 4] + [3, 3] would be wrong)
    assert w._version == 1


@pytest.mark.skipif(torch is None, reason="PyTorch (the oracle) is not installed")
def test_torch_raises_on_the_same_reproducer() -> None:
    w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    l1 = (w * w).sum()
    l2 = (w**3).sum()
    l1.backward()
    torch.optim.SGD([w], lr=0.5).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        l2.backward()


def test_backward_of_the_recomputed_graph_gives_the_right_gradient() -> None:
    w = leaf([1.0, 2.0])
    (w * w).sum().backward()
    SGD([w], lr=0.5).step()  # w = [1, 2] - 0.5 * [2, 4] = [0, 0]
    w.grad = None
    (w**3).sum().backward()  # recomputed after the step: fine
    np.testing.assert_array_equal(w.grad, 3 * w.data**2)


def test_a_stale_node_deep_in_the_graph_still_raises_before_anything_accumulates() -> None:
    w, v = leaf([1.0, 2.0]), leaf([3.0])
    loss = (v * 2.0).sum() + (w.exp() * w).sum()  # Mul saved w; v's branch is fine
    with no_grad():
        w.add_(1.0)
    with pytest.raises(RuntimeError, match=r"Mul saved its input 1"):
        loss.backward()
    assert v.grad is None and w.grad is None


@pytest.mark.parametrize("change", [
    lambda w: w.zero_(), lambda w: w.fill_(3.0), lambda w: w.copy_(np.ones(2)), lambda w: w.add_(1.0, alpha=2),
    lambda w: w.sub_(w.grad if w.grad is not None else 1.0), lambda w: w.mul_(2.0), lambda w: w.div_(2.0),
    lambda w: w.clamp_(0.0, 1.0), lambda w: w.__setitem__(0, 5.0),
])
def test_every_in_place_method_bumps_the_version(change) -> None:
    w = leaf([1.0, 2.0])
    y = (w * w).sum()
    with no_grad():
        change(w)
    assert w._version == 1
    with pytest.raises(RuntimeError, match=STALE):
        y.backward()


def test_optimizers_and_load_state_dict_bump_versions() -> None:
    model = nn.Linear(3, 2, seed=0)
    x = np.ones((4, 3), dtype=np.float32)
    loss = model(x).sum()
    opt = Adam(model.parameters(), lr=1e-3)
    loss.backward(retain_graph=True)
    opt.step()
    assert model.weight._version == 1 and model.bias._version == 1
    with pytest.raises(RuntimeError, match=r"Linear saved its input 1 \(a float32 tensor of shape \(3, 2\)\)"):
        loss.backward()

    loss = model(x).sum()
    model.load_state_dict(model.state_dict())
    assert model.weight._version == 2
    with pytest.raises(RuntimeError, match=STALE):
        loss.backward()


def test_zero_grad_and_gradient_clipping_do_not_touch_versions() -> None:
    w = leaf([1.0, 2.0])
    y = (w * w).sum()
    opt = SGD([w], lr=0.1)
    y.backward(retain_graph=True)
    cr.optim.clip_grad_norm([w], 1.0)
    opt.zero_grad(set_to_none=False)
    assert w._version == 0
    y.backward()  # the graph is intact


def test_in_place_methods_refuse_a_tensor_that_requires_grad_while_recording() -> None:
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"add_: in-place changes of a tensor that requires grad are not recorded"
                                           r".*no_grad"):
        w.add_(1.0)
    with pytest.raises(RuntimeError, match=r"t\[index\] = value: in-place"):
        w[0] = 1.0
    assert w._version == 0
    c = Tensor(np.zeros(2))  # a constant can be changed any time
    c[1] = 4.0
    c.add_(Tensor(np.ones(2)))
    assert c.tolist() == [1.0, 5.0] and c._version == 2


def test_in_place_method_casting_rule() -> None:
    i = Tensor(np.array([1, 2]))
    with pytest.raises(TypeError, match=r"add_: cannot store the result in this int64 tensor in place"):
        i.add_(0.5)
    assert i._version == 0


def test_a_change_of_a_constant_input_the_node_saved_raises() -> None:
    x = Tensor(np.array([1.0, 2.0]))  # no grad, but Mul needs it for w's gradient
    w = leaf([3.0, 4.0])
    y = (x * w).sum()
    x.mul_(10.0)
    with pytest.raises(RuntimeError, match=r"Mul saved its input 0"):
        y.backward()


def test_a_change_of_a_saved_output_raises() -> None:
    w = leaf([0.0, 1.0])
    e = w.exp()  # Exp saves its output
    y = (e * 2.0).sum()
    with no_grad():
        e.zero_()
    with pytest.raises(RuntimeError, match=r"Exp saved its output \(a float64 tensor of shape \(2,\)\)"):
        y.backward()


def test_views_share_the_version_counter() -> None:
    w = leaf(np.arange(6.0).reshape(2, 3))
    for view in (w.reshape(3, 2), w.T, w[0], w[:, 1:], w.unsqueeze(0), w.broadcast_to((2, 2, 3)), w.squeeze()):
        y = (view * view).sum()
        with no_grad():
            w.add_(1.0)  # through the base...
        with pytest.raises(RuntimeError, match=STALE):
            y.backward()
    detached, shared = w.detach(), Tensor(w)
    y = (w * w).sum()
    with no_grad():
        detached[0, 0] = 9.0  # ...or through a view
    assert w._version == detached._version == shared._version
    with pytest.raises(RuntimeError, match=STALE):
        y.backward()
    copy = w[[0, 1]]  # advanced indexing copies: its own counter
    y = (copy * copy).sum()
    with no_grad():
        w.add_(1.0)
    y.backward()
    assert cr.tensor(w)._version == 0  # cr.tensor copies


def test_changes_that_do_not_touch_saved_arrays_are_fine() -> None:
    w, b, u = leaf([1.0, 2.0]), leaf([0.5, 0.5]), leaf([3.0])
    y = (w.exp() + b).sum()  # Exp saves its output, not w; Add saves nothing
    with no_grad():
        w.add_(1.0)
        b.add_(1.0)
        u.add_(1.0)  # not in the graph at all
    y.backward()
    np.testing.assert_allclose(w.grad, np.exp([1.0, 2.0]))  # torch agrees: exp's backward uses its result
    assert b.grad.tolist() == [1.0, 1.0]


def test_rebinding_data_is_not_an_in_place_change() -> None:
    model = nn.Linear(2, 1, seed=0)
    w0 = model.weight.data.copy()
    loss = model(np.ones((1, 2), dtype=np.float32)).sum()
    model.to(np.float64)  # new arrays: the graph still holds the old, unchanged ones
    loss.backward()
    np.testing.assert_array_equal(model.weight.grad, np.ones((2, 1)))
    np.testing.assert_array_equal(w0, model.weight.data)


def test_retain_graph_then_step_then_second_backward_raises() -> None:
    w = leaf([1.0, 2.0])
    y = (w * w * w).sum()
    y.backward(retain_graph=True)
    SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match=STALE):
        y.backward()


def test_a_change_through_data_by_hand_is_not_seen_documented() -> None:
    """The documented limitation (as PyTorch's .data): t.data[...] = v bypasses the counter, and backward then
    computes with the new values."""
    w = leaf([1.0, 2.0])
    y = (w**3).sum()
    w.data[...] = [2.0, 3.0]
    y.backward()
    np.testing.assert_array_equal(w.grad, [12.0, 27.0])  # 3 w^2 at the new values
    assert w._version == 0


def test_in_place_change_then_replacing_the_array_is_not_seen_documented() -> None:
    """The documented gap (docs/engine.md, chainrule.engine): the check compares saved arrays with the tensor's
    current array, so an in-place change followed by t.data = other escapes it."""
    w = leaf([1.0, 2.0])
    y = (w**3).sum()
    with no_grad():
        w.add_(1.0)  # the saved array is now [2, 3]...
    w.data = np.array([5.0, 5.0])  # ...and w no longer holds it
    y.backward()
    np.testing.assert_array_equal(w.grad, [12.0, 27.0])
