"""The functional face of every op: ``ops.exp(x)`` is ``Exp.apply(x)``. Tensor methods and operators call these.

Each op is one small ``Function`` subclass in the module named for its family (arithmetic, elementwise, reduce,
shape, linalg, softmax); ``chainrule.Function`` is the same API for your own ops. Like NumPy's, the names
abs, sum, max, min and pow shadow Python's built-ins inside this module.

Arguments take NumPy's names and PyTorch's: ``axis=`` or ``dim=``, ``keepdims=`` or ``keepdim=`` (passing both
names of one argument raises). ``max``/``min`` with ``dim=`` return PyTorch's ``(values, indices)``; with ``axis=``
(or positionally) the values, as NumPy's ``max`` and PyTorch's ``amax``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from chainrule.ops._util import axis_args, normalize_axes
from chainrule.ops.arithmetic import Add, Div, Mul, Neg, Pow, Sub
from chainrule.ops.elementwise import (
    Abs, AsType, Clip, Exp, Log, Maximum, Minimum, Relu, Sigmoid, Sqrt, Tanh, Where, stable_sigmoid,
)
from chainrule.ops.linalg import MatMul
from chainrule.ops.reduce import Max, Mean, Min, Sum, Var
from chainrule.ops import indexing as _indexing
from chainrule.ops.shape import (
    BroadcastTo, Clone, Concatenate, GetItem, IndexAdd, Reshape, Squeeze, Stack, Transpose, Unsqueeze,
)
from chainrule.ops.softmax import LogSoftmax, LogSumExp, Softmax, stable_logsumexp
from chainrule.tensor import Tensor, ValuesIndices

Axis = Any  # None, int or tuple of ints
Flag = Any  # bool or None (PyTorch's keepdim=, when given)


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
    """x limited to [min, max]; the bounds may be numbers or tensors (which then get gradients where active)."""
    return Clip.apply(x, min, max)


clamp = clip


def where(condition: Any, a: Any, b: Any) -> Tensor:
    return Where.apply(condition, a, b)


def astype(x: Any, dtype: Any) -> Tensor:
    return AsType.apply(x, np.dtype(dtype))


def sum(x: Any, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: Flag = None) -> Tensor:
    if dim is not None or keepdim is not None:
        axis, keepdims = axis_args("sum", axis, keepdims, dim, keepdim)
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: Flag = None) -> Tensor:
    if dim is not None or keepdim is not None:
        axis, keepdims = axis_args("mean", axis, keepdims, dim, keepdim)
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def _extremum(op: str, fn: Any, cls: Any, x: Any, axis: Axis, keepdims: bool, dim: Axis, keepdim: Flag) -> Any:
    if dim is None:
        if keepdim is not None:
            axis, keepdims = axis_args(op, axis, keepdims, None, keepdim)
        return cls.apply(x, axis=axis, keepdims=keepdims)
    if axis is not None:
        axis_args(op, axis, keepdims, dim, keepdim)  # raises: both names given
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}(dim=...) takes one int dimension (it returns PyTorch's (values, indices)); "
                        f"for several axes use {op}(axis={dim!r}), which returns the values")
    # PyTorch's max(dim): the values are the elements at the indices, so a tie sends the gradient to the one index
    # returned (max(axis=), PyTorch's amax, splits it between the tied elements instead).
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    (d,) = normalize_axes(op, dim, data.ndim) or (0,)
    keep = bool(keepdim)
    if data.ndim == 0:
        return ValuesIndices(cls.apply(x, axis=d, keepdims=keep), Tensor(np.zeros((), dtype=np.int64)))
    if data.shape[d] == 0:
        cls.apply(x, axis=d)  # raises the empty-axis error
    arg = fn(data, axis=d)
    grids = np.indices(arg.shape, sparse=True)
    values = GetItem.apply(x, tuple(grids[:d]) + (arg,) + tuple(grids[d:]))
    if keep:
        values, arg = Unsqueeze.apply(values, axis=d), np.expand_dims(arg, d)
    return ValuesIndices(values, Tensor(arg.astype(np.int64, copy=False)))


def max(x: Any, axis: Axis = None, keepdims: bool = False, *, dim: int | None = None, keepdim: Flag = None) -> Any:
    """The maximum over ``axis`` (all axes by default); with ``dim=d``, PyTorch's ``(values, indices)`` over d."""
    return _extremum("max", np.argmax, Max, x, axis, keepdims, dim, keepdim)


def min(x: Any, axis: Axis = None, keepdims: bool = False, *, dim: int | None = None, keepdim: Flag = None) -> Any:
    """The minimum over ``axis`` (all axes by default); with ``dim=d``, PyTorch's ``(values, indices)`` over d."""
    return _extremum("min", np.argmin, Min, x, axis, keepdims, dim, keepdim)


def amax(x: Any, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: Flag = None) -> Tensor:
    """The maximum values over ``axis``/``dim`` (PyTorch's ``amax``; ``max`` with ``axis=``)."""
    axis, keepdims = axis_args("amax", axis, keepdims, dim, keepdim)
    return Max.apply(x, axis=axis, keepdims=keepdims)


def amin(x: Any, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: Flag = None) -> Tensor:
    """The minimum values over ``axis``/``dim`` (PyTorch's ``amin``; ``min`` with ``axis=``)."""
    axis, keepdims = axis_args("amin", axis, keepdims, dim, keepdim)
    return Min.apply(x, axis=axis, keepdims=keepdims)


