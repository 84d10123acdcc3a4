"""Compute backends: the BLAS that every GEMM of a training step runs on.

    >>> from chainrule import backend
    >>> backend.info()["gemm"] in ("numpy", "mkl")
    True

``gemm`` and the choice of library (``CHAINRULE_GEMM=numpy|auto|mkl``) live in ``chainrule.backend.blas``.
"""

from typing import Any

from chainrule.backend import blas
from chainrule.backend.blas import CHOICES, gemm, select, set_num_threads


def info() -> dict[str, Any]:
    """What the backend runs on: ``gemm`` ("numpy" or "mkl"), the library's path, version and thread count, and why
    MKL is not in use if it is not."""
    return blas.info()

__all__ = ["CHOICES", "gemm", "info", "select", "set_num_threads"]
