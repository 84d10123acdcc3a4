"""``ConvNet``: the CIFAR-10 conv net of lecture 4's "next time" (airbench's shape), declared once for estimators,
benchmarks and reports.

    net = ConvNet(3, 10, channels=(64, 128, 128), whiten_kernel=2, seed=0)     # x (N, 3, 32, 32) -> (N, 10)
    net.set_whitening(chainrule.data.patch_whitening_filters(x_train[:5000], 2))  # the frozen first conv

Layers: an optional *whitening* conv ``whiten`` (in -> 2 in k^2 channels, k x k, no padding, its weight frozen:
``requires_grad`` False, set from data with ``set_whitening``; its bias trains) followed by the activation; then one
``blocks[i]`` per entry of ``channels``: conv k x k ("same" padding) -> 2x2 pool -> norm -> activation, then
``convs_per_block - 1`` times conv -> norm -> activation (with ``input_size``, the smaller side of the images, a block
whose input is down to one pixel does not pool: small images such as 8x8 digits take any number of blocks); then the
global max over the positions, a ``Linear`` head
and a constant ``scale`` of the scores (airbench's 1/9: smaller initial logits). Norm "batch" is ``BatchNorm2d``
whose weight is frozen at 1 (only the shift trains, as in airbench; convs then have no bias); None gives convs with
biases. Initialisation from ``seed``: PyTorch's defaults (``Conv2d``, ``Linear``), then each conv's first
min(in, out) filters made identities (``init.dirac``), so a block starts close to passing its input through.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from chainrule.nn import init
from chainrule.nn.activations import ACTIVATIONS
from chainrule.nn.linear import Linear
from chainrule.nn.module import Module, Sequential
from chainrule.tensor import Tensor
from chainrule.utils.seeding import as_generator

POOLS = ("max", "avg")
NORMS = (None, "batch")
CONV_ACTIVATIONS = tuple(ACTIVATIONS)


class ConvNet(Module):
    """x (N, in_channels, H, W) float32 -> scores (N, n_classes); see the module docstring for the layers."""

    def __init__(self, in_channels: int, n_classes: int, channels: Sequence[int] = (64, 128, 128),
                 convs_per_block: int = 2, kernel_size: int = 3, pool: str = "max", norm: str | None = "batch",
                 activation: str = "gelu", whiten_kernel: int = 2, scale: float = 1 / 9, bn_momentum: float = 0.4,
                 input_size: int | None = None, *, seed: Any = None, dtype: Any = np.float32):
        super().__init__()
        from chainrule import nn  # the conv, pool and norm layers (chainrule.nn imports this module lazily)

        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ValueError(f"ConvNet: channels must be positive ints, one per block, got {channels}")
        if convs_per_block < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"ConvNet: expected convs_per_block >= 1 and an odd kernel_size >= 1, got "
                             f"{convs_per_block} and {kernel_size}")
        if pool not in POOLS or norm not in NORMS or activation not in CONV_ACTIVATIONS:
            raise ValueError(f"ConvNet: expected pool in {POOLS}, norm in {NORMS}, activation in "
                             f"{CONV_ACTIVATIONS}; got {pool!r}, {norm!r}, {activation!r}")
        if whiten_kernel < 0:
            raise ValueError(f"ConvNet: whiten_kernel must be >= 0 (0: no whitening layer), got {whiten_kernel}")
        self.config = {"in_channels": int(in_channels), "n_classes": int(n_classes), "channels": list(channels),
                       "convs_per_block": int(convs_per_block), "kernel_size": int(kernel_size), "pool": pool,
                       "norm": norm, "activation": activation, "whiten_kernel": int(whiten_kernel),
                       "scale": float(scale), "bn_momentum": float(bn_momentum),
                       "input_size": None if input_size is None else int(input_size)}
        rng = as_generator(seed)
        self.scale = float(scale)

        def conv(cin: int, cout: int) -> Module:
            layer = nn.Conv2d(cin, cout, kernel_size, padding="same", bias=norm is None, dtype=dtype, seed=rng)
            layer.weight.data[:min(cin, cout)] = init.dirac((min(cin, cout), cin, kernel_size, kernel_size),
                                                            dtype=dtype)
            return layer

        def after(cout: int) -> list[Module]:
            layers: list[Module] = []
            if norm == "batch":
                bn = nn.BatchNorm2d(cout, eps=1e-12, momentum=bn_momentum, dtype=dtype)
                bn.weight.requires_grad = False
                layers.append(bn)
            return layers + [ACTIVATIONS[activation]()]

        cin = int(in_channels)
        self.whiten = None
        if whiten_kernel:
            self.whiten = nn.Conv2d(cin, 2 * cin * whiten_kernel ** 2, whiten_kernel, bias=True, dtype=dtype,
                                    seed=rng)
            self.whiten.weight.requires_grad = False
            self.whiten.bias.data[...] = 0
            self.whiten_act = ACTIVATIONS[activation]()
            cin = self.whiten.out_channels
        self.blocks = Sequential()
        pool_layer = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
        size = None if input_size is None else int(input_size) - (whiten_kernel - 1 if whiten_kernel else 0)
        for cout in channels:
            pooled = size is None or size >= 2  # a map of one pixel is not pooled further
            block = Sequential(conv(cin, cout), *([pool_layer(2)] if pooled else []), *after(cout))
            size = size // 2 if size is not None and pooled else size
            for _ in range(convs_per_block - 1):
                for layer in (conv(cout, cout), *after(cout)):
                    block.append(layer)
            self.blocks.append(block)
            cin = cout
        self.head = Linear(cin, n_classes, bias=False, dtype=dtype, seed=rng)

    def set_whitening(self, filters: np.ndarray) -> None:
        """Load the whitening conv's (frozen) filters, e.g. ``chainrule.data.patch_whitening_filters``."""
        if self.whiten is None:
            raise ValueError("ConvNet.set_whitening: this net has no whitening layer (whiten_kernel=0)")
        filters = np.asarray(filters)
        if filters.shape != self.whiten.weight.data.shape:
            raise ValueError(f"ConvNet.set_whitening: expected filters of shape {self.whiten.weight.data.shape}, "
                             f"got {filters.shape}")
        self.whiten.weight.data[...] = filters

    def features(self, x: Any) -> list[Tensor]:
        """The activation maps after the whitening layer (if any) and after each block: [(N, C_i, H_i, W_i)]."""
        maps = []
        if self.whiten is not None:
            x = self.whiten_act(self.whiten(x))
            maps.append(x)
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps

    def forward(self, x: Any) -> Tensor:
        if self.whiten is not None:
            x = self.whiten_act(self.whiten(x))
        x = self.blocks(x)
        return self.head(x.amax(axis=(2, 3))) * self.scale
