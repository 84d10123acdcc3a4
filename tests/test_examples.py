"""The classic worked examples of backpropagation (CS231n lectures 3-4), with the numbers from the lecture."""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule import Tensor


def scalar(v: float) -> Tensor:
    return Tensor(np.array(v, dtype=np.float64), requires_grad=True)


def test_add_then_multiply_circuit() -> None:
    """f(x, y, z) = (x + y) z at (-2, 5, -4): q = 3, f = -12; df/dq = z = -4, df/dz = q = 3, df/dx = df/dy = -4."""
    x, y, z = scalar(-2.0), scalar(5.0), scalar(-4.0)
    q = x + y
    q.retain_grad()
    f = q * z
    assert q.item() == 3.0 and f.item() == -12.0
    f.backward()
    assert q.grad == -4.0
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)


def test_sigmoid_neuron_from_primitive_gates() -> None:
    """f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) with w = [2, -3, -3], x = [-1, -2], every gate a node.

    Forward (the lecture's circuit): w0 x0 = -2, w1 x1 = 6, sum 4, + w2 = 1, * -1 = -1, exp = 0.37, + 1 = 1.37,
    1/x = 0.73. Backward: 1/x gives -1/1.37^2 = -0.53, exp passes -0.53 * 0.37 = -0.20, * -1 gives 0.20, and the
    add and multiply gates distribute it: dw = [-0.20, -0.39, 0.20], dx = [0.39, -0.59].
    """
    w0, w1, w2 = scalar(2.0), scalar(-3.0), scalar(-3.0)
    x0, x1 = scalar(-1.0), scalar(-2.0)
    dot = w0 * x0 + w1 * x1 + w2
    neg = dot * -1.0
    e = neg.exp()
    denom = e + 1.0
    f = 1.0 / denom
    for t in (dot, neg, e, denom):
        t.retain_grad()
    assert dot.item() == 1.0 and neg.item() == -1.0
    np.testing.assert_allclose([e.item(), denom.item(), f.item()], [0.3679, 1.3679, 0.7311], atol=1e-4)
    f.backward()
    np.testing.assert_allclose([denom.grad, e.grad, neg.grad, dot.grad], [-0.5344, -0.5344, -0.1966, 0.1966],
                               atol=1e-4)
    # the sigmoid shortcut: df/d(dot) = (1 - f) f
    np.testing.assert_allclose(dot.grad, (1 - f.item()) * f.item(), rtol=1e-12)
    ddot = (1 - f.item()) * f.item()
    np.testing.assert_allclose([w0.grad, w1.grad, w2.grad], [-1 * ddot, -2 * ddot, ddot], rtol=1e-12)
    np.testing.assert_allclose([x0.grad, x1.grad], [2 * ddot, -3 * ddot], rtol=1e-12)
    np.testing.assert_allclose([w0.grad, w1.grad, w2.grad], [-0.20, -0.39, 0.20], atol=0.005)
    np.testing.assert_allclose([x0.grad, x1.grad], [0.39, -0.59], atol=0.005)


def test_sigmoid_neuron_vectorized_agrees_with_the_gates() -> None:
    w = Tensor(np.array([2.0, -3.0, -3.0]), requires_grad=True)
    x = Tensor(np.array([-1.0, -2.0]), requires_grad=True)
    f = cr.sigmoid(w[:2] @ x + w[2])
    f.backward()
    ddot = (1 - f.item()) * f.item()
    np.testing.assert_allclose(w.grad, [-ddot, -2 * ddot, ddot], rtol=1e-12)
    np.testing.assert_allclose(x.grad, [2 * ddot, -3 * ddot], rtol=1e-12)


