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

``augment`` flips (and, with True, shifts by zero-padded random crops) the training images of every batch before
they are preprocessed (``chainrule.data.FlipCrop``). Under ``"zca"`` the order is swapped: the training images are
whitened once and the whitened images are flipped and cropped (zero padding is the mean there), which saves a
(D x D) product per batch; the whitening filters are nearly shift- and mirror-symmetric, so this is close to, but
not exactly, whitening each augmented image.
``early_stopping`` carves a stratified ``validation_fraction`` off the training data, stops after
``n_iter_no_change`` epochs without improvement and keeps the best epoch's weights. ``time_budget`` (seconds)
stops training when it is spent, mid-epoch if need be, and runs the schedule over the budget (its progress is the
larger of the fraction of steps done and the fraction of the budget spent: ``chainrule.train.TimeBudget`` and
``BudgetSchedule``), so a "cosine over 10 minutes" run anneals to zero exactly when time is up; such a run depends
on the machine's speed, so it is not reproducible step for step (everything else is, given ``random_state``). A
partial last epoch is validated here (the trainer does not), and counts as the best one if it scores higher.
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any, Iterator, Sequence

import numpy as np

from chainrule import backend, nn
from chainrule.classifiers import _training as tr
from chainrule.classifiers._flip import mirror_rows
from chainrule.classifiers._inputs import InputSteps, compute_features, preprocess
from chainrule.classifiers._mlp_params import (ACTIVATIONS, MATMUL_PRECISIONS, check_flag, matmul_precision,
                                              validated)
from chainrule.classifiers.base import BaseClassifier, check_int_param, check_X
from chainrule.data.augment import FlipCrop
from chainrule.data.loader import DataLoader
from chainrule.data.splits import train_val_indices
from chainrule.data.whitening import ZCAWhiten
from chainrule.nn import functional as F
from chainrule.optim.schedules import run_schedule
from chainrule.train import BudgetSchedule, TimeBudget, Trainer, predict_scores

__all__ = ["MLPClassifier", "ACTIVATIONS"]  # ACTIVATIONS: the activation choices (the playground's form lists them)
_PREDICT_CHUNK = 4096  # samples transformed and scored at a time in predict: bounds the float32 temporaries


