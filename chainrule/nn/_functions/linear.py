"""The fused affine map y = x W + b, one node for the matrix multiply and the bias.

The weight is stored as (in_features, out_features), so the forward pass is ``x @ W`` with no transposed copy and
both backward GEMMs read transposed *views* (BLAS takes them as a flag):

    dx = g W^T        (N, M) x (M, D) -> (N, D)      skipped when x does not need a gradient (the first layer)
    dW = x^T g        (D, N) x (N, M) -> (D, M)
    db = sum_n g      (M,)

Every product goes through ``chainrule.backend.gemm`` (NumPy's BLAS by default, MKL when selected), so a training
step uses one BLAS thread pool; with ``create_graph`` the same formulas run as matmul ops (``chainrule.ops.xp``).
"""

from __future__ import annotations

import numpy as np

from chainrule.backend import gemm
from chainrule.function import Function
from chainrule.ops import xp


def check_affine(op: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, width: int) -> None:
    """Shapes and dtypes of x (..., D), weight (D, width) and bias (width,) or None, with a fix in each message."""
    if weight.ndim != 2:
        raise ValueError(f"{op}: expected a 2-D weight of shape (in_features, out_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[0]:
        raise ValueError(
            f"{op}: input of shape {x.shape} has {x.shape[-1] if x.ndim else 0} features but the weight "
            f"{weight.shape} expects {weight.shape[0]} (weights are stored as (in_features, out_features))"
        )
    if x.dtype != weight.dtype:
        raise TypeError(
            f"{op}: input dtype {x.dtype} does not match weight dtype {weight.dtype}; convert the input "
            f"(x.astype(np.{weight.dtype})) or the model (model.to(np.{x.dtype}))"
        )
    if bias is not None and (bias.shape != (width,) or bias.dtype != weight.dtype):
        raise ValueError(
            f"{op}: expected a bias of shape ({width},) and dtype {weight.dtype}, got {bias.shape} {bias.dtype}"
        )


class Linear(Function):
    """x (N, D) or (N, ..., D), weight (D, M), bias (M,) or None -> y (N, [...,] M) = x W + b."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        out = gemm(x2, weight)
        if bias is not None:
            out += bias
        ctx.save_for_backward(x, weight)
        return out.reshape(x.shape[:-1] + (weight.shape[1],)) if x.ndim != 2 else out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        g2 = grad.reshape(-1, grad.shape[-1]) if grad.ndim != 2 else grad
        gx = gw = gb = None
        if need_x:
            gx = xp.gemm(g2, weight, trans_b=True)
            if x.ndim != 2:
                gx = gx.reshape(x.shape)
        if need_w:
            gw = xp.gemm(x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x, g2, trans_a=True)
        if need_b:
            gb = g2.sum(axis=0)
        return gx, gw, gb
