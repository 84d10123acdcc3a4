"""Batch normalization and layer normalization, each one fused node with the simplified analytic backward.

With xhat = (x - mean) / sqrt(var + eps) over n values and dxhat = g * gamma, the gradient through the mean and the
variance collapses to (CS231n's "batchnorm_backward_alt"):

    dx = (1 / n) / sqrt(var + eps) * (n dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))

The sums run over the batch axis for BatchNorm and over the normalised (feature) axes for LayerNorm.

The backward formulas serve ``create_graph`` too (``chainrule.ops.xp``). xhat and 1/sqrt(var + eps), saved by the
forward pass, depend on x: on the graph they are recomputed from the input Tensor with ops (``saved_on_graph``), so
the second derivative sees that dependence (in evaluation, only xhat depends on x: the running statistics are
constants).
"""

from __future__ import annotations

import numpy as np

from chainrule.function import Function


def _normalized(x, axes, eps):
    """xhat and 1 / sqrt(var + eps) of the Tensor x over ``axes`` (kept as size 1), as ops on the graph."""
    centered = x - x.mean(axis=axes, keepdims=True)
    inv_std = 1 / ((centered * centered).mean(axis=axes, keepdims=True) + eps).sqrt()
    return centered * inv_std, inv_std


def _given(ctx, i, saved):
    """Argument ``i`` as the Tensor it was (on the graph), or as the array or None it was."""
    return saved if ctx.parents[i] is None else ctx.parents[i]


class BatchNorm(Function):
    """x (N, C) or (N, C, *spatial) such as (N, C, H, W), weight/bias (C,) or None -> out (x's shape), normalised
    per channel C over the batch and spatial axes (n = N * H * W values per channel).

    Training: normalise with the batch mean and (biased) variance and update ``running_mean``/``running_var`` in
    place: r <- (1 - momentum) r + momentum * stat, with the unbiased variance var * n / (n - 1) as PyTorch does.
    Evaluation: normalise with the running statistics (an affine map of x). Every array keeps x's memory order
    (a channels-last input stays channels-last).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (-1,) + (1,) * (x.ndim - 2)  # a (C,) vector against x's channel axis
        if training:
            n = x.size // x.shape[1]
            mean = x.mean(axis=axes)
            xhat = x - mean.reshape(shape)
            if x.ndim == 2:
                var = np.einsum("ij,ij->j", xhat, xhat) / n
            else:
                var = np.square(xhat).sum(axis=axes) / n
            inv_std = 1 / np.sqrt(var + eps)
            xhat *= inv_std.reshape(shape)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += (momentum * n / (n - 1)) * var
        else:
            inv_std = 1 / np.sqrt(running_var + eps)
            xhat = (x - running_mean.reshape(shape)) * inv_std.reshape(shape)
            ctx.running_mean = running_mean.copy()  # a constant (the buffer may change in place later)
        out = xhat * weight.reshape(shape) if weight is not None else xhat.copy()
        if bias is not None:
            out += bias.reshape(shape)
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.training, ctx.eps, ctx.axes, ctx.shape = training, eps, axes, shape
        return out

    @staticmethod
    def saved_on_graph(ctx, xhat, inv_std, weight):
        x = ctx.parents[0]
        if x is not None and x.requires_grad:  # else xhat and inv_std are constants
            if ctx.training:
                xhat, inv_std = _normalized(x, ctx.axes, ctx.eps)
                inv_std = inv_std.reshape(-1)
            else:
                xhat = (x - ctx.running_mean.reshape(ctx.shape)) * inv_std.reshape(ctx.shape)
        return xhat, inv_std, _given(ctx, 1, weight)

    @staticmethod
    def backward(ctx, grad):
        xhat, inv_std, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        axes, shape = ctx.axes, ctx.shape
        sum_g = grad.sum(axis=axes)                                   # dbeta
        sum_gx = (grad * xhat).sum(axis=axes)                          # dgamma
        gx = None
        if need_x:
            scale = inv_std if weight is None else weight * inv_std
            if ctx.training:
                n = grad.size // grad.shape[1]
                gx = grad - (sum_g / n).reshape(shape)
                gx -= xhat * (sum_gx / n).reshape(shape)
                gx *= scale.reshape(shape)
            else:
                gx = grad * scale.reshape(shape)
        return gx, (sum_gx if need_w else None), (sum_g if need_b else None)


class LayerNorm(Function):
    """x (..., *S), weight/bias of shape S or None -> out (..., *S): each sample normalised over its last
    ``len(S)`` axes (``ndim`` below) with its own mean and variance, in training and evaluation alike."""

    @staticmethod
    def forward(ctx, x, weight, bias, ndim=1, eps=1e-5):
        axes = tuple(range(x.ndim - ndim, x.ndim))
        xhat = x - x.mean(axis=axes, keepdims=True)
        var = np.mean(xhat * xhat, axis=axes, keepdims=True)
        inv_std = 1 / np.sqrt(var + eps)
        xhat *= inv_std
        out = xhat * weight if weight is not None else xhat.copy()
        if bias is not None:
            out += bias
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.axes, ctx.eps = axes, eps
        return out

    @staticmethod
    def saved_on_graph(ctx, xhat, inv_std, weight):
        x = ctx.parents[0]
        if x is not None and x.requires_grad:  # else xhat and inv_std are constants
            xhat, inv_std = _normalized(x, ctx.axes, ctx.eps)
        return xhat, inv_std, _given(ctx, 1, weight)

    @staticmethod
    def backward(ctx, grad):
        xhat, inv_std, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        axes = ctx.axes
        batch_axes = tuple(range(grad.ndim - len(axes)))
        gx = gw = gb = None
        if need_w:
            gw = (grad * xhat).sum(axis=batch_axes)
        if need_b:
            gb = grad.sum(axis=batch_axes)
        if need_x:
            dxhat = grad * weight if weight is not None else grad
            n = int(np.prod([grad.shape[a] for a in axes]))
            gx = dxhat - dxhat.mean(axis=axes, keepdims=True)
            gx -= xhat * ((dxhat * xhat).sum(axis=axes, keepdims=True) / n)
            gx *= inv_std
        return gx, gw, gb
