"""The input steps the classifiers share: optional hand-designed features, then preprocessing (learned in ``fit``).

    features = make_features("hog_color", cell=8)          # HogColorFeatures, or None for features=None
    F = compute_features(features, X, sample_shape)        # validated (N, D) rows -> (N, F) float32
    prep = fit_preprocessor(F, "standardize")              # Standardize / MeanImage / ZCAWhiten / None
    meta, arrays = input_state(features, prep)             # for an estimator's _state ...
    features, prep = load_input_state(meta, arrays)        # ... and _set_state

``LinearSVM`` and ``SoftmaxClassifier`` (linear.py) use these; the names, choices and messages are
``MLPClassifier``'s (``features=None | "hog_color"``, ``hog_cell``, saved as ``{"kind", "cell", "bins"}``).
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from chainrule.data.preprocessing import MeanImage, Standardize
from chainrule.data.whitening import ZCAWhiten
from chainrule.features import HogColorFeatures

FEATURES = (None, "hog_color")
PREPROCESSING = ("standardize", "center", "zca", None)
_STEPS = {"Standardize": Standardize, "MeanImage": MeanImage, "ZCAWhiten": ZCAWhiten}
Preprocessor = Union[Standardize, MeanImage, ZCAWhiten]


class InputSteps:
    """The fitted input steps of an estimator: ``features_`` and ``preprocessor_`` (for ``MLPClassifier`` and the
    linear models), fitted on the training rows, saved with the model and in checkpoints."""

    def _fit_input_steps(self, X: np.ndarray, hp: dict[str, Any]) -> np.ndarray:
        """Fit features_ and preprocessor_ on the validated rows X (N, D); return the features (N, F) (X itself
        without features)."""
        self.features_ = make_features(hp["features"], hp["hog_cell"])
        F = compute_features(self.features_, X, self.sample_shape_)  # type: ignore[attr-defined]
        self.preprocessor_ = fit_preprocessor(F, hp["preprocessing"])
        return F

    def _input_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return input_state(self.features_, self.preprocessor_)

    def _set_input_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.features_, self.preprocessor_ = load_input_state(meta, arrays)


def make_features(kind: str | None, cell: int) -> HogColorFeatures | None:
    """The feature step for ``features=kind`` (None: the raw inputs are the features)."""
    return HogColorFeatures(cell=cell) if kind == "hog_color" else None


def compute_features(features: HogColorFeatures | None, X: np.ndarray, sample_shape: tuple[int, ...]) -> np.ndarray:
    """Validated rows X (N, D) of samples of ``sample_shape`` -> features (N, F) (X itself without a step).

    With "hog_color" the samples must be RGB images (H, W, 3); the step's error says so otherwise.
    """
    if features is None:
        return X
    return features.transform(X.reshape(len(X), *sample_shape))


def fit_preprocessor(X: np.ndarray, kind: str | None) -> Preprocessor | None:
    """Fit ``kind`` ("standardize", "center", "zca" or None) on X (N, D). Standardizing only centres constant
    features (``chainrule.data.Standardize``); "zca" is ``chainrule.data.ZCAWhiten()`` (its default eps)."""
    if kind is None:
        return None
    step = {"standardize": Standardize, "center": MeanImage, "zca": ZCAWhiten}[kind]()
    step.fit(X)
    return step


def preprocess(prep: Preprocessor | None, X: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """X (N, D) through the fitted preprocessing, as a C-contiguous array of ``dtype``."""
    if prep is not None:
        X = prep.transform(X)
    return np.ascontiguousarray(X, dtype=dtype)


def input_state(features: HogColorFeatures | None,
                prep: Preprocessor | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON metadata ``{"features": ..., "preprocessor": ...}`` and the arrays (``preprocessor.<name>``)."""
    meta = {
        "features": None if features is None else {"kind": "hog_color", "cell": int(features.cell),
                                                   "bins": int(features.bins)},
        "preprocessor": None if prep is None else type(prep).__name__,
    }
    arrays = {} if prep is None else {f"preprocessor.{k}": v for k, v in prep.state_dict().items()}
    return meta, arrays


def load_input_state(meta: dict[str, Any], arrays: dict[str, np.ndarray]
                     ) -> tuple[HogColorFeatures | None, Preprocessor | None]:
    """Rebuild what ``input_state`` saved; metadata without a "features" entry (older files) means None."""
    feats = meta.get("features")
    if feats is None:
        features = None
    elif feats.get("kind") != "hog_color":
        raise ValueError(f"unknown features {feats.get('kind')!r} in the saved model; expected 'hog_color' or None")
    else:
        features = HogColorFeatures(cell=int(feats["cell"]), bins=int(feats["bins"]))
    kind = meta.get("preprocessor")
    if kind is None:
        return features, None
    if kind not in _STEPS:
        raise ValueError(f"unknown preprocessor {kind!r} in the saved model; expected one of {sorted(_STEPS)}")
    state = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("preprocessor.")}
    return features, _STEPS[kind]().load_state_dict(state)
