"""The op table: each exportable ``Function`` class -> a converter writing its forward pass as ONNX nodes (opset 17).

A converter is ``convert(b, node, args, kwargs) -> output name``: ``b`` is the ``GraphBuilder`` (``b.value(arg)``
names an argument: a Tensor of the graph, a parameter or a constant; ``b.op(type, inputs, **attrs)`` adds a node),
``node`` the recorded node (its saved options and ``node._out``, the output array), ``args`` / ``kwargs`` the
arguments ``apply`` was called with. One row per op, as one ``Function`` per op: a new op is exportable once its row
is here. Ops with no row (the losses, dropout in training, indexing) are refused naming the op.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from chainrule.nn._functions import activation as act
from chainrule.nn._functions import linear as lin
from chainrule.nn._functions import normalization as norm
from chainrule.nn._functions import pooling as pool
from chainrule.nn._functions import resize
from chainrule.onnx._graph import GraphBuilder, OnnxExportError
from chainrule.ops import arithmetic as ar
from chainrule.ops import elementwise as el
from chainrule.ops import conv, linalg, reduce, shape
from chainrule.ops.softmax import LogSoftmax, LogSumExp, Softmax

Converter = Callable[[GraphBuilder, Any, tuple, dict], str]
CONVERTERS: dict[type, Converter] = {}


def _row(*functions: type) -> Callable[[Converter], Converter]:
    def register(convert: Converter) -> Converter:
        for f in functions:
            CONVERTERS[f] = convert
        return convert
    return register


def _same(op_type: str) -> Converter:
    """An op whose ONNX node takes the same positional inputs."""
    def convert(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
        return b.op(op_type, [b.value(a) for a in args])
    return convert


for _fn, _onnx in [(ar.Add, "Add"), (ar.Sub, "Sub"), (ar.Mul, "Mul"), (ar.Div, "Div"), (ar.Neg, "Neg"),
                   (ar.Pow, "Pow"), (el.Exp, "Exp"), (el.Log, "Log"), (el.Sqrt, "Sqrt"), (el.Abs, "Abs"),
                   (el.Tanh, "Tanh"), (el.Sigmoid, "Sigmoid"), (el.Relu, "Relu"), (el.Maximum, "Max"),
                   (el.Minimum, "Min"), (linalg.MatMul, "MatMul"), (shape.Clone, "Identity")]:
    CONVERTERS[_fn] = _same(_onnx)


@_row(el.Where)
def _where(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    condition = np.asarray(args[0].data if hasattr(args[0], "_ctx") else args[0], dtype=bool)
    return b.op("Where", [b.const(condition, "condition"), b.value(args[1]), b.value(args[2])])


@_row(el.Clip)
def _clip(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    x, lo, hi = (list(args) + [None, None])[:3]
    out = b.value(x)
    if lo is not None:
        out = b.op("Max", [out, b.value(lo)])
    if hi is not None:
        out = b.op("Min", [out, b.value(hi)])
    return out


@_row(el.AsType)
def _astype(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    return b.op("Cast", [b.value(args[0])], to=b.onnx.helper.np_dtype_to_tensor_dtype(node._out.dtype))


# ---- reductions and shapes ------------------------------------------------------------------------------------------


def _axes(node: Any, ndim: int) -> list[int]:
    axes = node.axes
    return list(range(ndim)) if axes is None else [int(a) for a in axes]


@_row(reduce.Sum)
def _sum(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    ndim = np.ndim(args[0].data)
    axes = b.const(np.array(_axes(node, ndim), dtype=np.int64), "axes")
    return b.op("ReduceSum", [b.value(args[0]), axes], keepdims=int(bool(node.keepdims)))


def _reduce(op_type: str) -> Converter:
    def convert(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
        return b.op(op_type, [b.value(args[0])], axes=_axes(node, np.ndim(args[0].data)),
                    keepdims=int(bool(node.keepdims)))
    return convert


CONVERTERS.update({reduce.Mean: _reduce("ReduceMean"), reduce.Max: _reduce("ReduceMax"),
                   reduce.Min: _reduce("ReduceMin"), LogSumExp: _reduce("ReduceLogSumExp")})


def _target_shape(b: GraphBuilder, node: Any, args: tuple) -> str:
    """The output shape as a Reshape/Expand input; a leading batch axis kept from the input stays dynamic (0)."""
    out_shape = list(node._out.shape)
    in_shape = np.shape(args[0].data)
    if out_shape and in_shape and out_shape[0] == in_shape[0] and node._out.ndim > 0:
        out_shape[0] = 0
    return b.const(np.array(out_shape, dtype=np.int64), "shape")


@_row(shape.Reshape, shape.Squeeze, shape.Unsqueeze)
def _reshape(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    return b.op("Reshape", [b.value(args[0]), _target_shape(b, node, args)])


@_row(shape.BroadcastTo)
def _broadcast(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    return b.op("Expand", [b.value(args[0]), b.const(np.array(node._out.shape, dtype=np.int64), "shape")])


@_row(shape.Transpose)
def _transpose(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    ndim = np.ndim(args[0].data)
    perm = list(range(ndim))[::-1] if node.axes is None else [int(a) % ndim for a in node.axes]
    return b.op("Transpose", [b.value(args[0])], perm=perm)


@_row(shape.Concatenate)
def _concat(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    if node.axis is None:
        raise OnnxExportError("Concatenate with axis=None (flattening) has no ONNX form here; flatten explicitly")
    return b.op("Concat", [b.value(a) for a in args], axis=int(node.axis))


@_row(shape.Stack)
def _stack(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    axis = b.const(np.array([int(node.axis) % node._out.ndim], dtype=np.int64), "axis")
    return b.op("Concat", [b.op("Unsqueeze", [b.value(a), axis]) for a in args], axis=int(node.axis))


@_row(Softmax)
def _softmax(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    return b.op("Softmax", [b.value(args[0])], axis=int(node.axis))


@_row(LogSoftmax)
def _log_softmax(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    return b.op("LogSoftmax", [b.value(args[0])], axis=int(node.axis))


# ---- nn layers --------------------------------------------------------------------------------------------------


def _affine(b: GraphBuilder, x: Any, weight: Any, bias: Any) -> str:
    if np.ndim(x.data) == 2:
        return b.op("Gemm", [b.value(x), b.value(weight)] + ([b.value(bias)] if bias is not None else []))
    out = b.op("MatMul", [b.value(x), b.value(weight)])
    return out if bias is None else b.op("Add", [out, b.value(bias)])


@_row(lin.Linear)
def _linear(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    x, weight, bias = (list(args) + [kwargs.get("bias")])[:3]
    return _affine(b, x, weight, bias)


@_row(act.Maxout)
def _maxout(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    x, weight, bias = (list(args) + [kwargs.get("bias")])[:3]
    pieces = int(node.pieces)
    z = _affine(b, x, weight, bias)
    z3 = b.op("Reshape", [z, b.const(np.array([0, pieces, node._out.shape[-1]], dtype=np.int64), "shape")])
    return b.op("ReduceMax", [z3], axes=[1], keepdims=0)


@_row(act.LeakyRelu)
def _leaky_relu(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    return b.op("LeakyRelu", [b.value(args[0])], alpha=float(node.slope))


@_row(act.Elu)
def _elu(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    return b.op("Elu", [b.value(args[0])], alpha=float(node.alpha))


@_row(act.GeluErf)
def _gelu(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    """x * 0.5 * (1 + erf(x / sqrt 2)) (ONNX's Gelu op needs opset 20)."""
    x = b.value(args[0])
    erf = b.op("Erf", [b.op("Mul", [x, b.const(1.0 / math.sqrt(2.0))])])
    return b.op("Mul", [b.op("Mul", [x, b.op("Add", [erf, b.const(1.0)])]), b.const(0.5)])


@_row(act.GeluTanh)
def _gelu_tanh(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    """0.5 x (1 + tanh(sqrt(2/pi) (xc + 0.044715 xc^3))) with xc = clip(x, -10, 10), as chainrule computes it."""
    x = b.value(args[0])
    xc = b.op("Clip", [x, b.const(-10.0), b.const(10.0)])
    cube = b.op("Mul", [b.op("Mul", [xc, xc]), xc])
    inner = b.op("Add", [xc, b.op("Mul", [cube, b.const(act._GELU_CUBIC)])])
    t = b.op("Tanh", [b.op("Mul", [inner, b.const(act._SQRT_2_OVER_PI)])])
    return b.op("Mul", [b.op("Mul", [x, b.op("Add", [t, b.const(1.0)])]), b.const(0.5)])


@_row(norm.BatchNorm)
def _batch_norm(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    if node.training:
        raise OnnxExportError("BatchNorm normalises with batch statistics here (training mode, or "
                              "track_running_stats=False), which has no fixed ONNX form; export a model in eval() "
                              "mode with running statistics")
    x, weight, bias = args[:3]
    channels = np.shape(x.data)[1]
    dtype = node._out.dtype
    scale = b.value(weight) if weight is not None else b.const(np.ones(channels, dtype), "scale")
    shift = b.value(bias) if bias is not None else b.const(np.zeros(channels, dtype), "bias")
    mean = b.const(np.asarray(kwargs["running_mean"], dtype), "running_mean")
    var = b.const(np.asarray(kwargs["running_var"], dtype), "running_var")
    return b.op("BatchNormalization", [b.value(x), scale, shift, mean, var], epsilon=float(node.eps))


@_row(norm.LayerNorm)
def _layer_norm(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    x, weight, bias = args[:3]
    shape_ = np.shape(x.data)[min(node.axes):]
    dtype = node._out.dtype
    scale = b.value(weight) if weight is not None else b.const(np.ones(shape_, dtype), "scale")
    inputs = [b.value(x), scale] + ([b.value(bias)] if bias is not None else [])
    return b.op("LayerNormalization", inputs, axis=int(min(node.axes)), epsilon=float(node.eps))


# ---- convolutions and pooling (x (N, C, H, W); the memory layout chainrule keeps is not part of the graph) --------


def _geometry(geom: Any) -> dict[str, list[int]]:
    """ONNX's strides / pads [top, left, bottom, right] / dilations of a ``ConvGeometry``."""
    (top, bottom), (left, right) = geom.padding
    return {"strides": list(geom.stride), "pads": [top, left, bottom, right], "dilations": list(geom.dilation)}


@_row(conv.Conv2d)
def _conv2d(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    x, w, bias = (list(args) + [None])[:3]
    inputs = [b.value(x), b.value(w)] + ([b.value(bias)] if bias is not None else [])
    return b.op("Conv", inputs, group=int(node.geom.groups), kernel_shape=list(np.shape(w.data)[2:]),
                **_geometry(node.geom))


@_row(pool.MaxPool2d)
def _max_pool2d(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    window = node.window  # its padding includes ceil_mode's extra rows and columns, padded with -inf like ONNX's
    return b.op("MaxPool", [b.value(args[0])], kernel_shape=list(window.kernel), **_geometry(window.geometry))


@_row(pool.AvgPool2d)
def _avg_pool2d(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    """Each window's sum over chainrule's divisor (Ho, Wo), which covers count_include_pad, ceil_mode and
    divisor_override alike: AveragePool counting the padding (the sum / kh kw), times kh kw, over the divisor."""
    window = node.window
    geometry = _geometry(window.geometry)
    del geometry["dilations"]
    mean = b.op("AveragePool", [b.value(args[0])], kernel_shape=list(window.kernel), count_include_pad=1, **geometry)
    scale = (window.kernel[0] * window.kernel[1]) / window.divisor
    return b.op("Mul", [mean, b.const(scale.astype(node._out.dtype), "divisor")])


@_row(resize.Pad)
def _pad(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}
    if node.mode not in modes:
        raise OnnxExportError(f"Pad with mode={node.mode!r} has no ONNX form at opset 17 (circular needs 'wrap', "
                              "opset 19); use 'constant', 'reflect' or 'replicate'")
    ndim = node._out.ndim
    per_axis = [(0, 0)] * (ndim - len(node.pads)) + [tuple(int(v) for v in p) for p in node.pads]
    pads = b.const(np.array([lo for lo, _ in per_axis] + [hi for _, hi in per_axis], dtype=np.int64), "pads")
    inputs = [b.value(args[0]), pads]
    if node.mode == "constant":
        inputs.append(b.const(np.array(kwargs.get("value", 0.0), dtype=node._out.dtype), "value"))
    return b.op("Pad", inputs, mode=modes[node.mode])


@_row(shape.GetItem)
def _getitem(b: GraphBuilder, node: Any, args: tuple, kwargs: dict) -> str:
    """Basic indexing (slices with any step, ints, Ellipsis) as Slice and Squeeze; array, boolean and None indices
    are refused. An untouched axis (the batch axis, usually) stays dynamic."""
    plan = node.plan
    index = plan.index if plan.perm is None and not plan.insert else None
    index = index if isinstance(index, tuple) else (index,)
    if any(i is None or isinstance(i, bool) or not (isinstance(i, (slice, int, np.integer)) or i is Ellipsis)
           for i in index):
        raise OnnxExportError(f"GetItem with the index {index!r} has no ONNX form in chainrule.onnx; index with "
                              "slices, ints and Ellipsis")
    shape_ = np.shape(args[0].data)
    explicit = sum(i is not Ellipsis for i in index)
    at = index.index(Ellipsis) if Ellipsis in index else len(index)
    index = index[:at] + (slice(None),) * (len(shape_) - explicit) + index[at + 1:]
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for axis, (i, dim) in enumerate(zip(index, shape_)):
        if isinstance(i, slice):
            start, stop, step = i.indices(dim)
            if (start, stop, step) == (0, dim, 1):
                continue
            stop = stop if stop >= 0 else int(np.iinfo(np.int64).min)  # a negative step down to index 0
        else:
            start, stop, step = int(i) % dim, int(i) % dim + 1, 1
            squeeze.append(axis)
        starts, ends, axes, steps = starts + [start], ends + [stop], axes + [axis], steps + [step]
    out = b.value(args[0])
    if axes:
        out = b.op("Slice", [out] + [b.const(np.array(v, dtype=np.int64), name) for v, name in
                                     ((starts, "starts"), (ends, "ends"), (axes, "axes"), (steps, "steps"))])
    if squeeze:
        out = b.op("Squeeze", [out, b.const(np.array(squeeze, dtype=np.int64), "axes")])
    return out
