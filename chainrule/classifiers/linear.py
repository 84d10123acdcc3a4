"""Linear classifiers (CS231n lecture 3): one template per class, scores S = X W + b, trained by minibatch SGD.

    svm = LinearSVM(reg=0.1, lr=3e-4, epochs=8).fit(X_train, y_train)      # multiclass hinge loss
    softmax = SoftmaxClassifier(lr=1e-3).fit(X_train, y_train)            # cross-entropy; has predict_proba
    softmax.templates()                                                   # (C, 32, 32, 3): W as images

    hog_svm = LinearSVM(features="hog_color").fit(X_train, y_train)       # on HOG + hue histograms of the images

Each is a ``chainrule.classifiers.linear_base.LinearClassifier`` (input steps, the training loop, prediction,
saving: see its module docstring) with its own loss: the multiclass hinge or softmax cross-entropy of
``chainrule.classifiers.losses`` (``engine="numpy"``) or of ``chainrule.nn.functional`` (``engine="autograd"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.classifiers.base import check_real_param
from chainrule.classifiers.linear_base import LinearClassifier
from chainrule.classifiers.losses import softmax_loss_vectorized, svm_loss_vectorized
from chainrule.tensor import Tensor

__all__ = ["LinearClassifier", "LinearSVM", "SoftmaxClassifier"]


class LinearSVM(LinearClassifier):
    """Multiclass linear SVM (Weston-Watkins hinge, CS231n's): L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin).

    Parameters
    ----------
    reg : L2 regularisation strength: the loss term reg * sum(W^2), whose gradient is 2 * reg * W (CS231n's).
    lr : learning rate of the optimizer (the schedule's base rate).
    iterations : SGD steps; ignored when ``epochs`` is given.
    epochs : passes over the training set (may be fractional); overrides ``iterations``.
    batch_size : samples per step (capped at N).
    momentum : SGD momentum (0 for plain SGD); unused by Adam.
    optimizer : "sgd" or "adam".
    schedule : learning-rate schedule over the run: "cosine", "linear" (to 0), "step" (x0.1 at 1/2 and 3/4),
        "constant".
    preprocessing : "standardize", "center" or None (see the module docstring).
    features : None (raw inputs) or "hog_color" (HOG + hue histogram of images (N, H, W, 3)).
    hog_cell : HOG cell size in pixels for ``features="hog_color"`` (8: 144 HOG features for 32x32 images).
    augment : False, or "flip" to mirror a random half of every minibatch left-right (images only). With features,
        the features of the mirror images are computed once in ``fit`` (twice the extraction time).
    margin : the hinge's margin (delta).
    init_scale : standard deviation of the random initial W.
    engine : "numpy" (fused vectorised loss and gradient) or "autograd" (through the Tensor graph).
    random_state : seed (int), Generator or None: initial W and minibatch order.
    weight_decay : the L2 knob under chainrule's one name and meaning (``MLPClassifier``'s, PyTorch's): the gradient
        gains weight_decay * W. When given it replaces ``reg``: reg = weight_decay / 2 (None: use ``reg``).
    """

    def __init__(self, reg: float = 0.1, lr: float = 3e-4, iterations: int = 1500, epochs: float | None = None,
                 batch_size: int = 256, momentum: float = 0.9, optimizer: str = "sgd", schedule: str = "cosine",
                 preprocessing: str | None = "standardize", features: str | None = None, hog_cell: int = 8,
                 augment: bool | str = False, margin: float = 1.0,
                 init_scale: float = 1e-3, engine: str = "numpy", random_state: Any = None,
                 weight_decay: float | None = None):
        self.reg = reg
        self.lr = lr
        self.iterations = iterations
        self.epochs = epochs
        self.batch_size = batch_size
        self.momentum = momentum
        self.optimizer = optimizer
        self.schedule = schedule
        self.preprocessing = preprocessing
        self.features = features
        self.hog_cell = hog_cell
        self.augment = augment
        self.margin = margin
        self.init_scale = init_scale
        self.engine = engine
        self.random_state = random_state
        self.weight_decay = weight_decay

    def _validated(self) -> dict[str, Any]:
        hp = super()._validated()
        hp["margin"] = check_real_param(self, "margin", 0.0)
        return hp

    _kind = "linear SVM"

    def probabilities(self, X: Any) -> tuple[np.ndarray, str]:
        """((N, C) the softmax of the class scores X W + b, what they are). An SVM's scores are margins, not
        log-probabilities, so these are not calibrated (they say how clearly one class wins); for that reason the
        SVM has no ``predict_proba``, like scikit-learn's LinearSVC."""
        return _softmax_rows(self._scores(X)), "softmax of the SVM scores (not calibrated)"

    def _loss_grad(self, W, b, X, y, reg, pred=None):
        return svm_loss_vectorized(W, b, X, y, reg, self.margin, pred)

    def _autograd_loss(self, scores: Tensor, y: np.ndarray) -> Tensor:
        from chainrule.nn import functional as F

        return F.multiclass_hinge(scores, y, margin=float(self.margin))


class SoftmaxClassifier(LinearClassifier):
    """Softmax (multinomial logistic regression) classifier: cross-entropy loss, calibrated-ish probabilities.

    Parameters are LinearSVM's without ``margin``; see ``LinearSVM``.
    """

    def __init__(self, reg: float = 1e-3, lr: float = 1e-3, iterations: int = 1500, epochs: float | None = None,
                 batch_size: int = 256, momentum: float = 0.9, optimizer: str = "sgd", schedule: str = "cosine",
                 preprocessing: str | None = "standardize", features: str | None = None, hog_cell: int = 8,
                 augment: bool | str = False, init_scale: float = 1e-3,
                 engine: str = "numpy", random_state: Any = None, weight_decay: float | None = None):
        self.reg = reg
        self.lr = lr
        self.iterations = iterations
        self.epochs = epochs
        self.batch_size = batch_size
        self.momentum = momentum
        self.optimizer = optimizer
        self.schedule = schedule
        self.preprocessing = preprocessing
        self.features = features
        self.hog_cell = hog_cell
        self.augment = augment
        self.init_scale = init_scale
        self.engine = engine
        self.random_state = random_state
        self.weight_decay = weight_decay

    def _loss_grad(self, W, b, X, y, reg, pred=None):
        return softmax_loss_vectorized(W, b, X, y, reg, pred)

    def _autograd_loss(self, scores: Tensor, y: np.ndarray) -> Tensor:
        from chainrule.nn import functional as F

        return F.cross_entropy(scores, y)

    _kind = "softmax classifier"

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, C) class probabilities softmax(X W + b), columns in ``classes_`` order."""
        return _softmax_rows(self._scores(X))


def _softmax_rows(S: np.ndarray) -> np.ndarray:
    """Row-wise softmax of scores S (N, C) float64, in place."""
    S -= S.max(axis=1, keepdims=True)
    np.exp(S, out=S)
    S /= S.sum(axis=1, keepdims=True)
    return S