def _arg(fn: Any, op: str, x: Any, axis: Any, keepdims: bool, dim: Any, keepdim: Flag) -> Tensor:
    axis, keepdims = axis_args(op, axis, keepdims, dim, keepdim)
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    if axis is not None and not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}: expected one int axis or None (the flattened array), got {axis!r}")
    if data.ndim == 0:
        if axis not in (None, 0, -1):
            raise ValueError(f"{op}: axis {axis} is out of range for a 0-d tensor")
        return Tensor(np.zeros((), dtype=np.int64))
    return Tensor(np.asarray(fn(data, axis=axis, keepdims=keepdims), dtype=np.int64))


def argmax(x: Any, axis: int | None = None, keepdims: bool = False, *, dim: int | None = None,
           keepdim: Flag = None) -> Tensor:
    """Indices of the maxima along ``axis`` (of the flattened tensor for None): an int64 tensor, off the graph."""
    return _arg(np.argmax, "argmax", x, axis, keepdims, dim, keepdim)


def argmin(x: Any, axis: int | None = None, keepdims: bool = False, *, dim: int | None = None,
           keepdim: Flag = None) -> Tensor:
    """Indices of the minima along ``axis`` (of the flattened tensor for None): an int64 tensor, off the graph."""
    return _arg(np.argmin, "argmin", x, axis, keepdims, dim, keepdim)


def var(x: Any, axis: Axis = None, keepdims: bool = False, ddof: int = 0, *, dim: Axis = None, keepdim: Flag = None,
        correction: int | None = None) -> Tensor:
    """Variance with ``ddof`` (NumPy's default 0); PyTorch's ``correction=`` is the same number (its default is 1)."""
    if dim is not None or keepdim is not None:
        axis, keepdims = axis_args("var", axis, keepdims, dim, keepdim)
    if correction is not None:
        if ddof:
            raise TypeError(f"var: got ddof={ddof} and correction={correction}, two names of one argument; pass one")
        ddof = correction
    return Var.apply(x, axis=axis, keepdims=keepdims, ddof=ddof)


def reshape(x: Any, shape: Sequence[int]) -> Tensor:
    return Reshape.apply(x, tuple(shape) if not isinstance(shape, int) else (shape,))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    return Transpose.apply(x, None if axes is None else tuple(axes))


def permute(x: Any, axes: Sequence[int]) -> Tensor:
    return Transpose.apply(x, tuple(axes))


def broadcast_to(x: Any, shape: Sequence[int]) -> Tensor:
    return BroadcastTo.apply(x, tuple(shape))


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim`` .. ``end_dim`` (inclusive) into one, as PyTorch's ``flatten`` (all by default)."""
    shape = np.shape(x.data if isinstance(x, Tensor) else x)
    n = len(shape)
    if n == 0:
        return Reshape.apply(x, (1,))
    start, end = (int(d) % n if -n <= d < n else None for d in (start_dim, end_dim))
    if start is None or end is None or start > end:
        raise ValueError(f"flatten: start_dim={start_dim} and end_dim={end_dim} must name axes of a tensor with "
                         f"{n} dimensions, start_dim before end_dim")
    merged = int(np.prod(shape[start:end + 1], dtype=np.int64))
    return Reshape.apply(x, shape[:start] + (merged,) + shape[end + 1:])


def squeeze(x: Any, axis: Axis = None, *, dim: Axis = None) -> Tensor:
    if dim is not None:
        axis, _ = axis_args("squeeze", axis, False, dim, None)
    return Squeeze.apply(x, axis=axis)


def unsqueeze(x: Any, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    axis, _ = axis_args("unsqueeze", axis, False, dim, None)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"unsqueeze: expected an int axis (axis= or dim=), got {axis!r}")
    return Unsqueeze.apply(x, axis=int(axis))


def clone(x: Any) -> Tensor:
    """A copy of ``x`` on the graph (new memory; the gradient passes through), as PyTorch's ``clone``."""
    return Clone.apply(x)


def getitem(x: Any, index: Any) -> Tensor:
    """``x[index]`` with PyTorch's rule where it differs from NumPy's (integers beside arrays, Python bools):
    see ``chainrule.ops.indexing``."""
    plan = _indexing.plan(np.ndim(x.data), index)
    return GetItem.apply(x, plan if (plan.insert or plan.perm is not None) else plan.index)


def concatenate(tensors: Sequence[Any], axis: int | None = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along ``axis`` (``None``: flatten each first, as NumPy); PyTorch's ``cat`` is the same."""
    if dim is not None:
        axis, _ = axis_args("concatenate", None if axis == 0 else axis, False, dim, None)
    if len(tensors) == 0:
        raise ValueError("concatenate: need at least one tensor")
    return Concatenate.apply(*tensors, axis=axis)


cat = concatenate


def stack(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    if dim is not None:
        axis, _ = axis_args("stack", None if axis == 0 else axis, False, dim, None)
    if len(tensors) == 0:
        raise ValueError("stack: need at least one tensor")
    return Stack.apply(*tensors, axis=axis)


def softmax(x: Any, axis: int = -1, *, dim: int | None = None) -> Tensor:
    if dim is not None:
        axis, _ = axis_args("softmax", None if axis == -1 else axis, False, dim, None)
    return Softmax.apply(x, axis=axis)


def log_softmax(x: Any, axis: int = -1, *, dim: int | None = None) -> Tensor:
    if dim is not None:
        axis, _ = axis_args("log_softmax", None if axis == -1 else axis, False, dim, None)
    return LogSoftmax.apply(x, axis=axis)


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: Flag = None) -> Tensor:
    if dim is not None or keepdim is not None:
        axis, keepdims = axis_args("logsumexp", axis, keepdims, dim, keepdim)
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)
