"""The extra input features of TensorFlow Playground, computed from the 2-D points before the estimator sees them.

The playground's plane is about [-1, 1]^2 (``chainrule.data.make_2d``), where sin x is nearly x; so the sine
features use sin(pi x), one period across the plane (TensorFlow Playground's sin x spans [-6, 6], about two).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# name -> (label shown on the page, function of x (N,), y (N,))
FEATURES: dict[str, tuple[str, object]] = {
    "x": ("x", lambda x, y: x),
    "y": ("y", lambda x, y: y),
    "x2": ("x²", lambda x, y: x * x),
    "y2": ("y²", lambda x, y: y * y),
    "xy": ("xy", lambda x, y: x * y),
    "sinx": ("sin(πx)", lambda x, y: np.sin(np.pi * x)),
    "siny": ("sin(πy)", lambda x, y: np.sin(np.pi * y)),
}
DEFAULT_FEATURES = ("x", "y")


def input_features(points: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """points (N, 2) -> float32 (N, F): the named features (``FEATURES``) of each point, in the order given."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"input_features expects points of shape (N, 2), got {points.shape}")
    unknown = [n for n in names if n not in FEATURES]
    if unknown or not names:
        raise ValueError(f"input_features: expected one or more of {', '.join(FEATURES)}, got {list(names)}")
    x, y = points[:, 0], points[:, 1]
    return np.stack([FEATURES[n][1](x, y) for n in names], axis=1).astype(np.float32)
