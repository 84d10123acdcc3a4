"""Helpers shared by the ops: undoing broadcasting (on arrays or Tensors), normalising axes, dtype promotion."""

from __future__ import annotations

from typing import Any

import numpy as np


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of an array operand, () for a number (cheaper than np.shape for arrays)."""
    return x.shape if type(x) is np.ndarray else np.shape(x)


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` (an array or a Tensor) over the axes that broadcasting expanded, so it has ``shape`` again.

    Broadcasting copies an input along new leading axes and along axes of size 1; the gradient of a copy is the sum
    of the copies' gradients ("copy gate: gradient adder").
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def normalize_axes(op: str, axis: Any, ndim: int) -> tuple[int, ...] | None:
    """``axis`` (None, int or tuple of ints, negatives allowed) as a sorted tuple of non-negative axes.

    A 0-d tensor accepts axis 0 and -1, as in PyTorch: it holds one value, and reducing over that "axis" leaves it
    as it is, so they normalise to no axes at all, ``()``.
    """
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    bound = max(ndim, 1)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: expected integer axes, got {axis!r}")
        if not -bound <= a < bound:
            valid = f"[{-bound}, {bound - 1}]"
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions (valid: {valid})")
        out.append(int(a) % bound)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return () if ndim == 0 else tuple(sorted(out))


def reduces_nothing(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> bool:
    """True when a reduction over ``axes`` of an array of ``shape`` reduces an empty set of values (an empty axis)."""
    return 0 in (shape if axes is None else [shape[a] for a in axes])


def expand_reduced(grad: Any, axes: tuple[int, ...] | None, keepdims: bool) -> Any:
    """Give the gradient of a reduction back its reduced axes (as size 1) so it broadcasts against the input (an
    array or a Tensor: a reshape)."""
    if keepdims or axes is None or not axes:
        return grad
    shape = list(grad.shape)
    for a in axes:  # sorted, so each insertion is at its final position
        shape.insert(a, 1)
    return grad.reshape(tuple(shape))


# ---- dtype promotion: PyTorch's rule ------------------------------------------------------------------------------
#
# Operands fall in three groups: dimensioned arrays (ndim >= 1), 0-d arrays (0-d Tensors), and numbers (Python and
# NumPy scalars). The result dtype is the promotion of the dimensioned operands; a 0-d operand, and then a number,
# changes it only if it is of a higher category (bool < integer < floating < complex): a float32 tensor stays
# float32 beside a float64 number or 0-d tensor, and an integer tensor takes the floating dtype of the other
# operand (a Python float counts as float32, chainrule's default). Within the floating category the wider dtype
# wins (float32 with a float64 tensor of ndim >= 1 gives float64).

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_DEFAULT_FLOAT = np.dtype(np.float32)
_DEFAULT_INT = np.dtype(np.int64)


def _promote_types(a: np.dtype | None, b: np.dtype) -> np.dtype:
    """PyTorch's promote_types: like NumPy's, except that integer with floating gives the floating dtype."""
    if a is None or a == b:
        return b
    ka, kb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ka == 2 and kb < 2:
        return a
    if kb == 2 and ka < 2:
        return b
    return np.promote_types(a, b)


def _number_dtype(x: Any) -> np.dtype:
    if isinstance(x, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(x, (int, np.integer)):
        return _DEFAULT_INT
    if isinstance(x, (float, np.floating)):
        return _DEFAULT_FLOAT
    if isinstance(x, (complex, np.complexfloating)):
        return np.dtype(np.complex64)
    return np.asarray(x).dtype


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    """The higher-priority group's dtype, unless the lower group's is of a higher category (PyTorch's rule)."""
    if higher is None:
        return lower
    if lower is None or _CATEGORY[lower.kind] <= _CATEGORY[higher.kind] and higher.kind != "b":
        return higher
    return _promote_types(higher, lower)


def result_dtype(*operands: Any) -> np.dtype:
    """The dtype PyTorch's promotion gives ``operands`` (arrays, 0-d arrays, numbers; None is skipped)."""
    dims = zeros = numbers = None
    for x in operands:
        if x is None:
            continue
        if isinstance(x, np.ndarray):
            if x.ndim:
                dims = _promote_types(dims, x.dtype)
            else:
                zeros = _promote_types(zeros, x.dtype)
        else:
            numbers = _promote_types(numbers, _number_dtype(x))
    out = _combine(dims, _combine(zeros, numbers))
    return _DEFAULT_FLOAT if out is None else out


def cast(x: Any, dtype: np.dtype) -> Any:
    """``x`` in ``dtype``: an array converted (no copy if it has it), a number as a 0-d array of it."""
    if isinstance(x, np.ndarray):
        return x if x.dtype == dtype else x.astype(dtype)
    return np.asarray(x, dtype=dtype)


def promote(a: Any, b: Any) -> tuple[Any, Any]:
    """The two operands of a binary op in their result dtype (``result_dtype``). The common cases return at once:
    two arrays of one dtype, and a floating array with a Python number (NumPy keeps the array's dtype then)."""
    if type(a) is np.ndarray:
        tb = type(b)
        if tb is np.ndarray:
            if a.dtype is b.dtype:
                return a, b
        elif (tb is float or tb is int) and a.dtype.kind == "f":
            return a, b
    elif type(b) is np.ndarray and (type(a) is float or type(a) is int) and b.dtype.kind == "f":
        return a, b
    dtype = result_dtype(a, b)
    return cast(a, dtype), cast(b, dtype)


def axis_args(op: str, axis: Any, keepdims: bool, dim: Any, keepdim: bool | None) -> tuple[Any, bool]:
    """Resolve NumPy's ``axis``/``keepdims`` and PyTorch's ``dim``/``keepdim`` (the same arguments) into one pair."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: got both axis={axis!r} and dim={dim!r}, two names of one argument; pass one")
        axis = dim
    if keepdim is not None:
        if keepdims and not keepdim:
            raise TypeError(f"{op}: got keepdims=True and keepdim=False, two names of one argument; pass one")
        keepdims = keepdim
    return axis, bool(keepdims)
