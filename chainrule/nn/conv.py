"""``Conv2d``, ``ConvTranspose2d``, ``Unfold``, ``Fold``: PyTorch's modules, names, state_dict keys and init.

Weights are in PyTorch's layout, so a ``torch.nn.Conv2d`` state_dict loads by name and gives the same output:
``Conv2d.weight`` (out_channels, in_channels/groups, kh, kw), ``ConvTranspose2d.weight``
(in_channels, out_channels/groups, kh, kw), ``bias`` (out_channels,). Both start as PyTorch's do:
``kaiming_uniform(a=sqrt(5))`` for the weight, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for
the bias, with fan_in = weight.shape[1] * kh * kw; ``seed`` (int or Generator) makes that reproducible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.nn import _conv
from chainrule.nn import functional as F
from chainrule.nn import init
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import Tensor
from chainrule.utils.seeding import as_generator


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: sizes, the weight of ``weight_shape`` and its PyTorch init."""

    op = "Conv2d"
    padding_modes: tuple[str, ...] = ("zeros",)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, weight_lead: tuple[int, int],
                 bias: bool, padding_mode: str, dtype: Any, seed: Any):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"{self.op}: expected positive channel counts, got in_channels={in_channels}, "
                             f"out_channels={out_channels}")
        if padding_mode not in self.padding_modes:
            raise ValueError(f"{self.op}: padding_mode must be one of {self.padding_modes} (PyTorch's), got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _conv.pair(self.op, "kernel_size", kernel_size, 1)
        self.padding_mode = padding_mode
        self.weight = Parameter(np.empty(weight_lead + self.kernel_size, dtype=dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype=dtype)) if bias else None
        self.reset_parameters(seed)

    def reset_parameters(self, seed: Any = None) -> None:
        """Redraw the weight from kaiming_uniform(a=sqrt(5)) and the bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        PyTorch's defaults (fan_in = weight.shape[1] * kh * kw)."""
        rng = as_generator(seed)
        fan_in = int(np.prod(self.weight.shape[1:]))
        bound = init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(3.0 / fan_in)
        self.weight.data[...] = init.uniform(self.weight.shape, -bound, bound, rng=rng, dtype=self.weight.dtype)
        if self.bias is not None:
            b = 1.0 / math.sqrt(fan_in)
            self.bias.data[...] = init.uniform(self.bias.shape, -b, b, rng=rng, dtype=self.bias.dtype)


class Conv2d(_ConvNd):
    """x (N, in_channels, H, W) -> (N, out_channels, Ho, Wo), ``F.conv2d`` with the layer's weight and bias.

    Arguments as PyTorch's ``nn.Conv2d``: ``padding`` an int, a pair, ``"same"`` or ``"valid"``; ``groups``
    dividing both channel counts (groups = in_channels: depthwise). ``padding_mode`` ``"zeros"`` (the default),
    ``"reflect"``, ``"replicate"`` or ``"circular"``: the latter three pad with ``F.pad`` first, as PyTorch does.
    """

    op = "Conv2d"
    padding_modes = ("zeros", "reflect", "replicate", "circular")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *,
                 dtype: Any = np.float32, seed: Any = None):
        groups = _conv._groups("Conv2d", groups, in_channels, out_channels)
        stride = _conv.pair("Conv2d", "stride", stride, 1)
        dilation = _conv.pair("Conv2d", "dilation", dilation, 1)
        if not isinstance(padding, str):
            padding = _conv.pair("Conv2d", "padding", padding, 0)
        super().__init__(in_channels, out_channels, kernel_size, (out_channels, in_channels // groups), bias,
                         padding_mode, dtype, seed)
        (top, bottom), (left, right) = _conv._conv_padding(padding, self.kernel_size, stride, dilation)  # checks
        self._pad = (left, right, top, bottom)  # F.pad's order, for the padding modes other than zeros
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, x: Any) -> Tensor:
        if self.padding_mode == "zeros":
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        x = F.pad(x, self._pad, mode=self.padding_mode)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"padding={self.padding!r}")
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s + ("" if self.bias is not None else ", bias=False")


class ConvTranspose2d(_ConvNd):
    """x (N, in_channels, H, W) -> (N, out_channels, Ho, Wo), ``F.conv_transpose2d``: the transpose of a Conv2d
    with the same arguments (it maps that conv's output size back to its input size).

    Ho = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1; ``forward(x, output_size)``
    picks the output_padding that gives ``output_size`` (H, W) instead, as PyTorch's does.
    """

    op = "ConvTranspose2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros", *, dtype: Any = np.float32, seed: Any = None):
        groups = _conv._groups("ConvTranspose2d", groups, in_channels, out_channels)
        settings = (_conv.pair("ConvTranspose2d", "stride", stride, 1),
                    _conv.pair("ConvTranspose2d", "padding", padding, 0),
                    _conv.pair("ConvTranspose2d", "output_padding", output_padding, 0),
                    _conv.pair("ConvTranspose2d", "dilation", dilation, 1))
        super().__init__(in_channels, out_channels, kernel_size, (in_channels, out_channels // groups), bias,
                         padding_mode, dtype, seed)
        self.stride, self.padding, self.output_padding, self.dilation = settings
        self.groups = groups

    def forward(self, x: Any, output_size: Any = None) -> Tensor:
        output_padding = self.output_padding if output_size is None else self._output_padding(x, output_size)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                                  self.dilation)

    def _output_padding(self, x: Any, output_size: Any) -> tuple[int, int]:
        hw = tuple(output_size)[-2:]
        in_hw = (x.data if isinstance(x, Tensor) else np.asarray(x)).shape[-2:]
        pads = []
        for i in range(2):
            smallest = ((in_hw[i] - 1) * self.stride[i] - 2 * self.padding[i] + self.dilation[i]
                        * (self.kernel_size[i] - 1) + 1)
            largest = smallest + max(self.stride[i], self.dilation[i]) - 1
            if not smallest <= hw[i] <= largest:
                raise ValueError(f"ConvTranspose2d: output_size {tuple(hw)} is not reachable from an input of "
                                 f"{tuple(in_hw)}: dimension {i} must lie in [{smallest}, {largest}]")
            pads.append(hw[i] - smallest)
        return pads[0], pads[1]

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"padding={self.padding}")
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Unfold(Module):
    """im2col as a layer, ``F.unfold``: x (N, C, H, W) -> (N, C*kh*kw, L)."""

    def __init__(self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1):
        super().__init__()
        _conv._window_args("Unfold", kernel_size, dilation, padding, stride)
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, x: Any) -> Tensor:
        return F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, stride={self.stride}"


class Fold(Module):
    """col2im as a layer, ``F.fold``: (N, C*kh*kw, L) -> (N, C, H, W) with (H, W) = ``output_size``."""

    def __init__(self, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1):
        super().__init__()
        _conv.pair("Fold", "output_size", output_size, 1)
        _conv._window_args("Fold", kernel_size, dilation, padding, stride)
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, x: Any) -> Tensor:
        return F.fold(x, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")
