"""PyTorch's indexing rule on NumPy arrays: ``t[index]`` and ``t[index] = value`` give PyTorch's shapes.

NumPy and PyTorch agree on basic indexing (ints, slices, None, Ellipsis) and on advanced indexing (integer and
boolean arrays) alone. They differ when both meet:

- **Integers beside arrays.** NumPy counts an integer as an advanced index when an array is present, so in
  ``y[0, :, [1, 2]]`` on a (3, 4, 5) array the two "advanced" indices are not adjacent and their broadcast
  dimension goes first: (2, 4). PyTorch applies integers first (``select``), leaving one array index, whose
  dimension stays where it was: (4, 2). A 0-d integer array or Tensor counts as an integer, as in PyTorch.
- **Python bools** (and 0-d boolean arrays): PyTorch inserts a dimension there and indexes it with ``[0]``
  (True) or ``[]`` (False), an advanced index that broadcasts with the others.

``plan(ndim, index)`` turns an index into (axes to insert, NumPy index, permutation): NumPy's result of
``expand_dims(a, axes)[np_index]``, transposed by the permutation, is PyTorch's ``a[index]``. The result's
dimensions are the same set either way; only where the advanced block goes differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["IndexPlan", "plan"]


@dataclass(frozen=True)
class IndexPlan:
    insert: tuple[int, ...]  # axes to insert (np.expand_dims) before indexing: one per Python bool
    index: Any  # the NumPy index to apply then
    perm: tuple[int, ...] | None  # the transpose of NumPy's result that gives PyTorch's (None: the same)

    def apply(self, a: np.ndarray) -> np.ndarray:
        """PyTorch's ``a[index]`` (a view where NumPy's would be one)."""
        out = (np.expand_dims(a, self.insert) if self.insert else a)[self.index]
        return out.transpose(self.perm) if self.perm is not None else out

    def assign(self, a: np.ndarray, value: Any) -> None:
        """PyTorch's ``a[index] = value``, in place: ``value`` broadcasts to PyTorch's result shape."""
        target = np.expand_dims(a, self.insert) if self.insert else a  # a view: writes reach ``a``
        if self.perm is None:
            target[self.index] = value
            return
        np_shape = np.empty(target.shape, dtype=np.bool_)[self.index].shape
        torch_shape = tuple(np_shape[p] for p in self.perm)
        target[self.index] = np.broadcast_to(np.asarray(value), torch_shape).transpose(np.argsort(self.perm))


def _entry(i: Any) -> Any:
    """An index entry as NumPy takes it: Tensors' and lists' arrays; 0-d integer arrays as ints."""
    data = getattr(i, "data", None)
    if data is not None and not isinstance(i, (np.ndarray, np.generic, memoryview)):
        i = data  # a chainrule Tensor
    if isinstance(i, list):
        i = np.asarray(i)
    if isinstance(i, np.ndarray) and i.ndim == 0:
        i = i[()]
    if isinstance(i, np.integer):
        return int(i)
    return i


def _is_bool(i: Any) -> bool:
    return isinstance(i, (bool, np.bool_))


def _is_int(i: Any) -> bool:
    return isinstance(i, int) and not isinstance(i, bool)


def _is_array(i: Any) -> bool:
    return isinstance(i, np.ndarray)


def _consumes(i: Any) -> int:
    """Input dimensions an entry indexes."""
    if i is None or i is Ellipsis or _is_bool(i):
        return 0
    if _is_array(i) and i.dtype == np.bool_:
        return i.ndim
    return 1


def plan(ndim: int, index: Any) -> IndexPlan:
    """The NumPy recipe for PyTorch's ``a[index]`` on an ``ndim``-dimensional array (module docstring)."""
    items = [_entry(i) for i in (index if isinstance(index, tuple) else (index,))]
    if not any(_is_array(i) or _is_bool(i) for i in items):  # basic indexing: the two rules agree
        return IndexPlan((), tuple(items) if isinstance(index, tuple) else items[0], None)
    if sum(i is Ellipsis for i in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if any(i is Ellipsis for i in items):
        at = next(n for n, i in enumerate(items) if i is Ellipsis)
        rest = ndim - sum(_consumes(i) for i in items)
        items[at:at + 1] = [slice(None)] * max(rest, 0)
    insert, key, axis = [], [], 0  # axis: the input dimension (counting inserted ones) the next entry indexes
    for i in items:
        if _is_bool(i):
            insert.append(axis)
            i = np.zeros(1 if i else 0, dtype=np.intp)
        key.append(i)
        axis += _consumes(i)
    arrays = [n for n, i in enumerate(key) if _is_array(i)]
    shapes = [(int(np.count_nonzero(key[n])),) if key[n].dtype == np.bool_ else key[n].shape for n in arrays]
    block = len(np.broadcast_shapes(*shapes))

    def position(advanced: list[int], skip_ints: bool) -> int:
        """Where the advanced block lands: in place if its entries are adjacent, else first."""
        between = [key[n] for n in range(advanced[0], advanced[-1] + 1) if n not in advanced]
        if any(not (skip_ints and _is_int(i)) for i in between):
            return 0
        return sum(1 for i in key[:advanced[0]] if isinstance(i, slice) or i is None)

    numpy_at = position([n for n, i in enumerate(key) if _is_array(i) or _is_int(i)], skip_ints=False)
    torch_at = position(arrays, skip_ints=True)
    perm = None
    if numpy_at != torch_at:
        rest_dims = sum(1 for i in key if isinstance(i, slice) or i is None) + (ndim + len(insert) - axis)
        others = [d for d in range(block + rest_dims) if not numpy_at <= d < numpy_at + block]
        block_dims = list(range(numpy_at, numpy_at + block))
        perm = tuple(others[:torch_at] + block_dims + others[torch_at:])
    return IndexPlan(tuple(insert), tuple(key), perm)
