"""Trace a forward pass and build the ONNX graph of the nodes it recorded, in the order backward would reverse.

``trace(module, x)`` runs the module once on a Tensor that requires grad, so every op records its node (the graph
``backward`` walks), while ``chainrule.function.record_nodes`` notes each node's ``apply`` arguments (a node keeps
only what its backward needs: ``x * 2.0`` does not keep the 2.0). ``build_graph`` then visits the nodes in
``chainrule.engine.topological_order`` (the order backward walks in reverse) and asks the op table
(``chainrule.onnx._ops.CONVERTERS``, keyed by the node's ``Function`` class) for each node's ONNX nodes.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from chainrule.engine import topological_order
from chainrule.function import enable_grad, record_nodes
from chainrule.tensor import Tensor


class OnnxExportError(ValueError):
    """The model cannot be written as ONNX; the message names the op or step and says what would work."""


def trace(model: Callable[[Tensor], Any], example: np.ndarray) -> tuple[Tensor, Tensor, dict[int, tuple]]:
    """(input Tensor, output Tensor, {id(node): (node, args, kwargs)}) of one forward pass on ``example``."""
    records: dict[int, tuple] = {}

    def record(node: Any, args: tuple, kwargs: dict) -> None:
        records[id(node)] = (node, args, kwargs)

    x = Tensor(example, requires_grad=True)
    with enable_grad(), record_nodes(record):
        out = model(x)
    if not isinstance(out, Tensor):
        raise OnnxExportError(f"the model returned a {type(out).__name__}; export needs one Tensor output")
    return x, out, records


class GraphBuilder:
    """Collects ONNX nodes and initializers with unique names; ``value`` names a Tensor or constant argument."""

    def __init__(self, onnx: Any, tensor_names: dict[int, str], param_names: dict[int, str]):
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._tensor_names = tensor_names  # id(Tensor) -> name, filled as nodes are converted
        self._param_names = param_names  # id(Parameter) -> its dotted name in the model
        self._used: set[str] = set()
        self.dtype = np.dtype(np.float32)  # the dtype of the node being converted (for Python-number constants)

    def fresh(self, hint: str) -> str:
        name, i = hint, 1
        while name in self._used:
            name, i = f"{hint}_{i}", i + 1
        self._used.add(name)
        return name

    def const(self, value: Any, hint: str = "const") -> str:
        """An initializer holding ``value``: a Python number in the node's dtype, an array as it is."""
        array = np.asarray(value, dtype=self.dtype if isinstance(value, (int, float)) and not isinstance(value, bool)
                           else None)
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def value(self, arg: Any) -> str:
        """The ONNX name of a node argument: a Tensor of the graph, a leaf Tensor (a parameter: an initializer named
        after it), or a constant."""
        if isinstance(arg, Tensor):
            name = self._tensor_names.get(id(arg))
            if name is None:
                if arg._ctx is not None:
                    raise OnnxExportError("a Tensor made by an op outside the traced forward pass is an input of it; "
                                          "compute it inside the model's forward")
                name = self._tensor_names[id(arg)] = self.const(arg.data, self._param_names.get(id(arg), "const"))
            return name
        return self.const(arg)

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, **attrs: Any) -> Any:
        """Add a node; returns its output name (a list of names for several outputs)."""
        names = [self.fresh(f"{op_type}_out") for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, names, name=self.fresh(op_type), **attrs))
        return names[0] if outputs == 1 else names


def build_graph(onnx: Any, converters: dict[type, Callable], x: Tensor, out: Tensor, records: dict[int, tuple],
                param_names: dict[int, str], input_name: str, output_name: str, dynamic_batch: bool) -> Any:
    """The ``onnx.GraphProto`` of the traced pass from ``x`` to ``out``."""
    if out._ctx is None:
        raise OnnxExportError("the output does not depend on the input through recorded ops (was it computed "
                              "under no_grad, or from .data / NumPy?); export needs the forward pass written with ops")
    tensor_names: dict[int, str] = {id(x): input_name}
    b = GraphBuilder(onnx, tensor_names, param_names)
    b._used.update((input_name, output_name))
    node_names: dict[int, str] = {}
    reaches_input = False
    for node in topological_order(out._ctx):
        record = records.get(id(node))
        if record is None:
            raise OnnxExportError(f"a {type(node).__name__} node was recorded before the traced forward pass began; "
                                  "compute every step inside the model's forward")
        for parent in node.parents:  # Tensors made by earlier nodes: named after those nodes
            if parent is not None and parent._ctx is not None:
                tensor_names[id(parent)] = node_names[id(parent._ctx)]
            reaches_input = reaches_input or parent is x
        convert = converters.get(type(node))
        if convert is None:
            raise OnnxExportError(
                f"op {type(node).__name__} (output shape {node._out.shape}) has no ONNX form in chainrule.onnx; "
                f"exportable ops: {', '.join(sorted(c.__name__ for c in converters))}"
            )
        _, args, kwargs = record
        b.dtype = node._out.dtype
        node_names[id(node)] = convert(b, node, args, kwargs)
    if not reaches_input:
        raise OnnxExportError("the output does not depend on the input; export needs a model of its input")
    b.nodes.append(onnx.helper.make_node("Identity", [node_names[id(out._ctx)]], [output_name], name="output"))
    batch = "N" if dynamic_batch else None

    def info(name: str, t: Tensor) -> Any:
        shape = list(t.shape)
        if batch and shape and shape[0] == x.shape[0]:
            shape[0] = batch
        elem = onnx.helper.np_dtype_to_tensor_dtype(t.dtype)
        return onnx.helper.make_tensor_value_info(name, elem, shape)

    return onnx.helper.make_graph(b.nodes, "chainrule", [info(input_name, x)], [info(output_name, out)],
                                  initializer=b.initializers)
