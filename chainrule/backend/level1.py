"""``y <- alpha * x + beta * y`` in place, in one pass over memory: the update step of SGD-momentum, Adam's moments
and gradient accumulation.

With NumPy ufuncs the same update takes two or three passes and a temporary (``y *= beta; y += alpha * x``); an
optimizer step is memory-bound, so the passes are its cost. BLAS's ``axpby`` reads x and y once and writes y once.
It runs on the BLAS the GEMM backend uses (MKL when selected, else NumPy's own bundled OpenBLAS), so it adds no
second thread pool; where neither can take the arrays (other dtypes, non-contiguous or partly overlapping arrays,
a NumPy built without its bundled OpenBLAS) the ufunc form is used: same result, more passes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backend import _openblas
from chainrule.backend.blas import _STATE

_BLAS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_NUMPY_OPENBLAS: tuple[Any, str] | None = None


def _numpy_openblas() -> tuple[Any, str]:
    global _NUMPY_OPENBLAS
    if _NUMPY_OPENBLAS is None:
        _NUMPY_OPENBLAS = _openblas.load()
    return _NUMPY_OPENBLAS


def _library() -> Any:
    """The object whose ``saxpby``/``daxpby`` run the update: MKL if the GEMM uses it, else NumPy's OpenBLAS."""
    return _STATE.mkl if _STATE.mkl is not None else _numpy_openblas()[0]


def axpby(alpha: float, x: np.ndarray, beta: float, y: np.ndarray) -> np.ndarray:
    """Set ``y = alpha * x + beta * y`` in place and return ``y``; x and y have one shape.

    E.g. SGD with momentum: ``axpby(1.0, grad, momentum, buf)`` then ``axpby(-lr, buf, 1.0, param)``.
    """
    if x.shape != y.shape:
        raise ValueError(f"axpby: x has shape {x.shape} but y has shape {y.shape}; they must match")
    if not y.flags.writeable:
        raise ValueError("axpby: y is read-only; it is updated in place")
    lib = _library()
    if (
        lib is not None
        and beta != 0  # BLAS may compute 0 * y, which is NaN where y is; the ufunc path overwrites y
        and x.dtype == y.dtype
        and y.dtype in _BLAS_DTYPES
        and x.size
        and _same_flat_layout(x, y)
        and (x is y or not np.may_share_memory(x, y))
    ):
        fn = lib.saxpby if y.dtype == np.float32 else lib.daxpby
        fn(y.size, alpha, x.ctypes.data, 1, beta, y.ctypes.data, 1)
        return y
    return _ufunc_axpby(alpha, x, beta, y)


def _same_flat_layout(x: np.ndarray, y: np.ndarray) -> bool:
    """Both contiguous in the same order, so element i of one flat buffer pairs with element i of the other."""
    if x.flags.c_contiguous and y.flags.c_contiguous:
        return x.flags.aligned and y.flags.aligned and x.dtype.isnative
    if x.flags.f_contiguous and y.flags.f_contiguous:
        return x.flags.aligned and y.flags.aligned and x.dtype.isnative
    return False


def _ufunc_axpby(alpha: float, x: np.ndarray, beta: float, y: np.ndarray) -> np.ndarray:
    if beta == 0:
        np.multiply(x, alpha, out=y, casting="same_kind")
        return y
    if beta != 1:
        np.multiply(y, beta, out=y, casting="same_kind")
    if alpha == 1:
        np.add(y, x, out=y, casting="same_kind")
    else:
        np.add(y, np.multiply(x, alpha), out=y, casting="same_kind")
    return y


def implementation() -> str:
    """Which library runs ``axpby`` for float32/float64 arrays: "mkl", "openblas" (NumPy's) or "numpy" (ufuncs)."""
    if _STATE.mkl is not None:
        return "mkl"
    return "openblas" if _numpy_openblas()[0] is not None else "numpy"
