"""Ops that move elements without changing them: reshape, transpose/permute, broadcast_to, squeeze/unsqueeze,
indexing, concatenate and stack, clone. Their backward moves the gradient back (with shape ops again, so it is
differentiable in turn; the backward of indexing is ``IndexAdd``, whose backward is indexing)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function
from chainrule.ops import xp
from chainrule.ops._util import cast, normalize_axes, result_dtype, unbroadcast
from chainrule.ops.indexing import IndexPlan
from chainrule.tensor import Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape {x.shape} ({x.size} elements) into {tuple(shape)}; "
                "the number of elements must stay the same"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Transpose(Function):
    """Permute the axes (``axes=None`` reverses them, like ``.T``)."""

    @staticmethod
    def forward(ctx, x, axes=None):
        if axes is not None and sorted(int(a) % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {tuple(axes)} are not a permutation of the {x.ndim} axes of {x.shape}")
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        inverse = None if ctx.axes is None else tuple(np.argsort([int(a) % grad.ndim for a in ctx.axes]).tolist())
        return grad.transpose(inverse), None


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast {x.shape} to {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shape), None


class Squeeze(Function):
    @staticmethod
    def forward(ctx, x, axis=None):
        ctx.shape = x.shape
        axes = normalize_axes("squeeze", axis, x.ndim)
        if axes is not None and any(x.shape[a] != 1 for a in axes):
            raise ValueError(f"squeeze: axis {axis} of shape {x.shape} does not have size 1")
        return np.squeeze(x, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class Unsqueeze(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.shape = x.shape
        if not -x.ndim - 1 <= axis <= x.ndim:
            raise ValueError(f"unsqueeze: axis {axis} is out of range for a tensor with {x.ndim} dimensions "
                             f"(valid: [{-x.ndim - 1}, {x.ndim}])")
        return np.expand_dims(x, axis)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


def _is_basic_index(index: Any) -> bool:
    """True for indices of ints, slices, None and Ellipsis only (no arrays): each element is picked at most once."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis))) for i in items)


class GetItem(Function):
    """``x[index]`` for slices and integer/boolean array indices; repeated indices accumulate their gradients.
    ``index`` is a NumPy index, or an ``IndexPlan`` (``chainrule.ops.indexing``: PyTorch's rule for mixed
    indices, NumPy indexing then a transpose)."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape = x.shape
        if isinstance(index, IndexPlan):
            ctx.plan = index
            return index.apply(x)
        ctx.plan = IndexPlan((), index, None)
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        plan = ctx.plan
        if plan.perm is not None:
            grad = grad.transpose(tuple(int(a) for a in np.argsort(plan.perm)))
        expanded = ctx.shape
        for axis in plan.insert:
            expanded = expanded[:axis] + (1,) + expanded[axis:]
        out = xp.index_add(grad, expanded, plan.index)
        return (out.reshape(ctx.shape) if plan.insert else out), None


def index_add(grad: np.ndarray, shape: tuple[int, ...], index: Any) -> np.ndarray:
    """Zeros of ``shape`` with ``grad`` added at ``index`` (so repeated indices accumulate)."""
    out = np.zeros(shape, dtype=grad.dtype)
    if _is_basic_index(index):
        out[index] = grad
    else:
        np.add.at(out, index, grad)
    return out


class IndexAdd(Function):
    """``index_add(grad, shape, index)`` as an op (the backward of ``x[index]`` on the graph): its backward is
    ``g[index]``."""

    @staticmethod
    def forward(ctx, grad, shape, index):
        ctx.index = index
        return index_add(grad, shape, index)

    @staticmethod
    def backward(ctx, g):
        return (GetItem.apply(g, ctx.index) if isinstance(g, Tensor) else g[ctx.index]), None, None


def _along(axis: int, ndim: int, index: Any) -> tuple:
    """The index that picks ``index`` (an int or a slice) along ``axis`` of an ``ndim``-dimensional array."""
    return (slice(None),) * (axis % ndim) + (index,)


class Concatenate(Function):
    """Join along ``axis``; ``axis=None`` flattens every input first, as NumPy does. Mixed dtypes are promoted."""

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        dtype = result_dtype(*arrays)
        arrays = [cast(a, dtype) for a in arrays]
        ctx.axis, ctx.shapes = axis, [a.shape for a in arrays]
        try:
            out = np.concatenate(arrays, axis=axis)
        except ValueError as err:
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            raise ValueError(f"concatenate: shapes {shapes} must match except along axis {axis}: {err}") from None
        # after the check: a bad axis or ndim fails above, clearly
        ctx.sizes = [a.size if axis is None else a.shape[axis] for a in arrays]
        return out

    @staticmethod
    def backward(ctx, grad):
        ends = np.cumsum(ctx.sizes).tolist()
        starts = [0] + ends[:-1]
        if ctx.axis is None:
            return tuple(grad[a:b].reshape(shape) for a, b, shape in zip(starts, ends, ctx.shapes))
        return tuple(grad[_along(ctx.axis, grad.ndim, slice(a, b))] for a, b in zip(starts, ends))


class Stack(Function):
    """Join along a new ``axis``; mixed dtypes are promoted."""

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        shapes = {np.shape(a) for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"stack: all inputs must have the same shape, got {sorted(shapes)}")
        dtype = result_dtype(*arrays)
        ctx.axis, ctx.n = axis, len(arrays)
        return np.stack([cast(a, dtype) for a in arrays], axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(grad[_along(ctx.axis, grad.ndim, i)] for i in range(ctx.n))


class Clone(Function):
    """A copy of ``x`` (PyTorch's ``clone``): new memory, the gradient passes through unchanged."""

    @staticmethod
    def forward(ctx, x):
        return np.array(x, copy=True)

    @staticmethod
    def backward(ctx, grad):
        return grad
