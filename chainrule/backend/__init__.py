"""Compute backends: the GEMM every linear layer runs on (NumPy's OpenBLAS, or MKL when installed).

    >>> from chainrule import backend
    >>> backend.info()["gemm"] in ("numpy", "mkl")
    True

See ``chainrule.backend.gemm`` for how the implementation is chosen (``CHAINRULE_GEMM=auto|mkl|numpy``).
"""

from chainrule.backend.gemm import CHOICES, gemm, info, select, set_num_threads

__all__ = ["CHOICES", "gemm", "info", "select", "set_num_threads"]
