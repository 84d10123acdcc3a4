"""The functional face of every op: ``ops.exp(x)`` is ``Exp.apply(x)``. Tensor methods and operators call these.

Each op is one small ``Function`` subclass in the module named for its family (arithmetic, elementwise, reduce,
shape, linalg, softmax); ``chainrule.Function`` is the same API for your own ops. Like NumPy's, the names
abs, sum, max, min and pow shadow Python's built-ins inside this module.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from chainrule.ops.arithmetic import Add, Div, Mul, Neg, Pow, Sub
from chainrule.ops.elementwise import (
    Abs, AsType, Clip, Exp, Log, Maximum, Minimum, Relu, Sigmoid, Sqrt, Tanh, Where, stable_sigmoid,
)
from chainrule.ops.linalg import MatMul
from chainrule.ops.reduce import Max, Mean, Min, Sum, Var
from chainrule.ops.shape import BroadcastTo, Concatenate, GetItem, Reshape, Squeeze, Stack, Transpose, Unsqueeze
from chainrule.ops.softmax import LogSoftmax, LogSumExp, Softmax, stable_logsumexp
from chainrule.tensor import Tensor

Axis = Any  # None, int or tuple of ints


def add(a: Any, b: Any) -> Tensor:
    return Add.apply(a, b)


def sub(a: Any, b: Any) -> Tensor:
    return Sub.apply(a, b)


def mul(a: Any, b: Any) -> Tensor:
    return Mul.apply(a, b)


def div(a: Any, b: Any) -> Tensor:
    return Div.apply(a, b)


def neg(x: Any) -> Tensor:
    return Neg.apply(x)


def pow(a: Any, b: Any) -> Tensor:
    return Pow.apply(a, b)


def matmul(a: Any, b: Any) -> Tensor:
    return MatMul.apply(a, b)


def exp(x: Any) -> Tensor:
    return Exp.apply(x)


def log(x: Any) -> Tensor:
    return Log.apply(x)


def sqrt(x: Any) -> Tensor:
    return Sqrt.apply(x)


def abs(x: Any) -> Tensor:
    return Abs.apply(x)


def tanh(x: Any) -> Tensor:
    return Tanh.apply(x)


def sigmoid(x: Any) -> Tensor:
    return Sigmoid.apply(x)


def relu(x: Any) -> Tensor:
    return Relu.apply(x)


def maximum(a: Any, b: Any) -> Tensor:
    return Maximum.apply(a, b)


def minimum(a: Any, b: Any) -> Tensor:
    return Minimum.apply(a, b)


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:
    return Clip.apply(x, min, max)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    return Where.apply(condition, a, b)


def astype(x: Any, dtype: Any) -> Tensor:
    return AsType.apply(x, np.dtype(dtype))


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return Max.apply(x, axis=axis, keepdims=keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return Min.apply(x, axis=axis, keepdims=keepdims)


def var(x: Any, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    return Var.apply(x, axis=axis, keepdims=keepdims, ddof=ddof)


def reshape(x: Any, shape: Sequence[int]) -> Tensor:
    return Reshape.apply(x, tuple(shape) if not isinstance(shape, int) else (shape,))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    return Transpose.apply(x, None if axes is None else tuple(axes))


def permute(x: Any, axes: Sequence[int]) -> Tensor:
    return Transpose.apply(x, tuple(axes))


def broadcast_to(x: Any, shape: Sequence[int]) -> Tensor:
    return BroadcastTo.apply(x, tuple(shape))


def squeeze(x: Any, axis: Axis = None) -> Tensor:
    return Squeeze.apply(x, axis=axis)


def unsqueeze(x: Any, axis: int) -> Tensor:
    return Unsqueeze.apply(x, axis=axis)


def getitem(x: Any, index: Any) -> Tensor:
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, list):
        index = np.asarray(index)
    return GetItem.apply(x, index)


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    if len(tensors) == 0:
        raise ValueError("concatenate: need at least one tensor")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    if len(tensors) == 0:
        raise ValueError("stack: need at least one tensor")
    return Stack.apply(*tensors, axis=axis)


def softmax(x: Any, axis: int = -1) -> Tensor:
    return Softmax.apply(x, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    return LogSoftmax.apply(x, axis=axis)


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)