class MLPClassifier(InputSteps, BaseClassifier):
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
    weight_decay : L2 penalty on the weight matrices (added to the gradient; decoupled for "adamw").
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

    # ---- hyperparameters -----------------------------------------------------------------------------------------

    def _validated(self) -> dict[str, Any]:
        return validated(self)  # chainrule.classifiers._mlp_params

    def _validate_params(self) -> None:
        self._validated()

    # ---- input pipeline -------------------------------------------------------------------------------------------

    def _fit_inputs(self, X: np.ndarray, hp: dict[str, Any], F: np.ndarray | None = None) -> np.ndarray:
        """The training inputs of X (N, D) through the fitted steps (``F``: its features, if already computed): the
        float32 model inputs (N, D'), or, when augmenting, X itself (batches are augmented first and preprocessed
        afterwards, by ``_batch_inputs``) -- except under ZCA whitening, whose (D, D) product per batch would cost as
        much as the first layer: then the images are whitened once here and the whitened images are augmented (see
        the class docstring). Standardizing centres constant features without dividing them by ~0
        (``chainrule.classifiers._inputs``)."""
        if hp["augment"] is not False and not self._whiten_first():
            return X
        return preprocess(self.preprocessor_, compute_features(self.features_, X, self.sample_shape_) if F is None
                          else F)

    def _whiten_first(self) -> bool:
        """True when training batches are augmented after preprocessing (ZCA), not before."""
        return isinstance(self.preprocessor_, ZCAWhiten)

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        """Validated (N, D) inputs -> the float32 model inputs (N, D'), with the fitted steps."""
        return preprocess(self.preprocessor_, compute_features(self.features_, X, self.sample_shape_))

    def _batch_inputs(self, images: np.ndarray) -> np.ndarray:
        """Augmented training images (B, H, W[, C]) -> float32 model inputs (B, D)."""
        if self._whiten_first():  # already whitened (then augmented): the model inputs as they are
            return np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.float32)
        return self._inputs(images.reshape(len(images), -1))

    # ---- training -------------------------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, *, validation_data: tuple[Any, Any] | None = None, callbacks: Any = (),
            checkpoints: Any = None, checkpoint_every: int | None = None, resume: Any = None,
            diagnostics: bool = False) -> "MLPClassifier":
        """Train on X (N, D) or images (N, H, W, C) with labels y (N,). Returns self.

        ``validation_data=(X_val, y_val)``, if given, is scored after every epoch (``validation_scores_``) and used
        for early stopping instead of a held-out part of X. The other keyword arguments are the run-folder hooks of
        ``chainrule.classifiers._training`` (callbacks, checkpoints, exact resume, diagnostics).
        """
        start = time.perf_counter()
        hp = self._validated()
        X = check_X(X, self, reset=True, keep_uint8=True)
        y_index = self._fit_labels(y, len(X))
        self._check_augment(hp)
        split_seed, loader_seed, model_seed = tr.draw_seeds(self.random_state)
        X_val = y_val = None
        if validation_data is not None:
            X_val, y_val = self._validation_arrays(validation_data)
        elif self.early_stopping:
            train_idx, val_idx = self._split(y_index, hp["validation_fraction"], split_seed)
            X, X_val, y_val, y_index = X[train_idx], X[val_idx], y_index[val_idx], y_index[train_idx]
        if resume is not None:
            extend = bool(set(tr.check_resume(self, resume)) & set(tr.EXTENDING))
            tr.check_resume_data(self, X, y_index, resume["metadata"])
            tr.restore_fitted(self, resume["metadata"])
            X = self._fit_inputs(X, hp)
        else:
            X = self._fit_inputs(X, hp, self._fit_input_steps(X, hp))
        val = None if X_val is None else (self._inputs(X_val), y_val)
        self.model_ = self._new_model(X.shape[1], hp, model_seed)
        loader = self._loader(X, y_index, hp, loader_seed)
        del X
        optimizer = tr.build_optimizer(hp["optimizer"], self.model_.parameters(), self._optimizer_options(hp))
        trainer, budget = self._trainer(loader, optimizer, val, hp, callbacks=callbacks, checkpoints=checkpoints,
                                        checkpoint_every=checkpoint_every, diagnostics=diagnostics)
        if resume is not None:
            trainer.load_state_dict(resume, extend=extend)
        train_start = time.perf_counter()
        with self._products():
            trainer.fit()
            self.train_time_ = time.perf_counter() - train_start
            self._record(trainer, len(loader), val)
        if budget is not None and budget.spent:
            self.stop_reason_ = f"time_budget of {budget.seconds:g} s spent after {trainer.step} steps"
        self._partial = tr.PartialFitState(self._arch(hp), loader_seed, optimizer, hp["optimizer"], trainer.epoch)
        self.fit_time_ = time.perf_counter() - start
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> "MLPClassifier":
        """One epoch of minibatch updates on X, y, continuing the model and optimizer state of earlier calls (or of
        ``fit``). The first call (or one after a change of an architecture or input parameter: ``hidden_sizes``,
        ``activation``, ``norm``, ``dropout``, ``features``, ``hog_cell``, ``preprocessing``, ``augment``)
        initialises the model and fits the input steps on this X; ``classes`` lists every label when y might not hold
        them all. ``lr``, ``weight_decay``, ``momentum``, ``nesterov``, ``optimizer`` (a change starts a fresh
        optimizer state) and ``batch_size`` are read at every call; the learning rate is constant (``schedule``,
        ``warmup_epochs``, ``epochs``, ``time_budget`` and early stopping are fit's). Returns self."""
        start = time.perf_counter()
        hp = self._validated()
        state = getattr(self, "_partial", None)
        first = not hasattr(self, "model_") or (state is not None and state.arch != self._arch(hp))
        X = check_X(X, self, reset=first, keep_uint8=True)
        y_index = tr.partial_labels(self, y, len(X), classes, first)
        self._check_augment(hp)
        _, loader_seed, model_seed = tr.draw_seeds(self.random_state)
        if first:
            X = self._fit_inputs(X, hp, self._fit_input_steps(X, hp))
            self.model_ = self._new_model(X.shape[1], hp, model_seed)
            state = self._partial = tr.PartialFitState(self._arch(hp), loader_seed, None, hp["optimizer"])
            self.loss_curve_, self.n_steps_ = [], 0
        else:
            X = self._fit_inputs(X, hp)
            if state is None:  # a loaded model: continue it with a fresh optimizer
                state = self._partial = tr.PartialFitState(self._arch(hp), loader_seed, None, hp["optimizer"],
                                                           int(self.n_iter_))
        loader = self._loader(X, y_index, hp, state.loader_seed)
        loader.set_epoch(state.epochs_done)
        optimizer = state.optimizer_for(self.model_.parameters(), self._optimizer_options(hp))
        trainer = Trainer(self.model_, functools.partial(F.cross_entropy, label_smoothing=hp["label_smoothing"]),
                          optimizer, loader, epochs=1, restore_best=False, eval_batch_size=hp["eval_batch_size"])
        with self._products():
            trainer.fit()
        state.epochs_done += 1
        self.loss_curve_ = list(self.loss_curve_) + tr.epoch_means(trainer.history.column("epoch"),
                                                                   trainer.history.column("loss"))
        self.n_iter_, self.n_steps_ = len(self.loss_curve_), int(self.n_steps_) + trainer.step
        self.best_epoch_, self.validation_scores_, self.stop_reason_ = self.n_iter_, None, None
        self.fit_time_ = self.train_time_ = time.perf_counter() - start
        return self

    def _arch(self, hp: dict[str, Any]) -> tuple[Any, ...]:
        return (hp["hidden_sizes"], hp["activation"], hp["norm"], hp["dropout"], hp["features"], hp["hog_cell"],
                hp["preprocessing"], hp["augment"])

    def _check_augment(self, hp: dict[str, Any]) -> None:
        if len(self.sample_shape_) in (2, 3):
            return
        for name, off in (("augment", False), ("test_time_flip", False)):
            if hp[name] is not off:
                raise ValueError(f"{type(self).__name__}: {name}={getattr(self, name)!r} needs images (N, H, W[, C]), "
                                 f"got samples of shape {self.sample_shape_}; pass the images unflattened or "
                                 f"{name}=False")

    def _products(self) -> contextlib.AbstractContextManager[None]:
        """The block in which the network runs: its float32 products at ``matmul_precision`` (bfloat16 on oneDNN for
        "bf16"), the GEMM backend and precision in use before restored afterwards."""
        return backend.float32_matmul_precision(MATMUL_PRECISIONS[matmul_precision(self)])

    def _new_model(self, n_inputs: int, hp: dict[str, Any], seed: int) -> nn.MLP:
        return nn.MLP([n_inputs, *hp["hidden_sizes"], len(self.classes_)], activation=hp["activation"],
                      dropout=hp["dropout"], norm=hp["norm"], seed=seed)

    def _optimizer_options(self, hp: dict[str, Any]) -> dict[str, Any]:
        return {**hp, "nesterov": bool(self.nesterov) and hp["optimizer"] == "sgd"}

    def _trainer(self, loader: DataLoader, optimizer: Any, val: tuple[np.ndarray, np.ndarray] | None,
                 hp: dict[str, Any], **hooks: Any) -> tuple[Trainer, TimeBudget | None]:
        """The Trainer over model_ with its schedule and callbacks (and the time budget, if any)."""
        total_steps = hp["epochs"] * len(loader)
        warmup = min(int(round(hp["warmup_epochs"] * len(loader))), total_steps - 1)
        budget = TimeBudget(hp["time_budget"]) if hp["time_budget"] is not None else None
        if budget is not None:
            schedule: Any = BudgetSchedule(optimizer, hp["schedule"], total_steps, warmup, budget)
        else:
            schedule = run_schedule(hp["schedule"], optimizer, total_steps, warmup=warmup)
        own = [cb for cb in (budget, _EpochPrinter() if self.verbose else None) if cb is not None]
        hooks["callbacks"] = [*own, *(hooks.get("callbacks") or ())]
        trainer = Trainer(
            self.model_, functools.partial(F.cross_entropy, label_smoothing=hp["label_smoothing"]), optimizer,
            loader, schedule=schedule, val_data=val, epochs=hp["epochs"],
            early_stopping_patience=hp["n_iter_no_change"] if self.early_stopping and val is not None else None,
            min_delta=hp["tol"], restore_best=False, eval_batch_size=hp["eval_batch_size"],
            clip_grad_norm=hp["clip_grad_norm"], **tr.trainer_hooks(self, **hooks),
        )
        return trainer, budget

    def _validation_arrays(self, validation_data: Any) -> tuple[np.ndarray, np.ndarray]:
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError):
            raise ValueError("validation_data must be a pair (X_val, y_val)") from None
        X_val = check_X(X_val, self, reset=False, keep_uint8=True)
        return X_val, tr.label_index(self, y_val, len(X_val), "validation_data")

    def _split(self, y_index: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(y_index)
        n_val = max(1, int(round(fraction * n)))
        if n - n_val < 1:
            raise ValueError(f"{type(self).__name__}: early_stopping holds out validation_fraction={fraction} of "
                             f"{n} samples, leaving none to train on; pass more samples or early_stopping=False")
        return train_val_indices(y_index, n_val, stratify=True, seed=seed)

    def _loader(self, X: np.ndarray, y_index: np.ndarray, hp: dict[str, Any], seed: int) -> DataLoader:
        """Shuffled minibatches of the model inputs X (N, D'), or of augmented-then-preprocessed images."""
        n = len(X)
        batch = min(hp["batch_size"], n)
        # A training batch of one sample has no batch statistics: drop such a last batch under batch norm.
        drop_last = hp["norm"] == "batch" and n % batch == 1 and n > 1
        if hp["augment"] is False:
            return DataLoader(X, y_index, batch, shuffle=True, drop_last=drop_last, seed=seed)
        images = X.reshape(n, *self.sample_shape_)  # (N, H, W, C) or grayscale (N, H, W)
        return DataLoader(images, y_index, batch, shuffle=True, drop_last=drop_last, seed=seed,
                          augment=FlipCrop(padding=4 if hp["augment"] is True else 0), transform=self._batch_inputs)

    def _record(self, trainer: Trainer, steps_per_epoch: int, val: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Learned attributes from the finished trainer; keep the best weights under early stopping."""
        history = trainer.history
        self.n_steps_ = int(trainer.step)
        self.loss_curve_ = tr.epoch_means(history.column("epoch"), history.column("loss"))
        self.n_iter_ = len(self.loss_curve_)
        partial = trainer.step > trainer.epoch * steps_per_epoch  # the time budget ran out inside an epoch
        self.best_epoch_ = self.n_iter_
        self.stop_reason_ = trainer.stop_reason
        if val is None:
            self.validation_scores_ = None
            return
        scores = [float(r["val_acc"]) for r in history.epochs if r.get("val_acc") is not None]
        if partial:
            scores.append(self._accuracy(*val))
        self.validation_scores_ = scores
        if self.early_stopping and trainer.best_state is not None:
            if not partial or scores[-1] <= trainer.best_val_acc:
                self.model_.load_state_dict(trainer.best_state)
                self.best_epoch_ = int(trainer.best_epoch)

    def _accuracy(self, Xp: np.ndarray, y_index: np.ndarray) -> float:
        return float(np.mean(predict_scores(self.model_, Xp, self.eval_batch_size).argmax(axis=1) == y_index))

    # ---- prediction -----------------------------------------------------------------------------------------------

    def _scores(self, X: Any) -> np.ndarray:
        """Class scores (N, C) float32 of the trained network (evaluation mode); with ``test_time_flip`` the mean of
        the scores of each image and of its mirror image."""
        self._check_is_fitted()
        X = check_X(X, self, reset=False, keep_uint8=True)
        hp = {"augment": False, "test_time_flip": check_flag(self, "test_time_flip")}
        self._check_augment(hp)
        batch = check_int_param(self, "eval_batch_size", 1)
        with self._products():
            return np.concatenate([self._chunk_scores(X[i:i + _PREDICT_CHUNK], batch, hp["test_time_flip"])
                                   for i in range(0, len(X), _PREDICT_CHUNK)])

    def _chunk_scores(self, X: np.ndarray, batch: int, flip: bool) -> np.ndarray:
        scores = predict_scores(self.model_, self._inputs(X), batch)
        if flip:
            scores += predict_scores(self.model_, self._inputs(mirror_rows(X, self.sample_shape_, type(self).__name__)),
                                     batch)
            scores *= 0.5
        return scores

    def predict(self, X: Any) -> np.ndarray:
        """Labels (N,): the class with the highest score."""
        scores = self._scores(X)  # checks the fit first
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, C) float64 class probabilities softmax(scores), columns in ``classes_`` order."""
        s = self._scores(X).astype(np.float64)
        s -= s.max(axis=1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=1, keepdims=True)
        return s

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """(N, C) log class probabilities (log-softmax of the scores)."""
        s = self._scores(X).astype(np.float64)
        s -= s.max(axis=1, keepdims=True)
        s -= np.log(np.exp(s).sum(axis=1, keepdims=True))
        return s

    def as_module(self) -> nn.Module:
        """The fitted prediction as one ``nn.Module`` of ops (evaluation mode): raw rows x (N, D) float32 -> the
        preprocessing (standardisation, mean image, ZCA) -> the network -> scores (N, C); what
        ``chainrule.onnx.export`` writes. Shares ``model_``. Refused for features='hog_color' (NumPy code outside the
        graph) and test_time_flip=True (two passes averaged, not this graph)."""
        from chainrule.classifiers._input_module import input_module

        self._check_is_fitted()
        if check_flag(self, "test_time_flip"):
            raise ValueError("MLPClassifier with test_time_flip=True averages the scores of each image and its mirror "
                             "image, which as_module() (one pass) does not compute; set test_time_flip=False to "
                             "export it")
        return nn.Sequential(input_module(self), self.model_).eval()

    # ---- persistence ----------------------------------------------------------------------------------------------

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = self._input_state()  # "features", "preprocessor", preprocessor.*
        arrays.update({f"model.{k}": v for k, v in self.model_.state_dict().items()})
        meta.update({
            "sizes": list(self.model_.sizes), "activation": self.model_.activation, "norm": self.model_.norm,
            "dropout": self.model_.dropout,
            "loss_curve": list(self.loss_curve_), "validation_scores": self.validation_scores_,
            "best_epoch": self.best_epoch_, "n_iter": self.n_iter_, "n_steps": self.n_steps_,
            "fit_time": self.fit_time_, "train_time": self.train_time_, "stop_reason": self.stop_reason_,
        })
        return meta, arrays

    def _set_weights(self, weights: dict[str, np.ndarray], history: dict[str, Any]) -> None:
        """model_ from a checkpoint's weights and the learned attributes from its history (labels and input steps
        are already restored: ``chainrule.classifiers._training.restore_fitted``)."""
        self.model_ = self._new_model(int(weights["0.weight"].shape[0]), self._validated(), 0)
        self.model_.load_state_dict(weights)
        self.model_.eval()
        steps = history["steps"]
        self.loss_curve_ = tr.epoch_means(np.asarray(steps["epoch"]), np.asarray(steps["loss"], dtype=np.float64))
        self.n_iter_, self.n_steps_, self.best_epoch_ = len(self.loss_curve_), len(steps["loss"]), len(self.loss_curve_)
        self.validation_scores_ = [float(e["val_acc"]) for e in tr.history_epochs(history)
                                   if e.get("val_acc") is not None] or None
        self.fit_time_ = self.train_time_ = 0.0
        self.stop_reason_ = None

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.model_ = nn.MLP(meta["sizes"], activation=meta["activation"], dropout=meta["dropout"],
                             norm=meta["norm"], seed=0)
        self.model_.load_state_dict({k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")})
        self.model_.eval()
        self._set_input_state(meta, arrays)
        self.loss_curve_ = [float(v) for v in meta["loss_curve"]]
        self.validation_scores_ = meta["validation_scores"]
        self.best_epoch_, self.n_iter_, self.n_steps_ = meta["best_epoch"], meta["n_iter"], meta["n_steps"]
        self.fit_time_, self.train_time_, self.stop_reason_ = meta["fit_time"], meta["train_time"], meta["stop_reason"]


# ---- helpers --------------------------------------------------------------------------------------------------------


class _EpochPrinter:
    """Trainer callback (``verbose=True``): one line per epoch."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        r = trainer.history.epochs[-1]
        val = f"  val_acc {r['val_acc']:.4f}" if r.get("val_acc") is not None else ""
        print(f"epoch {r['epoch']}/{trainer.epochs}  loss {r['train_loss']:.4f}  train_acc {r['train_acc']:.4f}"
              f"{val}  lr {r['lr']:.3g}  {r['time_s']:.1f}s", flush=True)
