"""Scoring a trained model: class scores in evaluation mode without a graph, in batches, and counting hits."""

from __future__ import annotations

from typing import Any

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
