"""Compute backends: the BLAS that every GEMM of a training step (and the optimizers' axpby) runs on.

    >>> from chainrule import backend
    >>> backend.info()["gemm"] in ("numpy", "mkl")
    True

``gemm`` and the choice of library (``CHAINRULE_GEMM=numpy|auto|mkl``) live in ``chainrule.backend.blas``;
``axpby`` in ``chainrule.backend.level1``.
"""

from typing import Any

from chainrule.backend import blas, level1
from chainrule.backend.blas import CHOICES, gemm, select, set_num_threads
from chainrule.backend.level1 import axpby


def info() -> dict[str, Any]:
    """What the backend runs on: ``gemm`` ("numpy" or "mkl"), the library's path, version and thread count, why MKL
    is not in use if it is not, and ``axpby`` ("mkl", "openblas" for NumPy's own, or "numpy" ufuncs)."""
    return {**blas.info(), "axpby": level1.implementation()}

__all__ = ["CHOICES", "axpby", "gemm", "info", "select", "set_num_threads"]