def test_squared_norm_of_W_x_lecture_numbers() -> None:
    """f(x, W) = ||W x||^2 with W = [[0.1, 0.5], [-0.3, 0.8]], x = [0.2, 0.4]: q = W x = [0.22, 0.26], f = 0.116,
    df/dq = 2q = [0.44, 0.52], df/dW = 2 q x^T = [[0.088, 0.176], [0.104, 0.208]], df/dx = 2 W^T q = [-0.112, 0.636]."""
    W = Tensor(np.array([[0.1, 0.5], [-0.3, 0.8]]), requires_grad=True)
    x = Tensor(np.array([0.2, 0.4]), requires_grad=True)
    q = W @ x
    q.retain_grad()
    f = (q * q).sum()
    np.testing.assert_allclose(q.data, [0.22, 0.26], rtol=1e-12)
    np.testing.assert_allclose(f.item(), 0.116, rtol=1e-12)
    f.backward()
    np.testing.assert_allclose(q.grad, [0.44, 0.52], rtol=1e-12)
    np.testing.assert_allclose(W.grad, [[0.088, 0.176], [0.104, 0.208]], rtol=1e-12)
    np.testing.assert_allclose(x.grad, [-0.112, 0.636], rtol=1e-12)


def test_squared_norm_of_W_x_analytic_gradient() -> None:
    rng = np.random.default_rng(0)
    W = Tensor(rng.standard_normal((5, 7)), requires_grad=True)
    x = Tensor(rng.standard_normal(7), requires_grad=True)
    f = ((W @ x) ** 2).sum()
    f.backward()
    q = W.data @ x.data
    np.testing.assert_allclose(f.item(), q @ q, rtol=1e-12)
    np.testing.assert_allclose(W.grad, 2 * np.outer(q, x.data), rtol=1e-12)  # 2 (W x) x^T
    np.testing.assert_allclose(x.grad, 2 * W.data.T @ q, rtol=1e-12)
    assert cr.gradcheck(lambda a, b: ((a @ b) ** 2).sum(), W, x)


def test_matmul_rules() -> None:
    """y = x w with x (N, D), w (D, M): dL/dx = dL/dy w^T (N, D) and dL/dw = x^T dL/dy (D, M) -- the only
    products of dL/dy with the other factor whose shapes fit."""
    rng = np.random.default_rng(1)
    N, D, M = 4, 3, 5
    x = Tensor(rng.standard_normal((N, D)), requires_grad=True)
    w = Tensor(rng.standard_normal((D, M)), requires_grad=True)
    dy = rng.standard_normal((N, M))
    y = x @ w
    y.backward(dy)
    assert x.grad.shape == (N, D) and w.grad.shape == (D, M)
    np.testing.assert_allclose(x.grad, dy @ w.data.T, rtol=1e-12)
    np.testing.assert_allclose(w.grad, x.data.T @ dy, rtol=1e-12)


def test_gates_as_gradient_routers() -> None:
    """add distributes, max routes to the winner, multiply swaps the inputs (lecture 4's patterns)."""
    x, y, z, w = scalar(3.0), scalar(-4.0), scalar(2.0), scalar(-1.0)
    out = (x * y + cr.maximum(z, w)) * 2.0
    out.backward()
    assert (x.grad, y.grad) == (-8.0, 6.0)  # multiply gate: each gets the other input times upstream (2)
    assert (z.grad, w.grad) == (2.0, 0.0)  # max gate: the winner gets it all


def test_two_layer_net_gradients_match_numerical() -> None:
    """A small two-layer net with softmax cross-entropy, checked against numerical gradients."""
    rng = np.random.default_rng(2)
    X = Tensor(rng.standard_normal((6, 4)))
    y = rng.integers(0, 3, 6)
    W1 = Tensor(rng.standard_normal((4, 5)) * 0.5, requires_grad=True)
    b1 = Tensor(np.full(5, 0.1), requires_grad=True)
    W2 = Tensor(rng.standard_normal((5, 3)) * 0.5, requires_grad=True)

    def loss(W1: Tensor, b1: Tensor, W2: Tensor) -> Tensor:
        h = cr.maximum(X @ W1 + b1, 0.0)
        return -cr.log_softmax(h @ W2, axis=1)[np.arange(6), y].mean() + 0.01 * (W1 * W1).sum()

    assert cr.gradcheck(loss, W1, b1, W2)
