"""Scoring a trained model: class scores in evaluation mode without a graph, in batches; the metrics of its
predictions (hits, the confusion matrix, the accuracy of each class)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from chainrule.function import no_grad
from chainrule.tensor import Tensor


def predict_scores(model: Any, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """(N, C) scores of ``model`` on X (N, D), in evaluation mode, without recording a graph."""
    model.eval()
    out = []
    with no_grad():
        for i in range(0, len(X), batch_size):
            out.append(model(Tensor(np.asarray(X[i:i + batch_size]))).data)
    if not out:
        raise ValueError("predict_scores: X is empty; expected at least one sample")
    return np.concatenate(out, axis=0)


def num_correct(scores: np.ndarray, y: np.ndarray) -> int:
    """How many rows of scores (N, C) have their largest score at the label y (N,)."""
    return int(np.count_nonzero(scores.argmax(axis=1) == y))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts: row i = true class i, column j = predicted class j."""
    idx = np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(cm: np.ndarray, classes: Sequence[str]) -> dict[str, float | None]:
    """{class name: accuracy on that class's samples} from a confusion matrix (None for a class with none)."""
    totals = cm.sum(axis=1)
    return {str(c): (float(cm[i, i] / totals[i]) if totals[i] else None) for i, c in enumerate(classes)}
