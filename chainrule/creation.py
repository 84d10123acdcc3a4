"""Making tensors the way PyTorch users do: ``tensor``, ``zeros``, ``ones``, ``randn``, ``arange``, ``manual_seed``.

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> w = cr.randn(3, 2, requires_grad=True)      # float32, from chainrule's global generator
    >>> b = cr.zeros(2, requires_grad=True)
    >>> cr.tensor([[1.0, 2.0, 3.0]]) @ w + b         # doctest: +ELLIPSIS
    Tensor(..., dtype=float32, grad_fn=Add)

Floating results are float32 unless ``dtype`` says otherwise (Python floats make float32 tensors, NumPy arrays
keep their dtype); ``requires_grad=True`` needs a floating dtype.

Randomness. chainrule has no hidden global random state by default: layers and dropout draw their initial weights
and masks from the ``seed``/``generator`` you give them, or from fresh OS entropy when you give none.
``manual_seed(s)`` starts chainrule's global generator from ``s``; from then on ``randn`` and every layer, model or
dropout built with ``seed=None`` draw from it (each takes a generator spawned from it), so a program that calls
``manual_seed`` first is reproducible, as with ``torch.manual_seed``. A PyTorch seed does not give PyTorch's
numbers: the generators differ.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from chainrule.tensor import Tensor
from chainrule.utils.seeding import default_generator, manual_seed  # the global generator lives in utils.seeding

__all__ = ["tensor", "zeros", "ones", "randn", "arange", "manual_seed", "default_generator"]

_FLOAT32 = np.dtype(np.float32)


def _shape(size: tuple) -> tuple[int, ...]:
    """``zeros(2, 3)`` and ``zeros((2, 3))`` alike."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"expected a shape of non-negative integers, got {size!r}")
    return tuple(int(n) for n in size)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new Tensor holding a copy of ``data`` (a number, a nested list, an array or a Tensor), as ``torch.tensor``.

    ``Tensor(array)`` shares the array instead; both infer float32 from Python floats and keep NumPy dtypes."""
    if isinstance(data, Tensor):
        data = data.data
    arr = np.array(data, dtype=dtype, copy=True)
    if dtype is None and arr.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
        arr = arr.astype(np.float32)
    return Tensor(arr, requires_grad=requires_grad)


def zeros(*size: int | Sequence[int], dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of shape ``size`` (float32 by default)."""
    return Tensor(np.zeros(_shape(size), dtype=dtype), requires_grad=requires_grad)


def ones(*size: int | Sequence[int], dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of shape ``size`` (float32 by default)."""
    return Tensor(np.ones(_shape(size), dtype=dtype), requires_grad=requires_grad)


def randn(*size: int | Sequence[int], dtype: Any = np.float32, requires_grad: bool = False,
          generator: np.random.Generator | None = None) -> Tensor:
    """Standard normal samples of shape ``size`` from ``generator`` (default: the global one, see ``manual_seed``)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"randn: expected a floating dtype, got {dtype}")
    gen = default_generator() if generator is None else generator
    draw = dtype if dtype in (np.float32, np.float64) else np.float64
    return Tensor(gen.standard_normal(_shape(size), dtype=draw).astype(dtype, copy=False), requires_grad=requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, *, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Values from ``start`` (default 0) up to but excluding ``end``, ``step`` apart, as ``torch.arange``: int64 when
    all three are integers, float32 when one is a float (unless ``dtype`` says otherwise)."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (start, end, step))
        dtype = np.int64 if ints else np.float32
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    return Tensor(np.arange(start, end, step, dtype=dtype), requires_grad=requires_grad)
