"""``MLPClassifier``: CS231n's fully-connected network as a scikit-learn-style estimator (lectures 4-7 in one object).

    mlp = MLPClassifier(hidden_sizes=(100,), epochs=15, augment="flip", random_state=0)  # the two-layer net
    mlp.fit(X_train, y_train).score(X_val, y_val)       # uint8 images (N, 32, 32, 3), labels (N,)
    big = MLPClassifier(hidden_sizes=(1024, 1024), norm="batch", optimizer="sgd", lr=0.1, weight_decay=1e-3,
                        batch_size=256, augment=True, time_budget=600, epochs=1000)  # cosine over 10 minutes
    feats = MLPClassifier(features="hog_color", hidden_sizes=(1024,), dropout=0.3, epochs=20)  # HOG + hue hist.
    mlp.save("mlp.npz"); MLPClassifier.load("mlp.npz")  # weights, preprocessing and features, no pickle

bench/bench_mlp.py runs these on CIFAR-10; bench/RESULTS_mlp.md has the numbers.

Inputs are images (N, H, W, C) (uint8 or float) or feature matrices (N, D); labels are any one orderable type,
mapped through ``classes_``. ``fit`` learns, from the training data only and saved with the model:

1. optional hand-designed features (``features="hog_color"``: ``chainrule.features.hog`` +
   ``color_histogram_hsv`` of each image);
2. preprocessing of the (N, D) inputs: ``"standardize"`` (per-feature zero mean, unit variance; constant features
   are only centred), ``"center"`` (the mean image subtracted), ``"zca"`` (``chainrule.data.ZCAWhiten``:
   decorrelated pixels that still form images) or None;
3. a ``chainrule.nn.MLP`` (D -> hidden_sizes -> C, float32) trained with softmax cross-entropy by
   ``chainrule.train.Trainer`` over a ``chainrule.data.DataLoader``, with a ``chainrule.optim`` optimizer
   (decay on the weight matrices only, not on biases or normalisation parameters) and learning-rate schedule.

Training (augmentation, early stopping, the time budget, checkpoints and exact resume) is
``chainrule.classifiers.network.NeuralNetClassifier``'s; this leaf supplies the architecture
(``_build_network``: ``nn.MLP([D, *hidden_sizes, C])``) and its saved form (``sizes``, ``activation``, ``norm``,
``dropout``, as files written before the base still hold).
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from chainrule import nn
from chainrule.classifiers.base import check_choice, check_real_param
from chainrule.classifiers.network import NeuralNetClassifier
from chainrule.nn.activations import ACTIVATION_NAMES as ACTIVATIONS

__all__ = ["MLPClassifier", "ACTIVATIONS"]  # ACTIVATIONS: the activation choices (the playground's form lists them)
NORMS = (None, "batch", "layer")


class MLPClassifier(NeuralNetClassifier):
    """Multi-layer perceptron classifier: inputs -> [Linear -> norm -> activation -> dropout] x H -> Linear -> softmax.

    Parameters
    ----------
    hidden_sizes : widths of the hidden layers, e.g. (100,) for CS231n's two-layer net, (1024, 1024) for a deep one,
        () for none (a linear softmax classifier trained like the others).
    activation : one of ``chainrule.nn.activations.ACTIVATION_NAMES``: "relu", "leaky_relu", "elu", "gelu",
        "gelu_tanh", "tanh", "sigmoid", "identity", or "maxout" (2 pieces).
    optimizer : "adam", "adamw" (decoupled weight decay), "sgd" (with ``momentum``, Nesterov when ``nesterov``) or
        "rmsprop" (``chainrule.optim.factory``).
    lr : the base learning rate (the schedule's peak).
    momentum, nesterov : SGD's momentum factor and Nesterov flag (unused by Adam).
    weight_decay : L2 on the weight matrices, chainrule's one L2 knob (PyTorch's meaning): the gradient of each
        weight matrix gains weight_decay * W, i.e. the penalty (weight_decay / 2) * sum(W^2) (decoupled for "adamw").
        The linear models' ``reg`` (CS231n's loss term reg * sum(W^2)) is weight_decay / 2; they take
        ``weight_decay`` too.
    dropout : drop probability after each hidden activation (0 turns it off).
    norm : None, "batch" (BatchNorm1d) or "layer" (LayerNorm) after each hidden Linear.
    batch_size : samples per step (capped at the number of training samples).
    epochs : passes over the training data (an upper bound when ``time_budget`` is set).
    schedule : "cosine" or "linear" decay to 0 over the run, "step" (x0.1 at 1/2 and 3/4), "exponential" (to 1%) or
        "constant" (``chainrule.optim.schedules.run_schedule``); with ``time_budget``: constant, cosine or linear.
    warmup_epochs : linear warmup over this many epochs (may be fractional) before the schedule.
    label_smoothing : cross-entropy target (1 - eps) onehot + eps / C.
    clip_grad_norm : rescale the gradients to this joint norm when they exceed it (None: no clipping).
    preprocessing : "standardize", "center", "zca" or None (see the module docstring).
    features : None (raw inputs) or "hog_color" (HOG + hue histogram of images (N, H, W, 3)).
    hog_cell : HOG cell size in pixels for ``features="hog_color"`` (8: 144 HOG features for 32x32 images).
    augment : False, "flip" (random horizontal flips) or True (flips + 4-pixel padded random crops); needs images.
    test_time_flip : ``predict``, ``predict_proba`` and ``score`` average the scores of each image and of its
        left-right mirror (needs images; one more forward pass). The per-epoch ``validation_scores_`` of ``fit`` are
        the network's own, without it.
    matmul_precision : "float32", "bf16" or "auto". "bf16": the network's products in ``fit`` and ``predict``
        computed with operands rounded to bfloat16 and float32 accumulation, on oneDNN (``pip install
        'chainrule[bf16]'``; a CPU with AVX-512, else ValueError saying so), with float32 weights, activations and
        updates; about 2x faster products on CPUs with AVX-512 BF16 (``chainrule.backend``). "auto": "bf16" where
        that is available, "float32" elsewhere. The backend in use before is restored afterwards; preprocessing
        stays float32.
    early_stopping : hold out ``validation_fraction`` (stratified), stop after ``n_iter_no_change`` epochs without a
        validation-accuracy gain above ``tol``, and keep the best epoch's weights.
    time_budget : seconds of training (None: no limit); see the module docstring.
    eval_batch_size : samples per forward pass in predict and validation.
    random_state : None, an int or a Generator: initial weights, minibatch order, augmentation, dropout, split.
    verbose : print one line per epoch.

    Attributes (after ``fit``)
    --------------------------
    classes_, n_features_in_, sample_shape_ : see ``BaseClassifier``.
    model_ : the trained ``chainrule.nn.MLP``; ``features_`` and ``preprocessor_`` its fitted input steps (or None).
    loss_curve_ : mean training loss of each epoch (the last one partial if the time budget ran out inside it).
    validation_scores_ : validation accuracy after each epoch, or None without validation data.
    best_epoch_ : the (1-based) epoch whose weights the model holds.
    n_iter_ : epochs run (a partial last one counts); n_steps_ : optimizer steps; fit_time_ : seconds in fit;
    train_time_ : seconds in the training loop; stop_reason_ : why training ended before ``epochs`` (or None).
    """

    def __init__(self, hidden_sizes: Sequence[int] = (100,), activation: str = "relu", optimizer: str = "adam",
                 lr: float = 1e-3, momentum: float = 0.9, nesterov: bool = True, weight_decay: float = 1e-4,
                 dropout: float = 0.0, norm: str | None = None, batch_size: int = 200, epochs: int = 50,
                 schedule: str = "cosine", warmup_epochs: float = 0.0, label_smoothing: float = 0.0,
                 clip_grad_norm: float | None = None, preprocessing: str | None = "standardize",
                 features: str | None = None, hog_cell: int = 8, augment: bool | str = False,
                 test_time_flip: bool = False, matmul_precision: str = "float32", early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 10, tol: float = 0.0,
                 time_budget: float | None = None, eval_batch_size: int = 1024, random_state: Any = None,
                 verbose: bool = False):
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.norm = norm
        self.batch_size = batch_size
        self.epochs = epochs
        self.schedule = schedule
        self.warmup_epochs = warmup_epochs
        self.label_smoothing = label_smoothing
        self.clip_grad_norm = clip_grad_norm
        self.preprocessing = preprocessing
        self.features = features
        self.hog_cell = hog_cell
        self.augment = augment
        self.test_time_flip = test_time_flip
        self.matmul_precision = matmul_precision
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.time_budget = time_budget
        self.eval_batch_size = eval_batch_size
        self.random_state = random_state
        self.verbose = verbose

    # ---- the architecture (NeuralNetClassifier's extension points) ----------------------------------------------

    _architecture_params = ("hidden_sizes", "activation", "norm", "dropout")

    def _validate_architecture(self) -> dict[str, Any]:
        hp = {"hidden_sizes": _hidden_sizes(self), "activation": check_choice(self, "activation", ACTIVATIONS),
              "dropout": check_real_param(self, "dropout", 0.0), "norm": check_choice(self, "norm", NORMS)}
        if hp["dropout"] >= 1:
            raise ValueError(f"{type(self).__name__}: dropout must be in [0, 1), got {self.dropout!r}")
        return hp

    def _build_network(self, sample_shape: tuple[int, ...], n_classes: int, random_state: int) -> nn.MLP:
        hp = self._validate_architecture()
        return nn.MLP([int(np.prod(sample_shape)), *hp["hidden_sizes"], n_classes], activation=hp["activation"],
                      dropout=hp["dropout"], norm=hp["norm"], seed=random_state)

    def _uses_batch_statistics(self, hp: dict[str, Any]) -> bool:
        return hp["norm"] == "batch"

    def _network_meta(self) -> dict[str, Any]:
        return {"sizes": list(self.model_.sizes), "activation": self.model_.activation, "norm": self.model_.norm,
                "dropout": self.model_.dropout}

    def _network_from_meta(self, meta: dict[str, Any]) -> nn.MLP:
        return nn.MLP(meta["sizes"], activation=meta["activation"], dropout=meta["dropout"], norm=meta["norm"],
                      seed=0)

    def describe(self) -> str:
        hidden = ",".join(map(str, _hidden_sizes(self))) or "none"
        return f"MLP, hidden {hidden}, weight_decay {self.weight_decay:g}"


def _hidden_sizes(est: Any) -> tuple[int, ...]:
    sizes = est.hidden_sizes
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = (sizes,)
    message = f"{type(est).__name__}: hidden_sizes must be positive ints, e.g. (100,), got {est.hidden_sizes!r}"
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise ValueError(message) from None
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes):
        raise ValueError(message)
    return tuple(int(s) for s in sizes)


