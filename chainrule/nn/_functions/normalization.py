"""Batch normalization and layer normalization, each one fused node with the simplified analytic backward.

With xhat = (x - mean) / sqrt(var + eps) over n values and dxhat = g * gamma, the gradient through the mean and the
variance collapses to (CS231n's "batchnorm_backward_alt"):

    dx = (1 / n) / sqrt(var + eps) * (n dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))

The sums run over the batch axis for BatchNorm and over the normalised (feature) axes for LayerNorm.

BatchNorm saves x and its statistics (mean, var: (C,) each) and recomputes xhat in its backward; for float32
(N, C, H, W) activations both directions run as one oneDNN kernel each where ``chainrule.backend.fused`` says so
(``batch_norm_forward`` / ``batch_norm_inference`` / ``batch_norm_backward``), else as the NumPy code here, which
is the reference those kernels are tested against.

The backward formulas serve ``create_graph`` too (``chainrule.ops.xp``). The saved statistics (BatchNorm in
training) and xhat and 1/sqrt(var + eps) (LayerNorm) depend on x: on the graph they are recomputed from the input
Tensor with ops (``saved_on_graph``), so the second derivative sees that dependence (BatchNorm in evaluation: the
running statistics are constants).
"""

from __future__ import annotations

import numpy as np

from chainrule.backend import fused
from chainrule.function import Function


def _normalized(x, axes, eps):
    """xhat and 1 / sqrt(var + eps) of the Tensor x over ``axes`` (kept as size 1), as ops on the graph."""
    centered = x - x.mean(axis=axes, keepdims=True)
    inv_std = 1 / ((centered * centered).mean(axis=axes, keepdims=True) + eps).sqrt()
    return centered * inv_std, inv_std


def _given(ctx, i, saved):
    """Argument ``i`` as the Tensor it was (on the graph), or as the array or None it was."""
    return saved if ctx.parents[i] is None else ctx.parents[i]


def _channel_axes(ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The axes batch norm reduces over for an ndim input (all but the channel axis 1), and the shape that puts a
    (C,) vector against that axis."""
    return (0,) + tuple(range(2, ndim)), (-1,) + (1,) * (ndim - 2)


def _batch_moments(x):
    """Per-channel mean and biased variance (C,) of x, and x - mean: two passes, so a large mean costs no
    precision (no E[x^2] - E[x]^2)."""
    axes, shape = _channel_axes(x.ndim)
    mean = x.mean(axis=axes)
    centered = x - mean.reshape(shape)
    if isinstance(centered, np.ndarray) and x.ndim == 2:
        return mean, np.einsum("ij,ij->j", centered, centered) / x.shape[0], centered
    return mean, (centered * centered).mean(axis=axes), centered


def _scale_shift(centered, var, weight, bias, eps):
    """In place on the array ``centered`` (x - mean): centered / sqrt(var + eps) * weight + bias per channel, weight
    and bias optional (the NumPy formula of the forward pass)."""
    _, shape = _channel_axes(centered.ndim)
    inv_std = (var + eps) ** -0.5
    centered *= (inv_std if weight is None else weight * inv_std).reshape(shape)
    if bias is not None:
        centered += bias.reshape(shape)
    return centered


class BatchNorm(Function):
    """x (N, C) or (N, C, *spatial) such as (N, C, H, W), weight/bias (C,) or None -> out (x's shape), normalised
    per channel C over the batch and spatial axes (n = N * H * W values per channel).

    Training: normalise with the batch mean and (biased) variance and update ``running_mean``/``running_var`` in
    place: r <- (1 - momentum) r + momentum * stat, with the unbiased variance var * n / (n - 1) as PyTorch does.
    Evaluation: normalise with the running statistics (an affine map of x). Every array keeps x's memory order
    (a channels-last input stays channels-last). Saved: x, the statistics used (mean, var) and weight.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
        if training:
            fast = fused.batch_norm_forward(x, weight, bias, eps)  # oneDNN where it runs, else NumPy
            if fast is not None:
                out, mean, var = fast
            else:
                mean, var, centered = _batch_moments(x)
                out = _scale_shift(centered, var, weight, bias, eps)
            if running_mean is not None:
                n = x.size // x.shape[1]
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += (momentum * n / (n - 1)) * var
        else:
            mean, var = running_mean.copy(), running_var.copy()  # constants (the buffers may change in place later)
            out = fused.batch_norm_inference(x, mean, var, weight, bias, eps)
            if out is None:
                out = _scale_shift(x - mean.reshape(_channel_axes(x.ndim)[1]), var, weight, bias, eps)
        ctx.save_for_backward(x, mean, var, weight)
        ctx.training, ctx.eps = training, eps
        return out

    @staticmethod
    def saved_on_graph(ctx, x, mean, var, weight):
        x_given = ctx.parents[0]
        if x_given is not None and x_given.requires_grad:
            x = x_given
            if ctx.training:  # the batch statistics depend on x (the running ones are constants)
                mean, var, _ = _batch_moments(x)
        return x, mean, var, _given(ctx, 1, weight)

    @staticmethod
    def backward(ctx, grad):
        x, mean, var, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        if ctx.training:
            fast = fused.batch_norm_backward(x, mean, var, weight, need_b, grad, ctx.eps)
            if fast is not None:
                gx, sum_gx, sum_g = fast
                return (gx if need_x else None), (sum_gx if need_w else None), sum_g
        axes, shape = _channel_axes(grad.ndim)
        inv_std = (var + ctx.eps) ** -0.5
        centered = x - mean.reshape(shape)                             # xhat = centered * inv_std
        sum_g = grad.sum(axis=axes)                                    # dbeta
        sum_gx = (grad * centered).sum(axis=axes) * inv_std            # dgamma = sum(grad * xhat)
        gx = None
        if need_x:
            scale = inv_std if weight is None else weight * inv_std
            if ctx.training:
                n = grad.size // grad.shape[1]
                gx = grad - (sum_g / n).reshape(shape)
                gx -= centered * (sum_gx * inv_std / n).reshape(shape)
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
