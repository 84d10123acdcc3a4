"""The scalar engine: worked examples from the lecture, gradient checks, graph semantics."""
import gc
import math

import pytest

from chainrule.value import Value
from chainrule.value_nn import MLP, Neuron


def numeric_grads(f, xs, h=1e-6):
    """Centered differences of f (a function of Values) at the floats xs."""
    grads = []
    for i in range(len(xs)):
        up, down = list(xs), list(xs)
        up[i] += h
        down[i] -= h
        grads.append((f(*map(Value, up)).data - f(*map(Value, down)).data) / (2 * h))
    return grads


def analytic_grads(f, xs):
    inputs = [Value(x) for x in xs]
    out = f(*inputs)
    out.backward()
    return out, [v.grad for v in inputs]


# ----- the lecture's worked examples ----------------------------------------------------

def test_add_then_multiply_circuit():
    x, y, z = Value(-2.0), Value(5.0), Value(-4.0)
    q = x + y
    f = q * z
    f.backward()
    assert f.data == -12.0
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)
    assert q.grad == -4.0 and f.grad == 1.0


def test_sigmoid_neuron_from_primitive_gates():
    w0, w1, w2 = Value(2.0), Value(-3.0), Value(-3.0)
    x0, x1 = Value(-1.0), Value(-2.0)
    dot = w0 * x0 + w1 * x1 + w2                 # = 1
    neg = dot * -1                               # the "*-1" gate
    e = neg.exp()
    denom = 1 + e                                # the "+1" gate
    f = 1 / denom                                # the "1/x" gate
    f.backward()

    s = 1 / (1 + math.exp(-1.0))
    local = s * (1 - s)                          # d sigma / d dot = (1 - f) f
    assert f.data == pytest.approx(s, abs=1e-15)
    assert [w0.grad, w1.grad, w2.grad] == pytest.approx([-1 * local, -2 * local, local], abs=1e-12)
    assert [x0.grad, x1.grad] == pytest.approx([2 * local, -3 * local], abs=1e-12)
    # The numbers on the lecture slide (two decimals).
    assert [w0.grad, w1.grad, w2.grad] == pytest.approx([-0.20, -0.39, 0.20], abs=0.006)
    assert [x0.grad, x1.grad] == pytest.approx([0.39, -0.59], abs=0.006)
    # ... and on the wires in between.
    assert denom.data == pytest.approx(1.37, abs=0.005) and denom.grad == pytest.approx(-0.53, abs=0.005)
    assert e.grad == pytest.approx(-0.53, abs=0.005)
    assert neg.grad == pytest.approx(-0.20, abs=0.005)
    assert dot.grad == pytest.approx(0.20, abs=0.005)


def test_sigmoid_gate_matches_the_circuit():
    w0, w1, w2, x0, x1 = (Value(v) for v in (2.0, -3.0, -3.0, -1.0, -2.0))
    f = (w0 * x0 + w1 * x1 + w2).sigmoid()
    f.backward()
    assert [w0.grad, w1.grad, w2.grad, x0.grad, x1.grad] == pytest.approx(
        [-0.19661193, -0.39322387, 0.19661193, 0.39322387, -0.58983580], abs=1e-8)


# ----- every op against centered differences ------------------------------------------

