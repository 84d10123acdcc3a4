"""``BatchNorm1d``, ``BatchNorm2d`` and ``LayerNorm``: normalise activations, then scale by gamma (``weight``) and
shift by beta (``bias``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn import functional as F
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import Tensor


class _BatchNorm(Module):
    """Batch normalization per channel (Ioffe & Szegedy, 2015); the subclasses say which input shapes they take."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, dtype: Any = np.float32):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"{type(self).__name__}: expected num_features >= 1, got {num_features}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: expected momentum in [0, 1] or None, got {momentum}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    input_shapes: tuple[int, ...] = ()  # the input ndims the subclass accepts
    shape_names = ""

    def forward(self, x: Tensor) -> Tensor:
        ndim = np.ndim(x.data if isinstance(x, Tensor) else x)
        if ndim not in self.input_shapes:
            shape = np.shape(x.data if isinstance(x, Tensor) else x)
            raise ValueError(f"{type(self).__name__}: expected input of shape {self.shape_names}, got {shape}")
        if not self.track_running_stats:  # batch statistics in training and evaluation alike
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        count = int(self.num_batches_tracked) + 1
        momentum = 1.0 / count if self.momentum is None else self.momentum
        out = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, True, momentum, self.eps)
        self.num_batches_tracked[...] = count
        return out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of x (N, C) per feature, or of x (N, C, L) per channel over N and L.

    Training: normalise with the batch mean and variance, and update the running statistics
    ``r <- (1 - momentum) r + momentum * batch_stat`` (the unbiased batch variance for ``running_var``), as PyTorch
    does; ``momentum=None`` uses the cumulative average over the batches seen. Evaluation: use the running
    statistics. ``running_mean``, ``running_var`` and ``num_batches_tracked`` are buffers: saved in ``state_dict``,
    never trained. ``weight`` (gamma, ones) and ``bias`` (beta, zeros) are parameters when ``affine``.
    """

    input_shapes = (2, 3)
    shape_names = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Spatial batch normalization of x (N, C, H, W): per channel, over N, H and W (n = N*H*W values), with
    ``BatchNorm1d``'s running statistics, momentum, ``affine`` and ``track_running_stats`` and PyTorch's state_dict
    keys (weight, bias, running_mean, running_var, num_batches_tracked). A channels-last input stays
    channels-last."""

    input_shapes = (4,)
    shape_names = "(N, C, H, W)"


class LayerNorm(Module):
    """Layer normalization (Ba et al., 2016): each sample normalised over its last axes ``normalized_shape``,
    the same in training and evaluation; ``weight`` (ones) and ``bias`` (zeros) of that shape when
    ``elementwise_affine``."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, elementwise_affine: bool = True,
                 *, dtype: Any = np.float32):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"LayerNorm: expected a positive normalized_shape, got {normalized_shape}")
        self.normalized_shape, self.eps, self.elementwise_affine = tuple(int(s) for s in shape), float(eps), \
            elementwise_affine
        self.weight = Parameter(np.ones(shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(shape, dtype=dtype)) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
