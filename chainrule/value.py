"""Value: a scalar autograd engine for teaching small circuits (CS231n lecture 4).

Every operation on Values records one node of a computational graph: the result,
the Values it was computed from (its *parents*) and, for each parent, the *local
gradient* d(result)/d(parent), computed during the forward pass while the inputs
are at hand. ``backward()`` walks the graph from the output back to the inputs and
applies the chain rule at every node::

    parent.grad += local_gradient * node.grad     # downstream = local * upstream

    >>> x, y, z = Value(-2.0, name="x"), Value(5.0, name="y"), Value(-4.0, name="z")
    >>> f = (x + y) * z
    >>> f.backward()
    >>> x.grad, y.grad, z.grad
    (-4.0, -4.0, 3.0)

A Python number mixed with a Value becomes part of the operation ("x*(-1)",
"x+1", "1/x": the unary gates of the lecture's sigmoid circuit), not a node.

Why no ``_backward`` closures (as in micrograd)? A closure that updates the
inputs' gradients must capture its own output node, and the node holds the
closure: a reference cycle per node. Cyclic garbage can only be freed by
Python's cyclic garbage collector, which then spends most of the training time
scanning the graph. Here a node holds numbers and its parents only, so a graph is
freed by reference counting as soon as it is no longer used.

Value is first-order only: its local gradients are numbers, so a gradient is not itself a graph. Higher derivatives
(``create_graph=True``, ``chainrule.autograd.grad``) are the Tensor engine's (docs/autograd.md).
"""
from __future__ import annotations

import math
from numbers import Real


def _number_label(c: float) -> str:
    """How a Python number appears inside an op name: 'x+1', 'x*(-1)', '1/x'."""
    text = f"{c:g}"
    return f"({text})" if c < 0 else text


def _check_real_power(base: float, exponent: float) -> None:
    if base < 0 and not float(exponent).is_integer():
        raise ValueError(
            f"pow: {base!r} ** {exponent!r} is not a real number (a negative base needs an "
            f"integer exponent); keep the base positive, e.g. square it or use exp(log(.))"
        )
    if base == 0 and exponent < 0:
        raise ZeroDivisionError(
            f"pow: 0.0 ** {exponent!r} divides by zero; keep the base away from 0"
        )


def _power_local_grad(x: float, y: float) -> float:
    """d(x ** y)/dx = y * x ** (y - 1), which is infinite at x = 0 for 0 < y < 1."""
    if y == 0:
        return 0.0
    if x == 0 and y < 1:
        return math.inf
    return y * x ** (y - 1)


def _log_or_nan(x: float) -> float:
    """log(x) for the exponent's gradient of x ** y: 0 ** y contributes 0, x < 0 has none."""
    if x > 0:
        return math.log(x)
    return 0.0 if x == 0 else math.nan


