"""``RandomSearchClassifier``: lecture 3's strategy #1 as an estimator -- try random weights, keep the best.

    base = RandomSearchClassifier(tries=1000, random_state=0).fit(X_train, y_train)   # (N, D) rows or images
    base.score(X_val, y_val)       # ~15% on CIFAR-10: the baseline that learning (SGD on the loss) has to beat
    base.best_loss_                # the multiclass SVM loss of the weights it kept

It draws ``tries`` random linear classifiers W ~ N(0, 1/(D+1)) (bias row included) and keeps the one with the lowest
multiclass SVM loss (margin 1) on the training set (a random subsample of ``max_samples`` rows when it is larger),
on the same inputs as the linear models: optional hand-designed features, then standardisation.
``chainrule compare`` shows it as its first row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.classifiers._inputs import FEATURES, PREPROCESSING, InputSteps, compute_features, preprocess
from chainrule.classifiers.base import BaseClassifier, check_choice, check_int_param, check_X
from chainrule.classifiers.linear_base import LinearFacts
from chainrule.utils.seeding import as_generator

__all__ = ["RandomSearchClassifier", "random_search"]


def random_search(X: np.ndarray, y: np.ndarray, num_classes: int, tries: int, rng: np.random.Generator,
                  max_samples: int = 2000, chunk: int = 50) -> tuple[np.ndarray, float]:
    """Draw ``tries`` random W (D+1, C) (bias row last) and keep the one with the lowest multiclass SVM loss on
    (a subsample of ``max_samples`` rows of) X (N, D) float32, labels y (N,) in [0, C). Returns (W, its loss).
    Candidates are scored ``chunk`` at a time: one (N, D+1) x (D+1, chunk*C) product each."""
    if len(X) > max_samples:
        pick = np.sort(rng.choice(len(X), size=max_samples, replace=False))
        X, y = X[pick], y[pick]
    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1), dtype=X.dtype)])
    rows = np.arange(n)
    best_w, best_loss = None, np.inf
    scale = 1.0 / np.sqrt(d + 1)
    for start in range(0, tries, chunk):
        m = min(chunk, tries - start)
        W = (rng.standard_normal((d + 1, m * num_classes)) * scale).astype(np.float32)
        S = (Xb @ W).reshape(n, m, num_classes)                      # scores of every candidate
        correct = S[rows, :, y][:, :, None]                           # (n, m, 1)
        losses = np.maximum(0.0, S - correct + 1.0).sum(axis=2).mean(axis=0) - 1.0  # minus the j = y term
        j = int(np.argmin(losses))
        if losses[j] < best_loss:
            best_loss = float(losses[j])
            best_w = W.reshape(d + 1, m, num_classes)[:, j, :].copy()
    return best_w, best_loss


class RandomSearchClassifier(LinearFacts, InputSteps, BaseClassifier):
    """The best of ``tries`` random linear classifiers by training multiclass SVM loss (lecture 3's baseline).

    Parameters
    ----------
    tries : random weight matrices to try.
    max_samples : score each candidate on at most this many training rows (a random subsample).
    preprocessing : "standardize", "center", "zca" or None, as the linear models'.
    features : None (raw inputs) or "hog_color" (HOG + hue histogram of images (N, H, W, 3)).
    hog_cell : HOG cell size in pixels for ``features="hog_color"``.
    random_state : seed (int), Generator or None: the subsample and the random weights.

    Attributes (after ``fit``): ``W_`` (D, C) and ``b_`` (C,) of the kept classifier, ``best_loss_``, and the fitted
    ``features_`` / ``preprocessor_``.
    """

    def __init__(self, tries: int = 1000, max_samples: int = 2000, preprocessing: str | None = "standardize",
                 features: str | None = None, hog_cell: int = 8, random_state: Any = None):
        self.tries = tries
        self.max_samples = max_samples
        self.preprocessing = preprocessing
        self.features = features
        self.hog_cell = hog_cell
        self.random_state = random_state

    def _validated(self) -> dict[str, Any]:
        return {"tries": check_int_param(self, "tries", 1), "max_samples": check_int_param(self, "max_samples", 1),
                "preprocessing": check_choice(self, "preprocessing", PREPROCESSING),
                "features": check_choice(self, "features", FEATURES), "hog_cell": check_int_param(self, "hog_cell", 1)}

    def _validate_params(self) -> None:
        self._validated()

    def fit(self, X: Any, y: Any) -> "RandomSearchClassifier":
        hp = self._validated()
        X = check_X(X, self, reset=True, keep_uint8=True)
        y_index = self._fit_labels(y, len(X))
        F = self._fit_input_steps(X, hp)  # fits features_ and preprocessor_
        Xp = preprocess(self.preprocessor_, F)
        rng = as_generator(self.random_state, name="random_state")
        W, self.best_loss_ = random_search(Xp, y_index, len(self.classes_), hp["tries"], rng, hp["max_samples"])
        self.W_, self.b_ = np.ascontiguousarray(W[:-1]), W[-1].copy()
        return self

    def _transform(self, X: Any) -> np.ndarray:
        self._check_is_fitted()
        X = check_X(X, self, reset=False, keep_uint8=True)
        return preprocess(self.preprocessor_, compute_features(self.features_, X, self.sample_shape_))

    def decision_function(self, X: Any) -> np.ndarray:
        """Class scores X W + b (N, C)."""
        return self._transform(X) @ self.W_ + self.b_

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def probabilities(self, X: Any) -> tuple[np.ndarray, str]:
        s = self.decision_function(X).astype(np.float64)
        s = np.exp(s - s.max(axis=1, keepdims=True))
        return s / s.sum(axis=1, keepdims=True), "softmax of the scores of random weights (not calibrated)"

    # ---- per-model facts ------------------------------------------------------------------------------------------

    def describe(self) -> str:
        return f"random search over W, best of {self.tries}"

    # ---- persistence ----------------------------------------------------------------------------------------------

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = self._input_state()
        arrays.update({"W_": self.W_, "b_": self.b_})
        meta["best_loss"] = float(self.best_loss_)
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._set_input_state(meta, arrays)
        self.W_, self.b_ = arrays["W_"], arrays["b_"]
        self.best_loss_ = float(meta["best_loss"])
