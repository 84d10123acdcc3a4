"""Matrix multiplication: y = a @ b, for 1-D, 2-D and batched operands.

The local gradients are the lecture's matmul rules: dL/da = dL/dy b^T and dL/db = a^T dL/dy (for batches, the same
per matrix, summed over broadcast batch axes). No Jacobian is ever formed.

Operands of different dtypes are promoted as for the elementwise ops (``chainrule.ops._util.promote``; PyTorch
refuses them instead). 2-D products, forward and backward, go through ``chainrule.backend.gemm`` (the one BLAS a
training step uses; the backward's transposes are BLAS flags on views, not copies); 1-D and batched operands use
``np.matmul``.
"""

from __future__ import annotations

import numpy as np

from chainrule.backend import gemm
from chainrule.function import Function
from chainrule.ops import xp
from chainrule.ops._util import promote, unbroadcast


def _check_shapes(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: both operands need at least 1 dimension; use * for scalars")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: inner dimensions {k_a} and {k_b} differ")


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)  # as given: the backward finds the input Tensors behind them
        a, b = promote(np.asarray(a), np.asarray(b))  # PyTorch refuses mixed dtypes; chainrule promotes as for +, *
        _check_shapes(a, b)
        return gemm(a, b) if a.ndim == 2 and b.ndim == 2 else np.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        if not hasattr(a, "ndim"):  # a list given as an operand
            a = np.asarray(a)
        if not hasattr(b, "ndim"):
            b = np.asarray(b)
        if a.ndim == 2 and b.ndim == 2:  # the common case, without reshapes
            ga = xp.gemm(grad, b, trans_b=True) if ctx.needs_input_grad[0] else None
            gb = xp.gemm(a, grad, trans_a=True) if ctx.needs_input_grad[1] else None
            return ga, gb
        # Promote 1-D operands to matrices as matmul does, then apply the same two rules.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if b.ndim == 1:
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = g2[..., None, :]
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(g2 @ xp.swap_last(b2), a2.shape)
            ga = ga.reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(xp.swap_last(a2) @ g2, b2.shape)
            gb = gb.reshape(b.shape)
        return ga, gb
