"""Draw a computational graph the way the lectures draw circuits.

Inputs (leaves) are boxes, every operation is a gate (circle) labelled with its op,
and every wire carries the forward value of its source in green and, once
backward has run, the gradient d(output)/d(that value) in red. A value used by
several gates shows the same total gradient on each of its wires.

    >>> x, y, z = Value(-2.0, name="x"), Value(5.0, name="y"), Value(-4.0, name="z")
    >>> f = (x + y) * z
    >>> f.backward()
    >>> svg = draw_graph(f, "circuit.svg")      # also format="png", "pdf"
    >>> print(draw_graph(f, format="dot"))     # Graphviz source; needs nothing installed
    >>> graph = graph_data(f)                  # the same graph as plain data (JSON-ready), for your own drawing

Values label a wire with the number; Tensors with shape and dtype (and the number
when they hold a single element). Rendering runs the Graphviz ``dot`` program;
``graph_data`` needs nothing (the browser playground draws it with SVG).
"""
from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chainrule.value import Value

RENDER_FORMATS = ("svg", "png", "pdf")
REPR_SVG_MAX_NODES = 300     # Jupyter falls back to repr() for bigger graphs

_VALUE_COLOR = "#1a7f37"     # green: forward values
_GRAD_COLOR = "#c0392b"      # red: gradients

_INSTALL_HINT = (
    "draw_graph: rendering needs the Graphviz 'dot' program, which is not on PATH. Install it with "
    "'sudo apt-get install graphviz' (Debian/Ubuntu), 'brew install graphviz' (macOS) or "
    "'conda install graphviz', or call draw_graph(..., format=\"dot\") for the Graphviz source."
)


class _TooBig(Exception):
    pass


# ----- one small adapter per kind of graph -----------------------------------------

class _ValueGraph:
    """How to read a graph of scalar Values."""

    def __init__(self, root: Value):
        self.show_grads = root.grad != 0     # backward() on root sets it (to 1 by default)

    @staticmethod
    def inputs(v: Value) -> tuple[Value, ...]:
        return v.parents

    @staticmethod
    def op(v: Value) -> str | None:
        return v.op or None

    @staticmethod
    def name(v: Value) -> str | None:
        return v.name

    @staticmethod
    def leaf_label(v: Value) -> str:
        return _number(v.data)

    @staticmethod
    def value_text(v: Value) -> str:
        return _number(v.data)

    def grad_text(self, v: Value) -> str | None:
        return _number(v.grad) if self.show_grads else None


class _TensorGraph:
    """How to read a graph of Tensors: ``t._ctx`` is the op node, ``ctx.parents`` its inputs."""

    @staticmethod
    def inputs(t: Any) -> tuple[Any, ...]:
        ctx = t._ctx
        if ctx is None:
            return ()
        return tuple(p for p in getattr(ctx, "parents", ()) if p is not None)

    @staticmethod
    def op(t: Any) -> str | None:
        return None if t._ctx is None else type(t._ctx).__name__

    @staticmethod
    def name(t: Any) -> str | None:
        return getattr(t, "name", None)

    @staticmethod
    def leaf_label(t: Any) -> str:
        return _number(t.data.flat[0]) if t.data.size == 1 else "input"

    @staticmethod
    def value_text(t: Any) -> str:
        text = f"{tuple(t.data.shape)} {t.data.dtype}"
        if t.data.size == 1:
            text += f" = {_number(t.data.flat[0])}"
        return text

    @staticmethod
    def grad_text(t: Any) -> str | None:
        g = t.grad
        if g is None:
            return None
        return _number(g.flat[0]) if g.size == 1 else str(tuple(g.shape))


def _graph_kind(root: Any) -> _ValueGraph | _TensorGraph:
    if isinstance(root, Value):
        return _ValueGraph(root)
    if hasattr(root, "_ctx") and hasattr(root, "data") and hasattr(root, "grad"):
        return _TensorGraph()
    raise TypeError(f"draw_graph: expected a chainrule Value or Tensor, got {type(root).__name__}")


# ----- graph -> DOT text ------------------------------------------------------------

def _number(x: Any) -> str:
    return f"{float(x):.4g}"


