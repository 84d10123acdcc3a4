"""Compute backends: the BLAS that every GEMM of a training step runs on.

    >>> from chainrule import backend
    >>> backend.info()["gemm"] in ("numpy", "mkl", "onednn")
    True

``gemm``, the choice of library (``CHAINRULE_GEMM=numpy|auto|mkl|onednn``) and the precision of float32 products
(``set_float32_matmul_precision("highest" | "medium")``: bfloat16 on oneDNN, or for one block
``with float32_matmul_precision("medium"):``) live in ``chainrule.backend.blas``; ``chainrule.backend.fused`` holds
the single-pass kernels (numba) of the non-GEMM work of a training step. Convolutions (``conv2d_forward``,
``conv2d_backward_data``, ``conv2d_backward_weight``) and their choice (``CHAINRULE_CONV=numpy|onednn|auto``,
``select_conv``) live in ``chainrule.backend.conv``.
"""

from typing import Any

from chainrule.backend import blas, conv
from chainrule.backend.blas import (BF16_INSTALL, CHOICES, PRECISIONS, bf16_unavailable, float32_matmul_precision,
                                    gemm, get_float32_matmul_precision, select, set_float32_matmul_precision,
                                    set_num_threads)
from chainrule.backend.conv import CONV_CHOICES, select_conv


def info() -> dict[str, Any]:
    """What the backend runs on: ``gemm`` ("numpy", "mkl" or "onednn"), ``float32_matmul_precision``, the library's
    path, version and thread count (and oneDNN's instruction set), and why MKL is not in use if it is not; ``conv``
    ("numpy" or "onednn"), the convolution implementation (``chainrule.backend.conv``), and its settings."""
    return {**blas.info(), **conv.info()}

__all__ = ["BF16_INSTALL", "CHOICES", "CONV_CHOICES", "PRECISIONS", "bf16_unavailable", "float32_matmul_precision",
           "gemm", "get_float32_matmul_precision", "info", "select", "select_conv", "set_float32_matmul_precision",
           "set_num_threads"]
