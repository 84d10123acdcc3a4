"""draw_graph: DOT text for Value and Tensor graphs, rendering with Graphviz, the missing-dot error."""
import shutil

import numpy as np
import pytest

import chainrule.viz as viz
from chainrule import Tensor
from chainrule.value import Value
from chainrule.viz import draw_graph, repr_svg

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not installed")

GREEN, RED = viz._VALUE_COLOR, viz._GRAD_COLOR


def circuit():
    x, y, z = Value(-2.0, name="x"), Value(5.0, name="y"), Value(-4.0, name="z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    return f


HEADER = """digraph chainrule {
  graph [rankdir=LR, fontname=Helvetica, fontsize=10, labelloc=b, label=<LEGEND>];
  node [fontname=Helvetica, fontsize=12];
  edge [fontname=Helvetica, fontsize=10, arrowsize=0.6];
  n0 [shape=box, label="x"];
  n1 [shape=box, label="y"];
  n2 [shape=circle, label="+"];
  n3 [shape=box, label="z"];
  n4 [shape=circle, label="*"];
"""


def wire(value, grad=None):
    label = f'<font color="{GREEN}">{value}</font>'
    if grad is not None:
        label += f'<br/><font color="{RED}">{grad}</font>'
    return f"<{label}>"


def test_dot_of_the_circuit_before_backward():
    legend = f'<font color="{GREEN}">forward value</font>    (run backward() to add gradients)'
    expected = HEADER.replace("LEGEND", legend) + (
        f"  n0 -> n2 [label={wire('-2')}];\n"
        f"  n1 -> n2 [label={wire('5')}];\n"
        f"  n2 -> n4 [label={wire('q = 3')}];\n"
        f"  n3 -> n4 [label={wire('-4')}];\n"
        '  out [shape=none, label="f"];\n'
        f"  n4 -> out [label={wire('f = -12')}];\n"
        "}\n"
    )
    assert draw_graph(circuit(), format="dot") == expected


def test_dot_of_the_circuit_after_backward():
    f = circuit()
    f.backward()
    legend = f'<font color="{GREEN}">forward value</font>    <font color="{RED}">gradient</font>'
    expected = HEADER.replace("LEGEND", legend) + (
        f"  n0 -> n2 [label={wire('-2', '-4')}];\n"
        f"  n1 -> n2 [label={wire('5', '-4')}];\n"
        f"  n2 -> n4 [label={wire('q = 3', '-4')}];\n"
        f"  n3 -> n4 [label={wire('-4', '3')}];\n"
        '  out [shape=none, label="f"];\n'
        f"  n4 -> out [label={wire('f = -12', '1')}];\n"
        "}\n"
    )
    assert draw_graph(f, format="dot") == expected
    assert draw_graph(f, format="dot") == expected          # deterministic


def test_reused_value_draws_one_wire_per_use():
    x = Value(3.0, name="x")
    a = x * x + x
    a.backward()
    dot = draw_graph(a, format="dot")
    assert dot.count(f"n0 -> n1 [label={wire('3', '7')}];") == 2      # x * x
    assert f"n0 -> n2 [label={wire('3', '7')}];" in dot               # + x
    assert f"n1 -> n2 [label={wire('9', '1')}];" in dot
    assert dot.count("[shape=box") == 1                                # x drawn once


def test_number_gates_and_unnamed_leaves():
    x = Value(1.0)
    f = 1 / (1 + (x * -1).exp())
    dot = draw_graph(f, format="dot")
    assert 'n0 [shape=box, label="1"];' in dot
    for i, op in enumerate(["x*(-1)", "exp", "1+x", "1/x"], start=1):
        assert f'n{i} [shape=ellipse, label="{op}"];' in dot
    assert 'out [shape=none, label=""];' in dot


def test_labels_are_escaped():
    x = Value(1.0, name='a "quoted" \\ name')
    y = x * 2
    y.name = "<b> & c"
    dot = draw_graph(y, format="dot")
    assert 'n0 [shape=box, label="a \\"quoted\\" \\\\ name"];' in dot
    assert "&lt;b&gt; &amp; c = 2" in dot


def test_leaf_root():
    x = Value(2.5, name="x")
    dot = draw_graph(x, format="dot")
    assert 'n0 [shape=box, label="x"];' in dot
    assert f"n0 -> out [label={wire('2.5')}];" in dot


def test_large_graph_is_drawn_iteratively():
    x = Value(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    dot = draw_graph(y, format="dot")
    assert "n100000 -> out" in dot
    assert dot.count(" -> ") == 100_001


# ----- Tensor graphs --------------------------------------------------------------------

def tensor_graph():
    rng = np.random.default_rng(0)
    W = Tensor(rng.standard_normal((3, 4)), requires_grad=True, name="W")
    x = Tensor(rng.standard_normal(4), name="x")
    return W, x, ((W @ x) ** 2).sum()


def test_tensor_dot_shows_ops_shapes_and_dtypes():
    W, x, loss = tensor_graph()
    dot = draw_graph(loss, format="dot")
    assert 'n0 [shape=box, label="W"];' in dot
    assert 'n1 [shape=box, label="x"];' in dot
    assert 'n2 [shape=ellipse, label="MatMul"];' in dot
    assert 'n3 [shape=ellipse, label="Pow"];' in dot
    assert 'n4 [shape=ellipse, label="Sum"];' in dot
    assert f"n0 -> n2 [label={wire('(3, 4) float64')}];" in dot
    assert f"n1 -> n2 [label={wire('(4,) float64')}];" in dot
    value = f"{float(loss.data):.4g}"
    assert f"n4 -> out [label={wire('() float64 = ' + value)}];" in dot
    assert "run backward() to add gradients" in dot


def test_tensor_dot_shows_gradients_after_backward():
    W, x, loss = tensor_graph()
    loss.backward()
    dot = draw_graph(loss, format="dot")
    assert f"n0 -> n2 [label={wire('(3, 4) float64', '(3, 4)')}];" in dot
    assert f"n1 -> n2 [label={wire('(4,) float64')}];" in dot          # x has no grad
    assert f'<font color="{RED}">gradient</font>' in dot


def test_one_element_tensor_shows_its_value_and_gradient():
    a = Tensor(np.array([2.0]), requires_grad=True, name="a")
    b = a * a
    b.backward()
    dot = draw_graph(b, format="dot")
    assert dot.count(f"n0 -> n1 [label={wire('(1,) float64 = 2', '4')}];") == 2
    c = Tensor(np.array(3.0), requires_grad=True)
    dot = draw_graph(c.exp(), format="dot")
    assert 'n0 [shape=box, label="3"];' in dot


# ----- rendering ----------------------------------------------------------------------

@needs_dot
def test_svg_and_png_rendering(tmp_path):
    f = circuit()
    f.backward()
    svg = draw_graph(f, tmp_path / "f.svg")
    assert isinstance(svg, str) and "<svg" in svg and ">q = 3<" in svg and "#c0392b" in svg
    assert (tmp_path / "f.svg").read_text(encoding="utf-8") == svg
    png = draw_graph(f, tmp_path / "f.png")                   # format from the suffix
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "f.png").read_bytes() == png
    assert draw_graph(f, format="pdf")[:5] == b"%PDF-"
    assert "<svg" in draw_graph(tensor_graph()[2])


@needs_dot
def test_jupyter_svg():
    f = circuit()
    assert "<svg" in f._repr_svg_()
    assert "<svg" in repr_svg(tensor_graph()[2])


@needs_dot
def test_jupyter_skips_huge_graphs(monkeypatch):
    monkeypatch.setattr(viz, "REPR_SVG_MAX_NODES", 4)
    assert repr_svg(circuit()) is None                        # 5 nodes
    assert "<svg" in repr_svg(Value(1.0, name="x") * 2)


def test_missing_dot_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    f = circuit()
    for fmt in ("svg", "png"):
        with pytest.raises(RuntimeError, match="apt-get install graphviz") as info:
            draw_graph(f, format=fmt)
        assert "brew install graphviz" in str(info.value)
        assert "conda install graphviz" in str(info.value)
    with pytest.raises(RuntimeError, match="Graphviz"):
        draw_graph(f, tmp_path / "f.svg")
    assert not (tmp_path / "f.svg").exists()
    assert repr_svg(f) is None and f._repr_svg_() is None
    assert draw_graph(f, format="dot").startswith("digraph")   # DOT needs nothing
    draw_graph(f, tmp_path / "f.dot")
    assert (tmp_path / "f.dot").read_text().startswith("digraph")


def test_failing_dot_reports_its_error(monkeypatch):
    false = shutil.which("false")
    if false is None:
        pytest.skip("no 'false' program")
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: false)
    with pytest.raises(RuntimeError, match="failed with exit code 1"):
        draw_graph(circuit(), format="svg")


def test_bad_arguments():
    with pytest.raises(ValueError, match="format must be one of 'dot', 'svg', 'png', 'pdf', got 'jpg'"):
        draw_graph(circuit(), format="jpg")
    with pytest.raises(TypeError, match="expected a chainrule Value or Tensor, got list"):
        draw_graph([1.0], format="dot")
