"""The geometry of a 2-D convolution or pooling window, shared by every implementation of the spatial ops.

Shapes (N, C, H, W) throughout. A window of ``kernel`` (kh, kw) taps, ``dilation`` (dh, dw) apart, slides over the
input padded by ``padding`` ((top, bottom), (left, right)) in steps of ``stride`` (sh, sw); output positions are
counted as PyTorch does::

    Ho = floor((H + top + bottom - dh * (kh - 1) - 1) / sh) + 1

``groups`` splits the channels into independent convolutions (1 for pooling). Implementations (the NumPy im2col
path, oneDNN's primitives, the naive references) take one ``ConvGeometry`` instead of four loose arguments, so the
argument checking lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass

Pair = tuple[int, int]


@dataclass(frozen=True)
class ConvGeometry:
    """stride (sh, sw), padding ((top, bottom), (left, right)), dilation (dh, dw), groups."""

    stride: Pair = (1, 1)
    padding: tuple[Pair, Pair] = ((0, 0), (0, 0))
    dilation: Pair = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        for name, pair, low in (("stride", self.stride, 1), ("dilation", self.dilation, 1)):
            if len(pair) != 2 or any(int(v) != v or v < low for v in pair):
                raise ValueError(f"{name} must be two integers >= {low}, got {pair}; pass e.g. {name}=1 or (2, 2)")
        flat = [v for side in self.padding for v in side]
        if len(self.padding) != 2 or len(flat) != 4 or any(int(v) != v or v < 0 for v in flat):
            raise ValueError(f"padding must be ((top, bottom), (left, right)) of integers >= 0, got {self.padding}")
        if int(self.groups) != self.groups or self.groups < 1:
            raise ValueError(f"groups must be an integer >= 1, got {self.groups}")

    def output_size(self, in_hw: Pair, kernel_hw: Pair) -> Pair:
        """(Ho, Wo) for an input of (H, W) and a kernel of (kh, kw); raises if either would be smaller than 1."""
        out = []
        for axis, (size, k, s, d, (lo, hi)) in enumerate(zip(in_hw, kernel_hw, self.stride, self.dilation,
                                                                  self.padding)):
            span = d * (k - 1) + 1
            n = (size + lo + hi - span) // s + 1
            if n < 1:
                dim = "HW"[axis]
                raise ValueError(f"output {dim} would be {n} (< 1): input {dim} {size} + padding {lo + hi} is smaller "
                                 f"than the dilated kernel {span}; pad more, or use a smaller kernel or dilation")
            out.append(n)
        return out[0], out[1]
