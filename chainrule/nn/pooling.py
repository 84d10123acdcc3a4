"""Pooling layers with PyTorch's names and arguments over (N, C, H, W): ``MaxPool2d``, ``AvgPool2d``,
``AdaptiveAvgPool2d`` and ``AdaptiveMaxPool2d``.

Each is a thin, stateless module over ``chainrule.nn.functional`` (no parameters, nothing in ``state_dict``).
"""

from __future__ import annotations

from typing import Any

from chainrule.nn import functional as F
from chainrule.nn._pool import pool_args
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class MaxPool2d(Module):
    """Max over each kernel_size window: (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to kernel_size.
    ``return_indices=True`` returns (values, indices) as ``F.max_pool2d``."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        pool_args("MaxPool2d", kernel_size, stride, padding, dilation)  # bad arguments fail here, not at a call
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x: Tensor) -> Any:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self) -> str:
        stride = self.kernel_size if self.stride is None else self.stride
        return (f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding}, dilation={self.dilation}, "
                f"ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean over each kernel_size window: (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to kernel_size."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        pool_args("AvgPool2d", kernel_size, stride, padding, 1)
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self) -> str:
        stride = self.kernel_size if self.stride is None else self.stride
        return f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Mean over PyTorch's adaptive bins to a fixed ``output_size`` (Ho, Wo) whatever the input's (H, W);
    ``AdaptiveAvgPool2d(1)`` is global average pooling. See ``F.adaptive_avg_pool2d``."""

    def __init__(self, output_size: Any):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max over PyTorch's adaptive bins to a fixed ``output_size``; see ``F.adaptive_max_pool2d``."""

    def __init__(self, output_size: Any, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x: Tensor) -> Any:
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
