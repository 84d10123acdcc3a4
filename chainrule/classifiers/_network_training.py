"""How a ``NeuralNetClassifier`` trains: ``fit`` and ``partial_fit`` and the pieces they assemble -- the validation
split, the minibatch loader (augmentation included), the optimizer, the schedule and time budget, the one
``chainrule.train.Trainer`` with the run-folder hooks, and the learned attributes taken from it. A mixin of
``NeuralNetClassifier`` (``chainrule.classifiers.network``, whose module docstring describes training and the
extension points these methods call).
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule import backend, nn
from chainrule.classifiers import _training as tr
from chainrule.classifiers._network_params import MATMUL_PRECISIONS, matmul_precision
from chainrule.classifiers.base import check_X
from chainrule.data.augment import FlipCrop
from chainrule.data.loader import DataLoader
from chainrule.data.splits import train_val_indices
from chainrule.nn import functional as F
from chainrule.optim.schedules import run_schedule
from chainrule.train import BudgetSchedule, TimeBudget, Trainer, predict_scores

if TYPE_CHECKING:  # pragma: no cover - types only
    from chainrule.classifiers.network import NeuralNetClassifier

__all__ = ["NetworkTraining"]


class NetworkTraining:
    """``fit``, ``partial_fit`` and their parts, for ``NeuralNetClassifier`` (which supplies the network, the input
    steps and the hyperparameters: ``_validated``, ``_new_network``, ``_fit_inputs``, ``_network_input``, ...)."""

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
        first, state, X, y_index = tr.partial_fit_data(self, X, y, classes, hp, "model_")
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


class _EpochPrinter:
    """Trainer callback (``verbose=True``): one line per epoch."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        r = trainer.history.epochs[-1]
        val = f"  val_acc {r['val_acc']:.4f}" if r.get("val_acc") is not None else ""
        print(f"epoch {r['epoch']}/{trainer.epochs}  loss {r['train_loss']:.4f}  train_acc {r['train_acc']:.4f}"
              f"{val}  lr {r['lr']:.3g}  {r['time_s']:.1f}s", flush=True)
