"""``TestTimeAugment``: a model's scores averaged over test-time views, as ops on the graph.

    TestTimeAugment(model, flip=True, shift=1) : images x (N, C, H, W) -> (N, K)
    TestTimeAugment(pipeline, data_format="NHWC", image_shape=(H, W, C)) : rows x (N, H*W*C) -> (N, K)

The views and weights are ``chainrule.data.augment.flip_shift_views``'s (airbench's "mirror + translate"): the
images (weight 1/2 with ``shift``, else 1), with ``shift`` > 0 the images shifted by ``shift`` pixels down-right and
up-left (1/4 each; the border filled by ``padding_mode``: "reflect", "edge" or "constant", np.pad's names), and
with ``flip`` each of those and its mirror image sharing its weight. ``predict_tta`` computes the same scores on
arrays; this module is its form as one graph (``ConvNetClassifier.as_module``, ONNX export): pads, slices and the
model applied to each view. ``data_format`` is the images' layout, as ``predict_tta``'s; with ``image_shape`` (one
image's shape in that layout) the input may be flat rows, reshaped to images first. Each view is passed to ``model``
in the input's layout.
"""

from __future__ import annotations

from typing import Any, Sequence

from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.tensor import Tensor

_PAD_MODES = {"reflect": "reflect", "edge": "replicate", "constant": "constant"}


class TestTimeAugment(Module):
    """x (N, C, H, W) -> the weighted mean of ``model`` over the views (module docstring)."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, model: Module, flip: bool = True, shift: int = 1, padding_mode: str = "reflect",
                 data_format: str = "NCHW", image_shape: Sequence[int] | None = None):
        super().__init__()
        if data_format not in ("NCHW", "NHWC"):
            raise ValueError(f"TestTimeAugment: expected data_format 'NCHW' or 'NHWC', got {data_format!r}")
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"TestTimeAugment: expected padding_mode in {sorted(_PAD_MODES)}, got {padding_mode!r}")
        if isinstance(shift, bool) or int(shift) != shift or shift < 0:
            raise ValueError(f"TestTimeAugment: expected shift as an int >= 0, got {shift!r}")
        self.model = model
        self.flip, self.shift, self.padding_mode = bool(flip), int(shift), padding_mode
        self.data_format = data_format
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)

    def views(self, x: Tensor) -> list[tuple[float, Tensor]]:
        """(weight, images) of every view of images x (N, C, H, W), in ``flip_shift_views``'s order."""
        views = [(1.0, x)]
        if self.shift:
            s, (h, w) = self.shift, x.shape[2:]
            padded = F.pad(x, (s, s, s, s), mode=_PAD_MODES[self.padding_mode])
            views = [(0.5, x)] + [(0.25, padded[:, :, d:d + h, d:d + w]) for d in (0, 2 * s)]
        if self.flip:
            views = [(weight / 2, v) for weight, images in views for v in (images, images[..., ::-1])]
        return views

    def forward(self, x: Any) -> Tensor:
        images = x if self.image_shape is None else x.reshape(len(x), *self.image_shape)
        nhwc = self.data_format == "NHWC"
        out = None
        for weight, view in self.views(images.transpose(0, 3, 1, 2) if nhwc else images):
            scores = self.model(view.transpose(0, 2, 3, 1) if nhwc else view) * weight
            out = scores if out is None else out + scores
        return out

    def extra_repr(self) -> str:
        return (f"flip={self.flip}, shift={self.shift}, padding_mode={self.padding_mode!r}, "
                f"data_format={self.data_format!r}")