def _quoted(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _topological_order(root: Any, inputs: Callable[[Any], tuple], max_nodes: int | None) -> list:
    """Every node once, inputs before outputs, in a fixed order (first input first).

    Iterative depth-first search; nodes are keyed by id() because a Tensor may define ==.
    """
    order: list = []
    visited: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif id(node) not in visited:
            visited.add(id(node))
            if max_nodes is not None and len(visited) > max_nodes:
                raise _TooBig
            stack.append((node, True))
            for parent in reversed(inputs(node)):
                if id(parent) not in visited:
                    stack.append((parent, False))
    return order


def _wire_texts(kind: _ValueGraph | _TensorGraph, node: Any) -> tuple[str, str | None]:
    """The forward-value text and the gradient text (None before backward) on the wires leaving ``node``."""
    value = kind.value_text(node)
    name = kind.name(node)
    if name is not None and kind.op(node) is not None:   # a named intermediate result
        value = f"{name} = {value}"
    return value, kind.grad_text(node)


def _wire_label(kind: _ValueGraph | _TensorGraph, node: Any) -> str:
    value, grad = _wire_texts(kind, node)
    label = f'<font color="{_VALUE_COLOR}">{_html(value)}</font>'
    if grad is not None:
        label += f'<br/><font color="{_GRAD_COLOR}">{_html(grad)}</font>'
    return f"<{label}>"


def _to_dot(root: Any, max_nodes: int | None = None) -> str:
    kind = _graph_kind(root)
    order = _topological_order(root, kind.inputs, max_nodes)
    ids = {id(node): f"n{i}" for i, node in enumerate(order)}
    shows_grads = any(kind.grad_text(node) is not None for node in order)
    legend = f'<font color="{_VALUE_COLOR}">forward value</font>'
    legend += (f'    <font color="{_GRAD_COLOR}">gradient</font>' if shows_grads
               else "    (run backward() to add gradients)")
    lines = [
        "digraph chainrule {",
        f"  graph [rankdir=LR, fontname=Helvetica, fontsize=10, labelloc=b, label=<{legend}>];",
        "  node [fontname=Helvetica, fontsize=12];",
        "  edge [fontname=Helvetica, fontsize=10, arrowsize=0.6];",
    ]
    for node in order:
        op = kind.op(node)
        if op is None:
            name = kind.name(node)
            label = kind.leaf_label(node) if name is None else str(name)
            lines.append(f"  {ids[id(node)]} [shape=box, label={_quoted(label)}];")
        else:
            shape = "circle" if len(op) <= 2 else "ellipse"
            lines.append(f"  {ids[id(node)]} [shape={shape}, label={_quoted(op)}];")
    for node in order:
        for parent in kind.inputs(node):
            lines.append(f"  {ids[id(parent)]} -> {ids[id(node)]} [label={_wire_label(kind, parent)}];")
    out_name = kind.name(root) if kind.op(root) is not None else None
    lines.append(f'  out [shape=none, label={_quoted("" if out_name is None else str(out_name))}];')
    lines.append(f"  {ids[id(root)]} -> out [label={_wire_label(kind, root)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----- graph -> plain data (nodes, wires, values, gradients) ---------------------------

def _array_data(x: Any, max_elements: int) -> dict[str, Any]:
    """A number or array as JSON-ready data: shape, the first ``max_elements`` entries (flattened, row-major; nan
    and inf as None) and whether that is all of them."""
    import numpy as np

    arr = np.asarray(x)
    flat = arr.reshape(-1)[:max_elements].astype(np.float64)
    return {"shape": list(arr.shape),
            "data": [float(v) if math.isfinite(v) else None for v in flat.tolist()],
            "complete": arr.size <= max_elements}


def graph_data(root: Any, max_elements: int = 64) -> dict[str, Any]:
    """The computational graph that produced ``root`` (a Value or a Tensor) as plain data, from the same walk as
    ``draw_graph``: for drawing it without Graphviz (the playground draws it with SVG) or inspecting it.

    Returns a JSON-ready dict:

    - ``nodes``: in topological order (inputs first), each ``{"id", "kind", "label", "name"}`` with ``kind`` "input"
      (a leaf: box) or "op" (a gate: ``label`` is the op, e.g. "mul", "Linear", "ReLU").
    - ``wires``: one per use of a value, ``{"source", "target", "value", "grad", "value_text", "grad_text"}``;
      ``target`` is None for the wire leaving ``root``. ``value`` / ``grad`` are ``{"shape", "data", "complete"}``
      (the first ``max_elements`` entries, flattened; nan/inf as None) and ``grad`` is None before ``backward()``;
      the texts are the labels ``draw_graph`` puts on the wire.
    - ``root``: the id of ``root``; ``has_grads``: whether any wire carries a gradient.
    """
    kind = _graph_kind(root)
    order = _topological_order(root, kind.inputs, None)
    ids = {id(node): f"n{i}" for i, node in enumerate(order)}
    is_value = isinstance(kind, _ValueGraph)

    def arrays(node: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if is_value:
            grad = node.grad if kind.show_grads else None
            return _array_data(node.data, 1), None if grad is None else _array_data(grad, 1)
        return _array_data(node.data, max_elements), None if node.grad is None else _array_data(node.grad,
                                                                                                max_elements)

    def wire(source: Any, target: Any | None) -> dict[str, Any]:
        value, grad = arrays(source)
        value_text, grad_text = _wire_texts(kind, source)
        return {"source": ids[id(source)], "target": None if target is None else ids[id(target)],
                "value": value, "grad": grad, "value_text": value_text, "grad_text": grad_text}

    nodes = []
    for node in order:
        op = kind.op(node)
        name = kind.name(node)
        if op is None:
            label = kind.leaf_label(node) if name is None else str(name)
            nodes.append({"id": ids[id(node)], "kind": "input", "label": label, "name": name})
        else:
            nodes.append({"id": ids[id(node)], "kind": "op", "label": op, "name": name})
    wires = [wire(parent, node) for node in order for parent in kind.inputs(node)]
    wires.append(wire(root, None))
    return {"nodes": nodes, "wires": wires, "root": ids[id(root)],
            "has_grads": any(w["grad"] is not None for w in wires)}


# ----- rendering ----------------------------------------------------------------------

def _run_dot(dot_text: str, fmt: str) -> bytes:
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(_INSTALL_HINT)
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"draw_graph: 'dot -T{fmt}' failed with exit code {proc.returncode}: "
                           f"{proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout


def draw_graph(root: Any, path: str | Path | None = None, format: str | None = None) -> str | bytes:
    """Draw the computational graph that produced ``root`` (a Value or a Tensor).

    Args:
        root: the output node; everything it was computed from is drawn.
        path: optional file to write the drawing to.
        format: "dot" (Graphviz source text, needs nothing installed), "svg", "png" or
            "pdf" (these run Graphviz's ``dot``). Default: the suffix of ``path`` when it
            is one of these, else "svg".

    Returns:
        str for "dot" and "svg", bytes for "png" and "pdf".

    Raises:
        RuntimeError: rendering was asked for and Graphviz ``dot`` is not installed
            (the message says how to install it).
    """
    if format is None:
        suffix = Path(path).suffix.lstrip(".").lower() if path is not None else ""
        format = suffix if suffix in RENDER_FORMATS + ("dot", "gv") else "svg"
    format = "dot" if format == "gv" else format
    if format not in RENDER_FORMATS + ("dot",):
        raise ValueError(f"draw_graph: format must be one of 'dot', 'svg', 'png', 'pdf', got {format!r}")
    dot_text = _to_dot(root)
    result: str | bytes
    if format == "dot":
        result = dot_text
    else:
        data = _run_dot(dot_text, format)
        result = data.decode("utf-8") if format == "svg" else data
    if path is not None:
        from chainrule.utils.atomic import atomic_write_bytes

        atomic_write_bytes(path, result.encode("utf-8") if isinstance(result, str) else result)
    return result


def repr_svg(obj: Any) -> str | None:
    """SVG of ``obj``'s graph for Jupyter's ``_repr_svg_``.

    None (Jupyter then shows ``repr``) when Graphviz is not installed or the graph has
    more than REPR_SVG_MAX_NODES nodes.
    """
    if shutil.which("dot") is None:
        return None
    try:
        dot_text = _to_dot(obj, max_nodes=REPR_SVG_MAX_NODES)
    except _TooBig:
        return None
    return _run_dot(dot_text, "svg").decode("utf-8")
