"""chainrule.viz.graph_data: the computational graph as plain data (what the playground draws with SVG), from the
same walk as draw_graph's DOT."""

import json
import re

import numpy as np
from test_viz import circuit  # the lecture's (x + y) z, with q and f named

from chainrule import Tensor
from chainrule.nn import functional as F
from chainrule.viz import draw_graph, graph_data


def scalar(d):
    return {"shape": [], "data": [d], "complete": True}


def test_the_lecture_circuit_with_values_and_gradients():
    f = circuit()
    before = graph_data(f)
    assert not before["has_grads"] and all(w["grad"] is None for w in before["wires"])
    f.backward()
    g = graph_data(f)
    assert [(n["id"], n["kind"], n["label"]) for n in g["nodes"]] == [
        ("n0", "input", "x"), ("n1", "input", "y"), ("n2", "op", "+"), ("n3", "input", "z"), ("n4", "op", "*")]
    wires = {(w["source"], w["target"]): w for w in g["wires"]}
    assert set(wires) == {("n0", "n2"), ("n1", "n2"), ("n2", "n4"), ("n3", "n4"), ("n4", None)}
    # the lecture's numbers: q = 3, f = -12; df/dx = df/dy = z = -4, df/dz = q = 3
    assert wires["n2", "n4"]["value"] == scalar(3.0) and wires["n2", "n4"]["value_text"] == "q = 3"
    assert wires["n0", "n2"]["grad"] == scalar(-4.0) and wires["n1", "n2"]["grad"] == scalar(-4.0)
    assert wires["n3", "n4"]["grad"] == scalar(3.0) and wires["n4", None]["grad"] == scalar(1.0)
    assert g["root"] == "n4" and g["has_grads"]
    json.dumps(g, allow_nan=False)


def test_same_nodes_and_wires_as_the_dot_drawing():
    x = Tensor(np.array([[0.5, -1.0]]), requires_grad=True, name="x")
    W = Tensor(np.array([[1.0, -2.0, 0.5], [0.3, 0.1, -1.0]]), requires_grad=True, name="W")
    b = Tensor(np.zeros(3), requires_grad=True, name="b")
    h = F.relu(F.linear(x, W, b))
    loss = F.cross_entropy(h, np.array([2])) + F.l2_penalty([W], 0.1)
    loss.backward()
    g = graph_data(loss)
    dot = draw_graph(loss, format="dot")
    dot_wires = re.findall(r"^  (n\d+) -> (n\d+|out) ", dot, flags=re.M)
    assert [(w["source"], w["target"] or "out") for w in g["wires"]] == dot_wires
    assert len(g["nodes"]) == len(re.findall(r"^  n\d+ \[", dot, flags=re.M))
    by_label = {n["label"]: n for n in g["nodes"]}
    assert {"Linear", "Relu", "CrossEntropy", "L2Penalty"} <= set(by_label)
    w_wire = next(w for w in g["wires"] if w["source"] == next(n["id"] for n in g["nodes"] if n["name"] == "W"))
    assert w_wire["value"]["shape"] == [2, 3] and w_wire["value"]["complete"]
    np.testing.assert_allclose(w_wire["value"]["data"], W.data.ravel())
    np.testing.assert_allclose(w_wire["grad"]["data"], W.grad.ravel())
    assert w_wire["value_text"] == "(2, 3) float64" and w_wire["grad_text"] == "(2, 3)"


def test_large_arrays_are_cut_and_non_finite_numbers_become_null():
    a = Tensor(np.arange(100, dtype=np.float64), requires_grad=True, name="a")
    s = (a * np.array([np.nan, np.inf] + [1.0] * 98)).sum()
    g = graph_data(s, max_elements=10)
    leaf = next(w for w in g["wires"] if w["source"] == "n0")
    assert leaf["value"] == {"shape": [100], "data": [float(i) for i in range(10)], "complete": False}
    product = next(w for w in g["wires"] if w["target"] == g["root"] and w["source"] != "n0")
    assert product["value"]["data"][:2] == [None, None]
    json.dumps(g, allow_nan=False)  # valid JSON for a browser
