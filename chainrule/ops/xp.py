"""The vocabulary backward formulas are written in, so that one formula serves both kinds of backward pass.

Every ``Function.backward`` runs in one of two ways (``chainrule.function``): on NumPy arrays (the fast path of a
plain ``backward()``), or on Tensors with grad mode on (``create_graph=True``: the backward pass recorded as a graph
of its own, so that it can be differentiated again). A formula written with

- Python's operators (``+ - * / ** @``, unary ``-``; ``x -= y`` too: in place on an array, a new Tensor otherwise),
- the methods arrays and Tensors share (``sum``, ``mean``, ``reshape``, ``transpose``, ``astype``, ``.T``,
  indexing, ``shape``/``ndim``/``dtype``), and
- the functions below,

works both ways: on arrays each function here *is* the NumPy function (one type check of overhead), on Tensors it
is the chainrule op, recorded on the graph. ``value(x)`` gives the array inside a Tensor, for what the second
derivative must treat as a constant: masks and comparisons (``value(x) > 0``), whose derivative is zero wherever
it exists.

A NumPy function called directly on a Tensor during a ``create_graph`` backward raises instead of returning a
constant array (``Tensor.__array__``), so a formula that is not written this way fails loudly, never silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import gemm as _gemm
from chainrule.tensor import Tensor

_ndarray = np.ndarray


def _arrays(*xs: Any) -> bool:
    """True when none of ``xs`` is a Tensor (NumPy arrays and numbers): compute with NumPy."""
    for x in xs:
        if isinstance(x, Tensor):
            return False
    return True


def value(x: Any) -> Any:
    """The NumPy array inside a Tensor (an array or number as it is): a constant of the second derivative."""
    return x.data if isinstance(x, Tensor) else x


def exp(x: Any) -> Any:
    return _elementwise.Exp.apply(x) if isinstance(x, Tensor) else np.exp(x)


def log(x: Any) -> Any:
    return _elementwise.Log.apply(x) if isinstance(x, Tensor) else np.log(x)


def sigmoid(x: Any) -> Any:
    """1 / (1 + e^-x), never overflowing (``stable_sigmoid`` on arrays)."""
    return _elementwise.Sigmoid.apply(x) if isinstance(x, Tensor) else _elementwise.stable_sigmoid(x)


def where(condition: np.ndarray, a: Any, b: Any) -> Any:
    """``a`` where ``condition`` (an array: a mask is a constant) holds, else ``b``."""
    return np.where(condition, a, b) if _arrays(a, b) else _elementwise.Where.apply(condition, a, b)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    return _shape.BroadcastTo.apply(x, tuple(shape)) if isinstance(x, Tensor) else np.broadcast_to(x, shape)


def gemm(a: Any, b: Any, trans_a: bool = False, trans_b: bool = False) -> Any:
    """op(a) @ op(b) for 2-D operands, op(x) = x.T if trans_x: ``chainrule.backend.gemm`` on arrays (the transposes
    are BLAS flags), the matmul op on Tensors."""
    if type(a) is _ndarray and type(b) is _ndarray:
        return _gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    return _linalg.MatMul.apply(a.T if trans_a else a, b.T if trans_b else b)


def swap_last(x: Any) -> Any:
    """``x`` with its last two axes exchanged (a view of an array; the transpose op on a Tensor)."""
    axes = list(range(x.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return x.transpose(tuple(axes))


def index_add(grad: Any, shape: tuple[int, ...], index: Any) -> Any:
    """Zeros of ``shape`` with ``grad`` added at ``index`` (repeated indices add up): the backward of ``x[index]``,
    itself differentiable (its backward is ``g[index]``)."""
    if isinstance(grad, Tensor):
        return _shape.IndexAdd.apply(grad, shape, index)
    return _shape.index_add(grad, shape, index)


from chainrule.ops import elementwise as _elementwise  # noqa: E402  (the ops import this module: imported last)
from chainrule.ops import linalg as _linalg  # noqa: E402
from chainrule.ops import shape as _shape  # noqa: E402