OPS = {
    "add": (lambda a, b: a + b, [1.3, -0.7]),
    "sub": (lambda a, b: a - b, [1.3, -0.7]),
    "mul": (lambda a, b: a * b, [1.3, -0.7]),
    "truediv": (lambda a, b: a / b, [1.3, -0.7]),
    "pow_value": (lambda a, b: a ** b, [1.7, -1.3]),
    "pow_value_int_exponent": (lambda a, b: a ** b, [0.6, 3.0]),
    "add_number": (lambda a: a + 2.5, [0.4]),
    "radd": (lambda a: 2.5 + a, [0.4]),
    "sub_number": (lambda a: a - 2.5, [0.4]),
    "rsub": (lambda a: 2.5 - a, [0.4]),
    "mul_number": (lambda a: a * -2.5, [0.4]),
    "rmul": (lambda a: -2.5 * a, [0.4]),
    "truediv_number": (lambda a: a / -2.5, [0.4]),
    "rtruediv": (lambda a: 2.5 / a, [-0.4]),
    "pow_number": (lambda a: a ** 3, [-1.5]),
    "pow_fraction": (lambda a: a ** 0.5, [1.5]),
    "pow_negative": (lambda a: a ** -2, [1.5]),
    "rpow": (lambda a: 2.5 ** a, [-0.4]),
    "neg": (lambda a: -a, [0.4]),
    "exp": (lambda a: a.exp(), [0.4]),
    "log": (lambda a: a.log(), [0.4]),
    "tanh": (lambda a: a.tanh(), [0.4]),
    "sigmoid_positive": (lambda a: a.sigmoid(), [0.4]),
    "sigmoid_negative": (lambda a: a.sigmoid(), [-4.0]),
    "relu_positive": (lambda a: a.relu(), [0.8]),
    "relu_negative": (lambda a: a.relu(), [-0.8]),
    "composite": (lambda a, b: ((a * b).tanh() + (a / b).exp() - b.sigmoid() * 3) ** 2 / (1 + a * a),
                  [0.3, -1.1]),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradient_matches_centered_differences(name):
    f, xs = OPS[name]
    _, grads = analytic_grads(f, xs)
    expected = numeric_grads(f, xs)
    for g, e in zip(grads, expected):
        assert abs(g - e) <= 1e-7 + 1e-6 * abs(e), (name, grads, expected)


def test_op_names_carry_the_numbers():
    x = Value(2.0)
    names = [(x + 1).op, (1 + x).op, (x * -1).op, (1 / x).op, (x ** 2).op, (2 ** x).op, (3 - x).op,
             (x + x).op, (-x).op, x.exp().op, x.op]
    assert names == ["x+1", "1+x", "x*(-1)", "1/x", "x**2", "2**x", "3-x", "+", "neg", "exp", ""]
    y = x * 3
    assert y.parents == (x,) and y.local_grads == (3.0,)
    z = x * y
    assert z.parents == (x, y) and z.local_grads == (6.0, 2.0)


# ----- pow corner cases ---------------------------------------------------------------

def test_pow_with_value_exponent_of_negative_base():
    x, y = Value(-2.0), Value(3.0)
    f = x ** y
    f.backward()
    assert f.data == -8.0
    assert x.grad == 12.0
    assert math.isnan(y.grad)          # d/dy (-2)^y has no real value


def test_pow_at_zero_base():
    x, y = Value(0.0), Value(2.0)
    (x ** y).backward()
    assert (x.grad, y.grad) == (0.0, 0.0)
    x = Value(0.0)
    (x ** 0).backward()
    assert x.grad == 0.0
    x = Value(0.0)
    (x ** 0.5).backward()
    assert x.grad == math.inf


def test_pow_errors_say_the_rule():
    with pytest.raises(ValueError, match=r"-8.0 \*\* 0.5 is not a real number"):
        Value(-8.0) ** 0.5
    with pytest.raises(ValueError, match="not a real number"):
        Value(-8.0) ** Value(0.5)
    with pytest.raises(ValueError, match="not a real number"):
        (-8.0) ** Value(0.5)
    with pytest.raises(ZeroDivisionError, match="keep the base away from 0"):
        Value(0.0) ** -1


def test_domain_errors_say_the_value():
    with pytest.raises(ValueError, match=r"log: expected a positive input, got -1.0"):
        Value(-1.0).log()
    with pytest.raises(OverflowError, match=r"exp\(1000.0\) overflows"):
        Value(1000.0).exp()
    with pytest.raises(TypeError):
        Value(1.0) + "a"
    with pytest.raises(TypeError):
        [1.0] * Value(2.0)


def test_sigmoid_is_stable_for_large_inputs():
    for x, s in [(1000.0, 1.0), (-1000.0, 0.0), (800.0, 1.0), (-800.0, 0.0)]:
        v = Value(x)
        out = v.sigmoid()
        out.backward()
        assert out.data == s and v.grad == 0.0
    assert Value(-30.0).sigmoid().data == pytest.approx(math.exp(-30.0), rel=1e-12)


def test_relu_kink_gets_zero_gradient():
    x = Value(0.0)
    x.relu().backward()
    assert x.grad == 0.0


# ----- graph semantics ------------------------------------------------------------------

def test_chain_of_100k_ops():
    x = Value(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.backward()
    assert y.data == pytest.approx(1.00001 ** 100_000, rel=1e-9)
    assert x.grad == pytest.approx(1.00001 ** 100_000, rel=1e-9)
    del y                                       # freeing a deep chain must not crash either


def test_100k_uses_of_one_value():
    x = Value(0.5)
    y = x
    for _ in range(100_000):
        y = y + x
    y.backward()
    assert x.grad == 100_001.0


def test_reused_subexpression_gets_the_sum_of_its_gradients():
    x = Value(3.0)
    a = x * x + x                               # da/dx = 2x + 1
    a.backward()
    assert x.grad == 7.0
    x = Value(3.0)
    h = x * 2                                   # an intermediate used twice
    b = h * h + h                               # db/dh = 2h + 1 = 13, dh/dx = 2
    b.backward()
    assert h.grad == 13.0 and x.grad == 26.0


def test_leaf_gradients_accumulate_until_zeroed():
    x = Value(3.0)
    h = x * x
    a = h + x
    a.backward()
    a.backward()                                # a second pass: leaves add up
    assert x.grad == 14.0
    assert h.grad == 1.0 and a.grad == 1.0      # intermediates hold the latest pass only
    x.grad = 0.0
    a.backward()
    assert x.grad == 7.0


def test_two_outputs_sharing_a_graph():
    x = Value(2.0)
    h = x * x
    (h * 3).backward()
    (h + 1).backward()                          # h's gradient is recomputed from zero
    assert h.grad == 1.0
    assert x.grad == 12.0 + 4.0


def test_backward_with_upstream_gradient():
    x = Value(2.0)
    y = x.tanh()
    y.backward(0.5)
    assert x.grad == pytest.approx(0.5 * (1 - math.tanh(2.0) ** 2))


def test_backward_on_a_leaf():
    x = Value(2.0)
    x.backward()
    x.backward()
    assert x.grad == 2.0


def test_graph_is_freed_without_the_cycle_collector():
    def count_values():
        return sum(type(o) is Value for o in gc.get_objects())

    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        before = count_values()
        x = Value(1.5)
        y = x
        for _ in range(1000):
            y = (y * 0.9 + x).tanh()
        y.backward()
        assert count_values() >= before + 2000
        del y
        assert count_values() == before + 1     # only x is left: no reference cycles
    finally:
        if was_enabled:
            gc.enable()


def test_repr_is_readable():
    x = Value(-2.0, name="x")
    assert repr(x) == "Value(data=-2, grad=0, name='x')"
    y = x * 3
    y.backward()
    assert repr(y) == "Value(data=-6, grad=1, op='x*3')"
    assert repr(Value(0.1234567891)) == "Value(data=0.123457, grad=0)"


def test_data_is_a_float():
    import numpy as np
    assert type(Value(3).data) is float
    assert type(Value(np.float32(0.5)).data) is float
    with pytest.raises(TypeError):
        Value([1.0, 2.0])


# ----- the tiny nn on Value -------------------------------------------------------------

def test_mlp_parameters_and_seeded_init():
    model = MLP(2, [16, 16, 1], random_state=0)
    assert len(model.parameters()) == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1
    again = MLP(2, [16, 16, 1], random_state=0)
    assert [p.data for p in model.parameters()] == [p.data for p in again.parameters()]
    assert isinstance(model([1.0, -1.0]), Value)
    with pytest.raises(ValueError, match="expected 2 inputs, got 3"):
        Neuron(2)([1.0, 2.0, 3.0])


def test_mlp_gradients_match_centered_differences():
    model = MLP(3, [4, 1], random_state=1)
    data = [([0.5, -1.0, 2.0], 1.0), ([-0.3, 0.8, 0.1], -1.0)]

    def loss():
        total = sum(((model(x) - y) ** 2 for x, y in data), Value(0.0))
        return total.tanh()

    model.zero_grad()
    loss().backward()
    for p in model.parameters():
        grad, old = p.grad, p.data
        p.data = old + 1e-6
        up = loss().data
        p.data = old - 1e-6
        down = loss().data
        p.data = old
        assert grad == pytest.approx((up - down) / 2e-6, abs=1e-7)


def test_mlp_learns_xor():
    model = MLP(2, [8, 1], random_state=3)
    xs = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    ys = [-1.0, 1.0, 1.0, -1.0]
    losses = []
    for _ in range(200):
        loss = sum(((model(x) - y) ** 2 for x, y in zip(xs, ys)), Value(0.0)) * 0.25
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.05 * p.grad
        losses.append(loss.data)
    assert losses[-1] < 0.05 < losses[0]
    assert [model(x).data > 0 for x in xs] == [y > 0 for y in ys]
