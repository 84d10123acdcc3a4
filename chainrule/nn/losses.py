"""Loss layers: ``loss_fn = CrossEntropyLoss(); loss = loss_fn(scores, y)``. Each wraps one function of
``chainrule.nn.functional`` with its options fixed."""

from __future__ import annotations

from typing import Any

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


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of scores (N, C) against integer labels (N,); see ``F.cross_entropy``."""

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: expected label_smoothing in [0, 1], got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, scores: Tensor, y: Any) -> Tensor:
        return F.cross_entropy(scores, y, self.reduction, self.label_smoothing)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


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
    """Binary cross-entropy on logits, computed stably; see ``F.binary_cross_entropy_with_logits``."""

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, self.reduction)