class Value:
    """A scalar node of a computational graph.

    Attributes:
        data: the forward value (a Python float).
        grad: d(output)/d(this value) after ``output.backward()``. Leaves (Values you
            create) accumulate it across backward calls until you set it back to 0;
            every other node holds the gradient of the latest backward pass through it.
        name: optional label, shown by ``repr`` and ``chainrule.draw_graph``.

    Every op has one or two inputs, so a node keeps them in two fields rather than
    in a tuple: one object per node is all the garbage collector has to look at.
    """

    __slots__ = ("data", "grad", "name", "_op", "_a", "_da", "_b", "_db")

    def __init__(self, data: float, _op: str = "", _a: Value | None = None, _da: float = 0.0,
                 _b: Value | None = None, _db: float = 0.0, *, name: str | None = None):
        self.data = float(data)
        self.grad = 0.0
        self.name = name
        self._op = _op      # what computed this node ("" for a leaf)
        self._a = _a        # first input (None for a leaf)
        self._da = _da      # local gradient d(self)/d(_a)
        self._b = _b        # second input (None for unary ops)
        self._db = _db      # local gradient d(self)/d(_b)

    @property
    def parents(self) -> tuple[Value, ...]:
        """The inputs this Value was computed from (empty for a leaf)."""
        return tuple(p for p in (self._a, self._b) if p is not None)

    @property
    def local_grads(self) -> tuple[float, ...]:
        """d(self)/d(parent) for each of ``parents``, computed in the forward pass."""
        return (self._da, self._db)[:len(self.parents)]

    @property
    def op(self) -> str:
        """The operation that computed this Value ("" for a leaf)."""
        return self._op

    # ----- binary operations --------------------------------------------------------
    # Value (op) Value makes a node with two inputs; Value (op) number makes a node
    # with one input whose op name carries the number ("x+1", "1/x").

    def __add__(self, other: Value | float) -> Value:
        if isinstance(other, Value):
            return Value(self.data + other.data, "+", self, 1.0, other, 1.0)
        if isinstance(other, Real):
            return Value(self.data + other, f"x+{_number_label(other)}", self, 1.0)
        return NotImplemented

    def __radd__(self, other: float) -> Value:            # other + self
        if isinstance(other, Real):
            return Value(other + self.data, f"{_number_label(other)}+x", self, 1.0)
        return NotImplemented

    def __sub__(self, other: Value | float) -> Value:
        if isinstance(other, Value):
            return Value(self.data - other.data, "-", self, 1.0, other, -1.0)
        if isinstance(other, Real):
            return Value(self.data - other, f"x-{_number_label(other)}", self, 1.0)
        return NotImplemented

    def __rsub__(self, other: float) -> Value:            # other - self
        if isinstance(other, Real):
            return Value(other - self.data, f"{_number_label(other)}-x", self, -1.0)
        return NotImplemented

    def __mul__(self, other: Value | float) -> Value:
        if isinstance(other, Value):
            return Value(self.data * other.data, "*", self, other.data, other, self.data)
        if isinstance(other, Real):
            return Value(self.data * other, f"x*{_number_label(other)}", self, float(other))
        return NotImplemented

    def __rmul__(self, other: float) -> Value:            # other * self
        if isinstance(other, Real):
            return Value(other * self.data, f"{_number_label(other)}*x", self, float(other))
        return NotImplemented

    def __truediv__(self, other: Value | float) -> Value:
        if isinstance(other, Value):
            a, b = self.data, other.data
            return Value(a / b, "/", self, 1.0 / b, other, -a / (b * b))
        if isinstance(other, Real):
            return Value(self.data / other, f"x/{_number_label(other)}", self, 1.0 / other)
        return NotImplemented

    def __rtruediv__(self, other: float) -> Value:        # other / self
        if isinstance(other, Real):
            b = self.data
            return Value(other / b, f"{_number_label(other)}/x", self, -other / (b * b))
        return NotImplemented

    def __pow__(self, other: Value | float) -> Value:
        x = self.data
        if isinstance(other, Value):                      # x ** y, both in the graph
            y = other.data
            _check_real_power(x, y)
            out = x ** y
            return Value(out, "**", self, _power_local_grad(x, y), other, out * _log_or_nan(x))
        if isinstance(other, Real):                       # x ** c
            _check_real_power(x, other)
            return Value(x ** other, f"x**{_number_label(other)}", self, _power_local_grad(x, other))
        return NotImplemented

    def __rpow__(self, other: float) -> Value:            # c ** x
        if isinstance(other, Real):
            _check_real_power(other, self.data)
            out = other ** self.data
            return Value(out, f"{_number_label(other)}**x", self, out * _log_or_nan(other))
        return NotImplemented

    # ----- unary operations ---------------------------------------------------------

    def __neg__(self) -> Value:
        return Value(-self.data, "neg", self, -1.0)

    def exp(self) -> Value:
        try:
            out = math.exp(self.data)
        except OverflowError:
            raise OverflowError(
                f"exp: exp({self.data!r}) overflows a float (largest input is about 709.78); "
                f"scale the input down"
            ) from None
        return Value(out, "exp", self, out)

    def log(self) -> Value:
        x = self.data
        if x <= 0:
            raise ValueError(f"log: expected a positive input, got {x!r}; "
                             f"add a small epsilon or clamp the input first")
        return Value(math.log(x), "log", self, 1.0 / x)

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return Value(t, "tanh", self, 1.0 - t * t)

    def sigmoid(self) -> Value:
        x = self.data
        if x >= 0:                    # exp of a non-positive number never overflows
            s = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1.0 + e)
        return Value(s, "sigmoid", self, s * (1.0 - s))

    def relu(self) -> Value:
        x = self.data
        if x > 0:
            return Value(x, "relu", self, 1.0)
        return Value(0.0, "relu", self, 0.0)    # the kink at 0 gets gradient 0

    # ----- backward -----------------------------------------------------------------

    def backward(self, grad: float = 1.0) -> None:
        """Backpropagate d(self)/d(node) into the ``.grad`` of every node below self.

        ``grad`` is the upstream gradient d(loss)/d(self) (1 when self is the loss).
        Leaf gradients add up across calls (zero them between steps); the other
        nodes' gradients are recomputed from zero on every call. The graph is kept,
        so backward can be called again.
        """
        order = self._topological_order()
        for node in order:
            if node._a is not None:  # an intermediate node: start from zero
                node.grad = 0.0
        self.grad += float(grad)
        # Reverse topological order: a node's gradient is complete (every use of it
        # has added its share: "the copy gate adds gradients") before it is passed on.
        for node in reversed(order):
            a = node._a
            if a is not None:
                upstream = node.grad
                a.grad += node._da * upstream          # downstream = local * upstream
                b = node._b
                if b is not None:
                    b.grad += node._db * upstream

    def _topological_order(self) -> list[Value]:
        """Every node of the graph below self, each once, inputs before outputs.

        Iterative depth-first search (no recursion limit): a node is pushed once to
        expand it and once more to emit it after all of its inputs were emitted.
        """
        order: list[Value] = []
        visited: set[Value] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                b, a = node._b, node._a                 # push _a last: visited first
                if b is not None and b not in visited:
                    stack.append((b, False))
                if a is not None and a not in visited:
                    stack.append((a, False))
        return order

    # ----- display ------------------------------------------------------------------

    def __repr__(self) -> str:
        parts = [f"data={self.data:.6g}", f"grad={self.grad:.6g}"]
        if self._op:
            parts.append(f"op={self._op!r}")
        if self.name is not None:
            parts.append(f"name={self.name!r}")
        return f"Value({', '.join(parts)})"

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a Value as its circuit diagram when Graphviz is installed."""
        from chainrule.viz import repr_svg
        return repr_svg(self)
