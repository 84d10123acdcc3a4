"""Loss layers: ``loss_fn = CrossEntropyLoss(); loss = loss_fn(scores, y)``. Each wraps one function of
``chainrule.nn.functional`` with its options fixed."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        F._check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def _constant(value: Any) -> np.ndarray | None:
    """A loss's class weight or pos_weight as an array (a buffer, in ``state_dict`` as PyTorch's), or None."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        value = value.data
    return np.array(value, dtype=value.dtype if isinstance(value, np.ndarray) else np.float32)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of scores (N, C) against integer labels (N,), or (N, C, H, W) against (N, H, W);
    ``weight`` (C,) (a buffer), ``ignore_index`` and ``label_smoothing`` as ``F.cross_entropy``."""

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0, *, weight: Any = None,
                 ignore_index: int = -100):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: expected label_smoothing in [0, 1], got {label_smoothing}")
        self.label_smoothing, self.ignore_index = float(label_smoothing), int(ignore_index)
        self.register_buffer("weight", _constant(weight))

    def forward(self, scores: Tensor, y: Any) -> Tensor:
        return F.cross_entropy(scores, y, self.reduction, self.label_smoothing, weight=self.weight,
                               ignore_index=self.ignore_index)

    def extra_repr(self) -> str:
        extra = "" if self.ignore_index == -100 else f", ignore_index={self.ignore_index}"
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}{extra}"


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C) or (N, C, H, W); see ``F.nll_loss``."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.ignore_index = int(ignore_index)
        self.register_buffer("weight", _constant(weight))

    def forward(self, log_probs: Tensor, y: Any) -> Tensor:
        return F.nll_loss(log_probs, y, self.weight, self.ignore_index, self.reduction)


class MultiClassHingeLoss(_Loss):
    """The multiclass SVM loss sum_{j != y} max(0, s_j - s_y + margin); see ``F.multiclass_hinge``."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, scores: Tensor, y: Any) -> Tensor:
        return F.multiclass_hinge(scores, y, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Squared error, averaged over all elements by default; see ``F.mse``."""

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        return F.mse(pred, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, computed stably; ``weight`` and ``pos_weight`` (buffers) as
    ``F.binary_cross_entropy_with_logits``."""

    def __init__(self, reduction: str = "mean", *, weight: Any = None, pos_weight: Any = None):
        super().__init__(reduction)
        self.register_buffer("weight", _constant(weight))
        self.register_buffer("pos_weight", _constant(pos_weight))

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, self.reduction, weight=self.weight,
                                                  pos_weight=self.pos_weight)


class L1Loss(_Loss):
    """|x - target|; see ``F.l1_loss``."""

    def forward(self, x: Tensor, target: Any) -> Tensor:
        return F.l1_loss(x, target, self.reduction)


class SmoothL1Loss(_Loss):
    """Quadratic below ``beta``, L1 above; see ``F.smooth_l1_loss``."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be >= 0, got {beta}")
        self.beta = float(beta)

    def forward(self, x: Tensor, target: Any) -> Tensor:
        return F.smooth_l1_loss(x, target, self.reduction, self.beta)


class SoftMarginLoss(_Loss):
    """log(1 + exp(-y x)) for labels y in {-1, 1}; see ``F.soft_margin_loss``."""

    def forward(self, x: Tensor, target: Any) -> Tensor:
        return F.soft_margin_loss(x, target, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities; ``weight`` (a buffer) as ``F.binary_cross_entropy``."""

    def __init__(self, weight: Any = None, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _constant(weight))

    def forward(self, p: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(p, target, self.weight, self.reduction)


class MultiLabelMarginLoss(_Loss):
    """Multi-label hinge loss with -1-terminated label lists; see ``F.multilabel_margin_loss``."""

    def forward(self, x: Tensor, target: Any) -> Tensor:
        return F.multilabel_margin_loss(x, target, self.reduction)
