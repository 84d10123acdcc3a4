"""``NeuralNetClassifier``: the network-estimator base. It owns everything about training a network on images or
feature vectors -- input steps, augmentation, the optimizer, the schedule, the budget, early stopping,
checkpoints and exact resume through the one ``chainrule.train.Trainer`` -- and asks its leaf for the network.

    class MLPClassifier(NeuralNetClassifier):           # chainrule/classifiers/mlp.py, the first leaf
        def __init__(self, hidden_sizes=(100,), ..., <every training setting, as keywords>): ...
        def _validate_architecture(self): return {"hidden_sizes": ..., ...}
        def _build_network(self, sample_shape, n_classes, random_state): return nn.MLP([*sample_shape, ...])

Extension points (a leaf overrides these; everything else is the base's):

``_build_network(sample_shape, n_classes, random_state) -> chainrule.nn.Module`` (required)
    A fresh network mapping inputs (N, *sample_shape) float32 to scores (N, n_classes), its initial weights drawn
    from ``random_state`` (an int seed). ``sample_shape`` is a tuple: the shape of one network input, i.e. of one
    row of ``_network_input``'s output -- ``(D,)`` for flat inputs, ``(C, H, W)`` for a conv net.
``_validate_architecture() -> dict``
    The leaf's own hyperparameters checked (ValueError naming the parameter, the rule and the value) and
    normalised; merged into the training settings (``hp``) that ``fit`` passes around.
``_architecture_params: tuple[str, ...]`` (class attribute)
    The leaf's hyperparameters whose change makes ``partial_fit`` start a new network.
``_network_input(rows) -> array``
    The model-input rows (N, D') float32 (after features and preprocessing) as the network takes them; the
    default passes the rows through (flat inputs). A conv leaf reshapes to (N, C, H, W) here, from images given as
    (N, H, W, C), (N, C, H, W) or flat rows (it knows ``sample_shape_``, the shape of one sample given to fit).
    It must also run on a Tensor, as ops (reshape, transpose): ``as_module`` puts it in the exported graph.
``_uses_batch_statistics(hp) -> bool``
    True when the network normalises over the batch (BatchNorm): a last training batch of one sample is dropped.
``_network_meta() -> dict`` / ``_network_from_meta(meta) -> Module``
    What ``save`` writes to rebuild the network, and the rebuild (the weights are loaded after it). The default
    stores the network's input shape and rebuilds with ``_build_network``; ``MLPClassifier`` keeps its own
    format (``sizes``, ``activation``, ``norm``, ``dropout``) so files saved before this base still load.

``_augmentation(hp)`` / ``_build_optimizer(hp)`` / ``_training_callbacks(hp, schedule, total_steps)``
    The training images' augmentation (``FlipCrop`` by default), the optimizer of ``fit`` (weight decay on
    matrices and filters only) and extra Trainer callbacks (none): ``ConvNetClassifier`` uses alternating flips +
    translations, per-kind parameter groups (``chainrule.optim.param_groups``) and ``Lookahead``.

Per-model facts the front ends ask for (``BaseClassifier``): ``n_parameters()``, ``weight_images()``,
``describe()``, ``has_training_curve`` and ``input_kinds``; this base answers them for any network.

Training (``fit``): the inputs are validated (``check_X``), the labels mapped through ``classes_``; the seeds of
the validation split, the minibatch order and the initial weights are drawn in that order from ``random_state``
(``chainrule.classifiers._training``); optional hand-designed features and the preprocessing are fitted on the
training rows (``chainrule.classifiers._inputs``); ``augment`` flips (and, with True, shifts by zero-padded random
crops) the training images of every batch before they are preprocessed (``chainrule.data.FlipCrop``). Under
``"zca"`` the order is swapped: the training images are whitened once and the whitened images are flipped and
cropped (zero padding is the mean there), which saves a (D x D) product per batch; the whitening filters are nearly
shift- and mirror-symmetric, so this is close to, but not exactly, whitening each augmented image. The network is
trained with softmax cross-entropy by ``chainrule.train.Trainer`` over a ``chainrule.data.DataLoader``, with a
``chainrule.optim`` optimizer (weight decay on the weight matrices and filters only, not on biases or
normalisation parameters) and a learning-rate schedule.

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
from typing import Any

import numpy as np

from chainrule import backend, nn
from chainrule.classifiers import _training as tr
from chainrule.classifiers._flip import mirror_rows
from chainrule.classifiers._inputs import InputSteps, compute_features, preprocess
from chainrule.classifiers._network_params import MATMUL_PRECISIONS, check_flag, matmul_precision, validated
from chainrule.classifiers.base import BaseClassifier, check_int_param, check_X, refusals_keep_fit
from chainrule.data.augment import FlipCrop
from chainrule.data.loader import DataLoader
from chainrule.data.splits import train_val_indices
from chainrule.data.whitening import ZCAWhiten
from chainrule.nn import functional as F
from chainrule.optim.schedules import run_schedule
from chainrule.train import BudgetSchedule, TimeBudget, Trainer, predict_scores

__all__ = ["NeuralNetClassifier"]
_PREDICT_CHUNK = 4096  # samples transformed and scored at a time in predict: bounds the float32 temporaries


class NeuralNetClassifier(InputSteps, BaseClassifier):
    """Base of the network estimators: the training settings below, a network from ``_build_network``.

    A leaf's ``__init__`` lists its architecture parameters and then these training settings (scikit-learn reads
    the parameters off the leaf's signature), storing each under its own name; ``MLPClassifier``'s docstring
    describes them all. The module docstring lists the extension points.

    Training settings: optimizer, lr, momentum, nesterov, weight_decay, batch_size, epochs, schedule,
    warmup_epochs, label_smoothing, clip_grad_norm, preprocessing, features, hog_cell, augment, test_time_flip,
    matmul_precision, early_stopping, validation_fraction, n_iter_no_change, tol, time_budget, eval_batch_size,
    random_state, verbose.

    Attributes (after ``fit``): ``model_`` (the trained ``chainrule.nn.Module``), ``features_`` and
    ``preprocessor_`` (fitted input steps, or None), ``loss_curve_``, ``validation_scores_``, ``best_epoch_``,
    ``n_iter_``, ``n_steps_``, ``fit_time_``, ``train_time_``, ``stop_reason_``, and ``BaseClassifier``'s.
    """

    has_training_curve = True
    _architecture_params: tuple[str, ...] = ()

    # ---- extension points (see the module docstring) ---------------------------------------------------------------

    def _build_network(self, sample_shape: tuple[int, ...], n_classes: int, random_state: int) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must define _build_network(sample_shape, n_classes, "
                                  "random_state)")

    def _validate_architecture(self) -> dict[str, Any]:
        return {}

    def _network_input(self, rows: np.ndarray) -> np.ndarray:
        return rows

    def _uses_batch_statistics(self, hp: dict[str, Any]) -> bool:
        return False

    def _network_meta(self) -> dict[str, Any]:
        return {"network_sample_shape": list(self._network_sample_shape())}

    def _network_from_meta(self, meta: dict[str, Any]) -> nn.Module:
        return self._build_network(tuple(meta["network_sample_shape"]), len(self.classes_), 0)

    # ---- hyperparameters -----------------------------------------------------------------------------------------

    def _validated(self) -> dict[str, Any]:
        return validated(self)  # chainrule.classifiers._network_params

    def _validate_params(self) -> None:
        self._validated()

    # ---- per-model facts ----------------------------------------------------------------------------------------

    def n_parameters(self) -> int:
        """Learned numbers in the network (weights, biases, normalisation parameters)."""
        self._check_is_fitted()
        return int(sum(p.data.size for p in self.model_.parameters()))

    def weight_images(self) -> tuple[np.ndarray, bool] | None:
        """(W (D, units), is_linear): the first layer's weights, one column per unit, over the raw input values
        (for pictures of what the units look for); None when the network sees computed features, or when its first
        layer does not weigh whole inputs. ``is_linear``: the network is that one layer (its columns are class
        templates)."""
        self._check_is_fitted()
        if self.features_ is not None:
            return None
        weighted = [m for m in self.model_.modules() if getattr(m, "weight", None) is not None]
        if not weighted or weighted[0].weight.data.ndim != 2 \
                or weighted[0].weight.data.shape[0] != self.n_features_in_:
            return None
        return weighted[0].weight.data, len(weighted) == 1

    def _network_sample_shape(self) -> tuple[int, ...]:
        """The shape of one network input: one zero sample through the fitted input steps."""
        probe = np.zeros((1, int(self.n_features_in_)), dtype=np.float32)
        return tuple(int(s) for s in self._network_input(self._inputs(probe)).shape[1:])

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
        """Validated (N, D) inputs -> the float32 model-input rows (N, D'), with the fitted steps."""
        return preprocess(self.preprocessor_, compute_features(self.features_, X, self.sample_shape_))

    def _network_inputs(self, X: np.ndarray) -> np.ndarray:
        """Validated (N, D) inputs -> what the network takes (N, *sample_shape)."""
        return self._network_input(self._inputs(X))

    def _batch_inputs(self, images: np.ndarray) -> np.ndarray:
        """Augmented training images (B, H, W[, C]) -> float32 network inputs (B, *sample_shape)."""
        if self._whiten_first():  # already whitened (then augmented): the model inputs as they are
            return self._network_input(np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.float32))
        return self._network_inputs(images.reshape(len(images), -1))

    def _image_shape(self) -> tuple[int, ...] | None:
        """The shape of one sample as an image, (H, W[, C]), for augmentation and test-time flips; None when the
        samples are not images. A leaf that takes flat rows with an ``image_shape`` overrides this."""
        return self.sample_shape_ if len(self.sample_shape_) in (2, 3) else None

    # ---- training -------------------------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, *, validation_data: tuple[Any, Any] | None = None, callbacks: Any = (),
            checkpoints: Any = None, checkpoint_every: int | None = None, resume: Any = None,
            diagnostics: bool = False) -> "NeuralNetClassifier":
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
        val = None if X_val is None else (self._network_inputs(X_val), y_val)
        self.model_ = self._new_network(model_seed)
        loader = self._loader(X, y_index, hp, loader_seed)
        del X
        optimizer = self._build_optimizer(hp)
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

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> "NeuralNetClassifier":
        """One epoch of minibatch updates on X, y, continuing the model and optimizer state of earlier calls (or of
        ``fit``). The first call (or one after a change of an architecture parameter (``_architecture_params``:
        for the MLP ``hidden_sizes``, ``activation``, ``norm``, ``dropout``) or of an input parameter: ``features``,
        ``hog_cell``, ``preprocessing``, ``augment``)
        initialises the model and fits the input steps on this X; ``classes`` lists every label when y might not hold
        them all. ``lr``, ``weight_decay``, ``momentum``, ``nesterov``, ``optimizer`` (a change starts a fresh
        optimizer state) and ``batch_size`` are read at every call; the learning rate is constant (``schedule``,
        ``warmup_epochs``, ``epochs``, ``time_budget`` and early stopping are fit's). Returns self."""
        start = time.perf_counter()
        hp = self._validated()
        state = getattr(self, "_partial", None)
        first = not hasattr(self, "model_") or (state is not None and state.arch != self._arch(hp))
        with refusals_keep_fit(not first):  # a later call's refused batch leaves the model as it was
            X = check_X(X, self, reset=first, keep_uint8=True)
            y_index = tr.partial_labels(self, y, len(X), classes, first)
        self._check_augment(hp)
        _, loader_seed, model_seed = tr.draw_seeds(self.random_state)
        if first:
            X = self._fit_inputs(X, hp, self._fit_input_steps(X, hp))
            self.model_ = self._new_network(model_seed)
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
        return (*(hp[name] for name in self._architecture_params), hp["features"], hp["hog_cell"],
                hp["preprocessing"], hp["augment"])

    def _check_augment(self, hp: dict[str, Any]) -> None:
        if self._image_shape() is not None:
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

    def _new_network(self, seed: int) -> nn.Module:
        """``_build_network`` for the fitted input steps and classes, its weights drawn from ``seed``."""
        return self._build_network(self._network_sample_shape(), len(self.classes_), seed)

    def _build_optimizer(self, hp: dict[str, Any]) -> Any:
        """The optimizer of ``fit`` over ``model_`` (decay on weight matrices and filters only)."""
        return tr.build_optimizer(hp["optimizer"], self.model_.parameters(), self._optimizer_options(hp))

    def _training_callbacks(self, hp: dict[str, Any], schedule: Any, total_steps: int) -> list[Any]:
        """Trainer callbacks of the leaf's own training tricks (e.g. ``Lookahead``); none by default."""
        return []

    def _augmentation(self, hp: dict[str, Any]) -> Any:
        """The ``DataLoader`` augmentation of the training images (``augment`` not False): flips, and with
        ``augment=True`` 4-pixel zero-padded random crops."""
        return FlipCrop(padding=4 if hp["augment"] is True else 0)

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
        own += self._training_callbacks(hp, schedule, total_steps)
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
        drop_last = self._uses_batch_statistics(hp) and n % batch == 1 and n > 1
        if hp["augment"] is False:
            return DataLoader(self._network_input(X), y_index, batch, shuffle=True, drop_last=drop_last, seed=seed)
        images = X.reshape(n, *self._image_shape())  # (N, H, W, C) or grayscale (N, H, W)
        return DataLoader(images, y_index, batch, shuffle=True, drop_last=drop_last, seed=seed,
                          augment=self._augmentation(hp), transform=self._batch_inputs)

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
        scores = predict_scores(self.model_, self._network_inputs(X), batch)
        if flip:
            mirrored = mirror_rows(X, self._image_shape(), type(self).__name__)
            scores += predict_scores(self.model_, self._network_inputs(mirrored), batch)
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
        preprocessing (standardisation, mean image, ZCA) -> ``_network_input`` -> the network -> scores (N, C),
        wrapped by ``_prediction_module`` (a leaf's test-time augmentation); what ``chainrule.onnx.export`` writes.
        Shares ``model_``. Refused for features='hog_color' (NumPy code outside the graph)."""
        from chainrule.classifiers._input_module import input_module

        self._check_is_fitted()
        return self._prediction_module(nn.Sequential(input_module(self, self._network_input), self.model_)).eval()

    def _prediction_module(self, pipeline: nn.Module) -> nn.Module:
        """``pipeline`` (raw rows -> scores) as prediction uses it; test_time_flip is refused here (a leaf whose
        test-time augmentation is a graph, such as the conv net's, overrides this)."""
        if check_flag(self, "test_time_flip"):
            raise ValueError(f"{type(self).__name__} with test_time_flip=True averages the scores of each image and "
                             "its mirror image, which as_module() (one pass) does not compute; set "
                             "test_time_flip=False to export it")
        return pipeline

    # ---- persistence ----------------------------------------------------------------------------------------------

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = self._input_state()  # "features", "preprocessor", preprocessor.*
        arrays.update({f"model.{k}": v for k, v in self.model_.state_dict().items()})
        meta.update(self._network_meta())
        meta.update({
            "loss_curve": list(self.loss_curve_), "validation_scores": self.validation_scores_,
            "best_epoch": self.best_epoch_, "n_iter": self.n_iter_, "n_steps": self.n_steps_,
            "fit_time": self.fit_time_, "train_time": self.train_time_, "stop_reason": self.stop_reason_,
        })
        return meta, arrays

    def _set_weights(self, weights: dict[str, np.ndarray], history: dict[str, Any]) -> None:
        """model_ from a checkpoint's weights and the learned attributes from its history (labels and input steps
        are already restored: ``chainrule.classifiers._training.restore_fitted``)."""
        self._validated()
        self.model_ = self._new_network(0)
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
        self._set_input_state(meta, arrays)
        self.model_ = self._network_from_meta(meta)
        self.model_.load_state_dict({k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")})
        self.model_.eval()
        self.loss_curve_ = [float(v) for v in meta["loss_curve"]]
        self.validation_scores_ = meta["validation_scores"]
        self.best_epoch_, self.n_iter_, self.n_steps_ = meta["best_epoch"], meta["n_iter"], meta["n_steps"]
        self.fit_time_, self.train_time_, self.stop_reason_ = meta["fit_time"], meta["train_time"], meta["stop_reason"]


class _EpochPrinter:
    """Trainer callback (``verbose=True``): one line per epoch."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        r = trainer.history.epochs[-1]
        val = f"  val_acc {r['val_acc']:.4f}" if r.get("val_acc") is not None else ""
        print(f"epoch {r['epoch']}/{trainer.epochs}  loss {r['train_loss']:.4f}  train_acc {r['train_acc']:.4f}"
              f"{val}  lr {r['lr']:.3g}  {r['time_s']:.1f}s", flush=True)
