"""ONNX export: the graph you backpropagate through is the graph you ship.

    import chainrule.onnx
    chainrule.onnx.export(model, x[:1], "mlp.onnx")            # an nn.Module, run on an example input
    chainrule.onnx.export(estimator, X[:1], "svm.onnx")        # a fitted estimator: its preprocessing included

    import onnxruntime as ort
    scores = ort.InferenceSession("mlp.onnx").run(None, {"input": x})[0]

``export`` runs the model's forward pass once on ``example_input`` (evaluation mode: Dropout off, BatchNorm on its
running statistics; the mode is restored afterwards), with the input requiring grad so that every op records its
node: the same graph ``backward`` walks. It then visits those nodes in the engine's topological order and writes
each node's ``Function`` as ONNX nodes (the op table, ``chainrule.onnx._ops``); parameters become initializers
named after them ("0.weight"). The model is built with the ``onnx`` package (opset 17), passes ``onnx.checker``
(full check, with shape inference), and is written atomically. The input is ``"input"`` with a dynamic batch axis
``N``, the output ``"output"``.

Exportable ops (the table in ``chainrule.onnx._ops``): arithmetic and elementwise ops, matmul, reductions, shapes,
softmax / log-softmax, ``Linear``, ``Maxout``, every activation, ``BatchNorm`` (evaluation) over (N, C) and
(N, C, H, W), ``LayerNorm``, ``conv2d`` (stride, padding, dilation, groups), ``max_pool2d`` (ceil_mode included) and
``avg_pool2d`` (every divisor rule), ``pad`` (constant, reflect, replicate) and basic indexing (slices with any
step, ints). Dropout is the identity in evaluation mode and leaves no node.

An estimator is exported through its ``as_module()``: its input steps (standardisation, mean image, ZCA whitening)
followed by its network or linear map, on the flattened raw rows (N, D) as float32; its output is the class scores
(N, C), columns in ``classes_`` order; a conv net's test-time augmentation is in the graph too. Estimators whose
prediction is not such a graph (kNN, hand-designed HOG features, an MLP's test-time flip of the raw image) are
refused, saying why. An op with no ONNX form raises ``OnnxExportError`` naming
it. Needs the ``interop`` extra (``pip install 'chainrule[interop]'``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from chainrule.onnx._graph import OnnxExportError, build_graph, trace
from chainrule.utils.atomic import atomic_write_bytes

__all__ = ["export", "OnnxExportError", "OPSET"]

OPSET = 17


def _as_module(obj: Any) -> Any:
    from chainrule.nn import Module

    if isinstance(obj, Module):
        return obj
    as_module = getattr(obj, "as_module", None)
    if as_module is None:
        raise OnnxExportError(f"cannot export a {type(obj).__name__}: export takes an nn.Module or a fitted estimator "
                              "whose prediction is a computational graph (LinearSVM, SoftmaxClassifier, "
                              "MLPClassifier); a kNN classifier compares with its stored training set instead")
    return as_module()


def export(model_or_estimator: Any, example_input: Any, path: str | os.PathLike | None = None, *,
           input_name: str = "input", output_name: str = "output", dynamic_batch: bool = True) -> Any:
    """Write the forward pass of ``model_or_estimator`` on ``example_input`` (N, ...) as an ONNX model to ``path``
    (if given) and return the ``onnx.ModelProto``. See the module docstring."""
    try:
        import onnx
        import onnx.checker
        import onnx.numpy_helper
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise ImportError("ONNX export needs the 'onnx' package: pip install 'chainrule[interop]'") from e
    from chainrule.onnx._ops import CONVERTERS

    module = _as_module(model_or_estimator)
    example = np.asarray(getattr(example_input, "data", example_input))
    if example.dtype.kind != "f":
        raise OnnxExportError(f"example_input must be floating point (the model's input dtype), got {example.dtype}; "
                              "convert it, e.g. X[:1].astype(np.float32)")
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        x, out, records = trace(module, example)
    finally:
        for m, training in modes:
            m.__dict__["training"] = training
    param_names = {id(p): name for name, p in module.named_parameters()}
    graph = build_graph(onnx, CONVERTERS, x, out, records, param_names, input_name, output_name, dynamic_batch)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="chainrule", ir_version=min(onnx.IR_VERSION, 10))
    from chainrule import __version__

    proto.producer_version = __version__
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        atomic_write_bytes(path, proto.SerializeToString())
    return proto
