"""``Trainer``: minibatch training of a ``chainrule.nn`` model, readable top to bottom (CS231n's Solver, nanoGPT).

    trainer = Trainer(model, F.cross_entropy, optim.Adam(model.parameters(), lr=1e-3), loader,
                      val_data=(X_val, y_val), epochs=10)
    history = trainer.fit()

One step: forward the batch, loss (+ optional regulariser), backward (or, with ``loss_and_grad``, one fused function
that computes the loss and sets every gradient: the linear classifiers' NumPy step), check the loss and gradients
are finite, clip, optimizer step, schedule step, record loss / lr / gradient norm. One epoch: steps over the loader, then
train and validation accuracy, best-parameter tracking, early stopping, optional diagnostics, a checkpoint.

Exact resume: ``state_dict()`` holds everything the rest of the run depends on (parameters, optimizer and
schedule state, the loader's position inside the epoch, every random generator's state, the history, counters
and the caller's config; ``chainrule.train.resume``), so ``Trainer(...).load_state_dict(state); fit()`` in a fresh
process continues bit for bit as if never interrupted. With a ``CheckpointManager`` the trainer saves that state
every ``checkpoint_every`` steps, at the end of every epoch, and where a callback stops it inside an epoch.

Callbacks are plain objects with any of ``on_train_begin``, ``on_epoch_begin``, ``on_step_end``,
``on_epoch_end``, ``on_train_end`` (each called with the trainer); setting ``trainer.stop_training = True``
from one ends training after the current step.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from chainrule.function import no_grad
from chainrule.optim.schedules import ReduceOnPlateau
from chainrule.tensor import Tensor
from chainrule.train import diagnostics as diag
from chainrule.train.checkpoint import CheckpointManager
from chainrule.train.evaluation import num_correct, predict_scores
from chainrule.optim.clip import clip_grads_with_norm, total_grad_norm
from chainrule.train.grads import first_non_finite, first_non_finite_state, input_hint, squares_may_overflow
from chainrule.train.history import History
from chainrule.train.resume import STATE_KIND, EpochTotals, load_trainer_state, trainer_state
from chainrule.train.stopping import CALLBACK_MESSAGE, StopReason

logger = logging.getLogger("chainrule.train")

NAN_POLICIES = ("raise", "stop")

__all__ = ["Trainer", "NonFiniteError", "predict_scores", "NAN_POLICIES", "STATE_KIND"]


class NonFiniteError(FloatingPointError):
    """The loss or a gradient became nan/inf (``nan_policy="raise"``); the message names the step and parameter."""


class Trainer:
    """Train ``model`` on batches from ``train_loader`` to minimise ``loss(model(x), y)``.

    Args:
        model: a ``chainrule.nn.Module`` mapping a Tensor (N, D) to scores (N, C).
        loss: ``loss(scores, y) -> Tensor`` scalar, e.g. ``chainrule.nn.functional.cross_entropy``.
        optimizer: a ``chainrule.optim`` optimizer over the model's parameters.
        train_loader: iterable of (x (B, D) float32, y (B,) int64) batches, one pass per epoch, with ``len()``
            (batches per epoch) and ``state_dict()`` / ``load_state_dict()`` for exact resume; iterating after a
            ``load_state_dict`` continues inside the saved epoch (``chainrule.data.DataLoader``).
        schedule: optional ``chainrule.optim.schedules`` scheduler built over ``optimizer``; stepped once per
            optimizer step or per epoch according to its ``interval``.
        val_data: optional (X_val, y_val): validation accuracy and loss each epoch; the parameters with the best
            validation accuracy are kept (``best_state``) and restored at the end if ``restore_best``.
        train_eval_data: optional (X, y) subset of the training set on which train accuracy is measured each
            epoch in evaluation mode (CS231n's Solver uses 1,000 samples); without it, train accuracy is the
            running accuracy of the epoch's minibatches (in training mode).
        epochs: number of passes over the training data.
        regularizer: optional ``regularizer(model) -> Tensor`` added to the loss (e.g. reg * sum W^2).
        loss_and_grad: optional ``loss_and_grad(model, x, y) -> (loss, correct)`` that computes the training loss
            of a batch (regularisation included) and how many of its samples the model classifies right, and sets
            the ``.grad`` of every parameter itself, replacing
            forward + ``loss`` + backward in training steps (``loss`` still scores validation data). The linear
            classifiers' fused NumPy loss-and-gradient runs this way.
        max_steps: end training (complete, not paused) after this many optimizer steps, inside an epoch if need
            be; None: after ``epochs``.
        clip_grad_norm: rescale gradients to this joint norm when it is exceeded (``chainrule.optim.clip``).
        nan_policy: "raise" (``NonFiniteError``) or "stop" (log it and end training with the parameters of the
            last finite step) when the loss or a gradient is not finite.
        early_stopping_patience: stop after this many epochs without a validation-accuracy gain of more than
            ``min_delta``.
        diagnostics: record per-parameter norms / update ratios and activation statistics every epoch.
        checkpoints, checkpoint_every: save the full state every ``checkpoint_every`` steps (and at every
            epoch end) with this ``CheckpointManager``; ``best.npz`` whenever validation accuracy improves.
        config: JSON-able dict stored in every checkpoint (the resolved run configuration).
        metadata: anything else the caller needs back from a checkpoint (arrays allowed: preprocessing state,
            class names, how to rebuild the model), stored verbatim.
        callbacks: objects with the hooks listed in the module docstring.
    """

    def __init__(
        self,
        model: Any,
        loss: Callable[[Tensor, np.ndarray], Tensor],
        optimizer: Any,
        train_loader: Iterable[tuple[np.ndarray, np.ndarray]],
        *,
        schedule: Any = None,
        val_data: tuple[np.ndarray, np.ndarray] | None = None,
        train_eval_data: tuple[np.ndarray, np.ndarray] | None = None,
        epochs: int = 10,
        regularizer: Callable[[Any], Tensor] | None = None,
        loss_and_grad: Callable[[Any, np.ndarray, np.ndarray], tuple[float, int]] | None = None,
        max_steps: int | None = None,
        clip_grad_norm: float | None = None,
        nan_policy: str = "raise",
        early_stopping_patience: int | None = None,
        min_delta: float = 0.0,
        restore_best: bool = True,
        eval_batch_size: int = 1024,
        diagnostics: bool = False,
        checkpoints: CheckpointManager | None = None,
        checkpoint_every: int | None = None,
        config: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        callbacks: Sequence[Any] = (),
    ):
        if nan_policy not in NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {list(NAN_POLICIES)}, got {nan_policy!r}")
        _check_int("epochs", epochs, low=1)
        _check_int("eval_batch_size", eval_batch_size, low=1)
        if early_stopping_patience is not None:
            _check_int("early_stopping_patience", early_stopping_patience, low=1)
            if val_data is None:
                raise ValueError("early_stopping_patience needs val_data: early stopping watches validation accuracy")
        if checkpoint_every is not None:
            _check_int("checkpoint_every", checkpoint_every, low=1)
        if max_steps is not None:
            _check_int("max_steps", max_steps, low=1)
        if clip_grad_norm is not None and not (clip_grad_norm > 0 and math.isfinite(clip_grad_norm)):
            raise ValueError(f"clip_grad_norm must be a finite number > 0 (or None), got {clip_grad_norm!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.train_loader = train_loader
        self.schedule = schedule
        self.val_data = val_data
        self.train_eval_data = train_eval_data
        self.epochs = epochs
        self.regularizer = regularizer
        self.loss_and_grad = loss_and_grad
        self.max_steps = max_steps
        self.clip_grad_norm = clip_grad_norm
        self.nan_policy = nan_policy
        self.early_stopping_patience = early_stopping_patience
        self.min_delta = float(min_delta)
        self.restore_best = restore_best
        self.eval_batch_size = eval_batch_size
        self.diagnostics = diagnostics
        self.checkpoints = checkpoints
        self.checkpoint_every = checkpoint_every
        self.config = dict(config or {})
        self.metadata = dict(metadata or {})
        self.callbacks = list(callbacks)

        self.named_params = list(model.named_parameters())
        self.params = [p for _, p in self.named_params]
        self.history = History()
        self.step = 0                      # optimizer steps done
        self.epoch = 0                     # epochs completed
        self.best_val_acc = -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, np.ndarray] | None = None
        self.bad_epochs = 0                # epochs since the last improvement of more than min_delta
        self.stop_training = False
        self.stop: StopReason | None = None      # why training stopped early (chainrule.train.stopping) ...
        self.stop_message: str | None = None    # ... and the words for it
        self.train_time_s = 0.0            # time spent in training steps, over all sessions
        self.samples_seen = 0
        self.epoch_totals = EpochTotals()  # running totals of the current (possibly resumed) epoch
        self._training_state: dict[str, np.ndarray] | None = None  # set while the model holds the restored best
        self._steps_per_epoch = 0
        self.update_ratios = diag.UpdateRatios()  # this epoch's update/weight ratios (with diagnostics)
        self.last_diagnostics: dict[str, Any] | None = None

    # ---- the loop ------------------------------------------------------------------------------------------

    def fit(self) -> History:
        """Train until ``epochs`` are done, early stopping, a non-finite value (``nan_policy="stop"``) or a
        callback sets ``stop_training``. Returns the history. Can be called again after ``load_state_dict``, or
        after a callback stopped it, to go on.

        With ``restore_best`` the model ends with the weights of the best *validated* epoch (``best_epoch``,
        1-based into ``history.epochs``, scored ``best_val_acc``); the weights training reached are kept aside
        (``training_weights()``, saved by ``state_dict()``) and the next ``fit()`` continues from them. An epoch
        cut short by a callback (e.g. ``TimeBudget``) is never validated: it has no ``history.epochs`` record
        (its steps are in ``history.steps``), and its weights stay in the model only when no epoch has been
        validated yet (``best_epoch == 0``, ``best_state`` None).
        """
        if self.stop is StopReason.CALLBACK:  # a callback paused the run; fit() again continues it
            self.stop_training = False
            self._stopped(None)
        if self._training_state is not None:  # the model holds the restored best weights: continue from the others
            self.model.load_state_dict(self._training_state)
            self._training_state = None
        self._call("on_train_begin")
        steps_per_epoch = self._steps_per_epoch = len(self.train_loader)
        while self.epoch < self.epochs and not self.stop_training and not self.reached_max_steps:
            self._call("on_epoch_begin")
            self.model.train()
            if self.epoch_totals.steps < steps_per_epoch:  # (a run resumed at the end of an epoch has none left)
                for xb, yb in self.train_loader:
                    self._train_step(xb, yb)
                    if self.stop is not None:  # a non-finite loss or gradient under nan_policy="stop"
                        break
                    self._call("on_step_end")
                    if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                        self.save_checkpoint()
                    if self.stop_training or self.reached_max_steps:
                        break
            if self.epoch_totals.steps < steps_per_epoch:  # stopped inside the epoch
                if self.stop is None:  # by a callback or max_steps: keep a checkpoint to continue from
                    self.save_checkpoint()
                break
            self._end_epoch()
        if self.stop_training and self.stop is None:
            self._stopped(StopReason.CALLBACK, CALLBACK_MESSAGE)
        if self.restore_best and self.best_state is not None:
            self._training_state = self.model.state_dict()
            self.model.load_state_dict(self.best_state)
        self._call("on_train_end")
        return self.history

    def _train_step(self, xb: np.ndarray, yb: np.ndarray) -> None:
        t0 = time.perf_counter()
        lr = float(self.optimizer.param_groups[0]["lr"])
        # Overflow / invalid operations end up as inf or nan in the loss or a gradient, which are checked and
        # reported below (naming the step and parameter), so NumPy's own floating-point warnings are muted here.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.loss_and_grad is not None:
                self.optimizer.zero_grad()
                loss_value, correct = self.loss_and_grad(self.model, xb, yb)
                loss_value = float(loss_value)
                if not math.isfinite(loss_value):
                    return self._non_finite(f"the loss is {loss_value}" + input_hint(xb), lr)
            else:
                scores = self.model(Tensor(xb))
                loss = self.loss(scores, yb)
                if self.regularizer is not None:
                    loss = loss + self.regularizer(self.model)
                loss_value = float(loss.data)
                if not math.isfinite(loss_value):
                    return self._non_finite(f"the loss is {loss_value}" + input_hint(xb), lr)
                self.optimizer.zero_grad()
                loss.backward()
                correct = num_correct(scores.data, yb)
            norm = total_grad_norm(self.params)
        if not math.isfinite(norm):
            name = first_non_finite(self.named_params)
            return self._non_finite(f"the gradient of parameter {name!r} is not finite (loss {loss_value:.6g})", lr)
        if self.clip_grad_norm is not None and norm > self.clip_grad_norm:
            clip_grads_with_norm(self.params, self.clip_grad_norm, norm)
        if self.diagnostics:  # update/weight ratios on a sample of the epoch's steps (diagnostics.UpdateRatios)
            self.update_ratios.before_step(self.epoch_totals.steps, self._steps_per_epoch, self.named_params)
        # A gradient this large can overflow the optimizer's squared-gradient state (grads.py): keep what the step
        # changes, so that a broken state is undone and reported like a non-finite loss.
        before = None
        if squares_may_overflow(min(norm, self.clip_grad_norm or math.inf), self.params):
            before = ([p.data.copy() for p in self.params], self.optimizer.state_dict())
        with np.errstate(over="ignore", invalid="ignore") if before is not None else contextlib.nullcontext():
            self.optimizer.step()
        if before is not None and (broken := first_non_finite_state(self.optimizer, self.named_params)):
            for p, data in zip(self.params, before[0]):
                np.copyto(p.data, data)
            self.optimizer.load_state_dict(before[1])
            return self._non_finite(f"the optimizer's state {broken} overflowed: the gradient (norm {norm:.3g}) is "
                                    f"too large to square in {self.params[0].data.dtype}" + input_hint(xb), lr)
        if self.diagnostics:
            self.update_ratios.after_step(self.named_params)
        if self.schedule is not None and getattr(self.schedule, "interval", "step") == "step":
            self.schedule.step()
        self.step += 1
        self.history.log_step(self.step, self.epoch + 1, loss_value, lr, norm)
        self.epoch_totals.add(loss_value, len(yb), int(correct), time.perf_counter() - t0)

    def _end_epoch(self) -> None:
        e = self.epoch_totals
        self.epoch += 1
        self.train_time_s += e.time_s
        self.samples_seen += e.samples
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "step": self.step,
            "train_loss": e.loss_sum / max(e.steps, 1),
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "time_s": self.train_time_s,
            "samples_per_s": e.samples / e.time_s if e.time_s > 0 else None,
        }
        if self.train_eval_data is not None:
            record["train_acc"] = self.evaluate(*self.train_eval_data)["accuracy"]
        else:
            record["train_acc"] = e.correct / max(e.samples, 1)
        improved = False
        if self.val_data is not None:
            val = self.evaluate(*self.val_data)
            record["val_acc"], record["val_loss"] = val["accuracy"], val["loss"]
            if val["accuracy"] > self.best_val_acc:
                improved = True
                self.best_val_acc, self.best_epoch = val["accuracy"], self.epoch
                self.best_state = self.model.state_dict()
            if self.early_stopping_patience is not None:
                gained = val["accuracy"] - self._patience_reference()
                self.bad_epochs = 0 if gained > self.min_delta else self.bad_epochs + 1
                if self.bad_epochs >= self.early_stopping_patience:
                    self.stop_training = True
                    self._stopped(StopReason.EARLY_STOPPING, f"early stopping: no validation-accuracy gain above "
                                  f"{self.min_delta:g} for {self.bad_epochs} epoch(s)")
        if self.schedule is not None and getattr(self.schedule, "interval", "step") == "epoch":
            if isinstance(self.schedule, ReduceOnPlateau):  # steps on a validation metric
                metric = record.get("val_acc" if self.schedule.mode == "max" else "val_loss")
                self.schedule.step(record["train_loss"] if metric is None else metric)
            else:
                self.schedule.step()
        if self.diagnostics:
            record["diagnostics"] = self.last_diagnostics = self._diagnose()
        self.history.log_epoch(record)
        self.epoch_totals = EpochTotals()
        logger.info(_epoch_line(record, self.epochs))
        self._call("on_epoch_end")
        if self.checkpoints is not None:
            self.save_checkpoint(is_best=improved)

    def _patience_reference(self) -> float:
        """Best validation accuracy before this epoch (the bar an epoch has to beat by min_delta)."""
        past = [r["val_acc"] for r in self.history.epochs if r.get("val_acc") is not None]
        return max(past, default=-math.inf)

    @property
    def reached_max_steps(self) -> bool:
        return self.max_steps is not None and self.step >= self.max_steps

    @property
    def finished(self) -> bool:
        """True when the run is complete: every epoch (or ``max_steps``) done, or stopped early for good (early
        stopping, a non-finite value), as opposed to paused by a callback or not begun."""
        return self.epoch >= self.epochs or self.reached_max_steps or (self.stop is not None and self.stop.final)

    @property
    def stop_reason(self) -> str | None:
        """Why training stopped before its end, in words (None: it did not); the kind is ``stop``."""
        return self.stop_message

    def _stopped(self, kind: StopReason | None, message: str | None = None) -> None:
        self.stop, self.stop_message = kind, message

    @property
    def epoch_step(self) -> int:
        """Optimizer steps done in the current epoch (a resumed run counts the ones before the checkpoint)."""
        return self.epoch_totals.steps

    # ---- pieces of a step ----------------------------------------------------------------------------------

    def _non_finite(self, what: str, lr: float) -> None:
        message = (f"step {self.step + 1} (epoch {self.epoch + 1}): {what}; the parameters are left as they were "
                   f"after step {self.step}. Lower the learning rate (now {lr:g}), clip gradients, or check the data")
        self.optimizer.zero_grad()
        if self.nan_policy == "raise":
            raise NonFiniteError(message)
        logger.warning("stopping: %s", message)
        self.stop_training = True
        self._stopped(StopReason.NON_FINITE, f"non-finite: {message}")

    def _diagnose(self) -> dict[str, Any]:
        lr = float(self.optimizer.param_groups[0]["lr"])
        out: dict[str, Any] = {"parameters": self.update_ratios.rows(self.named_params, lr), "activations": []}
        probe = self.val_data or self.train_eval_data
        if probe is not None:
            self.model.eval()
            out["activations"] = diag.activation_stats(self.model, np.asarray(probe[0][:256]))
            self.model.train()
        lrs = self.history.steps["lr"]
        decayed = bool(lrs) and lrs[-1] < 0.5 * max(lrs)
        for w in diag.warnings_for(out, lr_decayed=decayed, epoch=self.epoch, step=self.step):
            logger.warning("diagnostics, epoch %d: %s", self.epoch, w)
        self.update_ratios.reset()
        return out

    # ---- evaluation ----------------------------------------------------------------------------------------

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Accuracy and mean loss of the model on (X, y), in evaluation mode and batches (mode restored)."""
        was_training = getattr(self.model, "training", True)
        scores = predict_scores(self.model, X, self.eval_batch_size)
        if was_training:
            self.model.train()
        with no_grad():
            loss = float(self.loss(Tensor(scores), np.asarray(y)).data)
        return {"accuracy": float(np.mean(scores.argmax(axis=1) == y)), "loss": loss}

    # ---- checkpoints ---------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly (a dict of JSON-able values and NumPy arrays): the
        parameters training has reached, not the restored best ones (``chainrule.train.resume``)."""
        return trainer_state(self)

    def load_state_dict(self, state: Mapping[str, Any], extend: bool = False) -> None:
        """Restore a ``state_dict()`` (e.g. ``load_checkpoint(path)``) into this freshly built trainer.

        ``extend=True`` continues the run with this trainer's own length (``epochs`` / ``max_steps``) and schedule
        hyperparameters where they differ from the checkpoint's: the schedule is this one, at the step reached (a
        cosine over more epochs then continues on the longer curve from that step)."""
        load_trainer_state(self, state, extend=extend)
        self._training_state = None

    def training_weights(self) -> dict[str, np.ndarray]:
        """A copy of the parameters training has reached: the model's own, except after a ``fit`` that put the best
        validated ones into the model (``restore_best``), which keeps these aside to continue from."""
        if self._training_state is not None:
            return {k: v.copy() for k, v in self._training_state.items()}
        return self.model.state_dict()

    def save_checkpoint(self, is_best: bool = False) -> None:
        if self.checkpoints is not None:
            path = self.checkpoints.save(self.state_dict(), self.step, is_best=is_best)
            logger.debug("saved checkpoint %s", path)

    # ---- callbacks -----------------------------------------------------------------------------------------

    def _call(self, hook: str) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self)


# ---- helpers -----------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _epoch_line(r: Mapping[str, Any], epochs: int) -> str:
    parts = [f"epoch {r['epoch']}/{epochs}", f"step {r['step']}", f"loss {r['train_loss']:.4f}",
             f"train_acc {r['train_acc']:.4f}"]
    if r.get("val_acc") is not None:
        parts.append(f"val_acc {r['val_acc']:.4f}")
    parts.append(f"lr {r['lr']:.3g}")
    if r.get("samples_per_s"):
        parts.append(f"{r['samples_per_s']:.0f} samples/s")
    return "  ".join(parts)
