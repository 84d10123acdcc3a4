"""Exact resume for ``Trainer``: its whole state as a dict of JSON-able values and NumPy arrays, and back.

``trainer_state(trainer)`` holds everything the rest of a run depends on: the parameters training has reached
(also after ``fit`` put the best ones into the model, with ``restore_best``), the best parameters, the optimizer's
and the schedule's state, the loader's position inside the epoch, every random generator's state (the model's
dropout generators, NumPy's and Python's global ones), the state of every callback that has a ``state_dict``
(e.g. ``TimeBudget``'s time used), the history, the counters, the running totals of the current epoch, and the
caller's config and metadata. (Augmentation draws from generators the data loader derives from its seed, epoch and
batch index, so the loader's position restores it.) ``load_trainer_state(trainer, state)`` puts it
into a freshly built trainer, which then continues bit for bit as if never interrupted.
"""

from __future__ import annotations

import inspect
import math
import random
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - types only
    from chainrule.train.trainer import Trainer

STATE_KIND = "chainrule.Trainer"


class EpochTotals:
    """Running sums over the current epoch (saved in checkpoints, so a resumed epoch reports the whole epoch)."""

    def __init__(self, steps: int = 0, samples: int = 0, loss_sum: float = 0.0, correct: int = 0,
                 time_s: float = 0.0):
        self.steps, self.samples, self.loss_sum, self.correct, self.time_s = steps, samples, loss_sum, correct, time_s

    def add(self, loss: float, samples: int, correct: int, seconds: float) -> None:
        self.steps += 1
        self.samples += samples
        self.loss_sum += loss
        self.correct += correct
        self.time_s += seconds

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "samples": self.samples, "loss_sum": self.loss_sum, "correct": self.correct,
                "time_s": self.time_s}


def trainer_state(t: Trainer) -> dict[str, Any]:
    """Everything needed to continue ``t``'s run exactly (see the module docstring)."""
    return {
        "kind": STATE_KIND,
        "config": dict(t.config),
        "metadata": dict(t.metadata),
        "model": t.training_weights(),
        "best_model": t.best_state,
        "optimizer": t.optimizer.state_dict(),
        "schedule": t.schedule.state_dict() if t.schedule is not None else None,
        "loader": t.train_loader.state_dict() if hasattr(t.train_loader, "state_dict") else None,
        "callbacks": {type(cb).__name__: cb.state_dict() for cb in t.callbacks if hasattr(cb, "state_dict")},
        "rng": {
            "model": t.model.rng_states() if hasattr(t.model, "rng_states") else {},
            "numpy_global": np.random.get_state(),
            "python": random.getstate(),
        },
        "history": t.history.state_dict(),
        "counters": {
            "step": t.step, "epoch": t.epoch, "best_val_acc": _finite_or_none(t.best_val_acc),
            "best_epoch": t.best_epoch, "bad_epochs": t.bad_epochs, "train_time_s": t.train_time_s,
            "samples_seen": t.samples_seen, "stop_reason": t.stop_reason,
            "epoch_totals": t.epoch_totals.as_dict(), "update_ratios": t.update_ratios.state_dict(),
        },
    }


def load_trainer_state(t: Trainer, state: Mapping[str, Any], extend: bool = False) -> None:
    """Restore a ``trainer_state`` (e.g. ``load_checkpoint(path)``) into the freshly built trainer ``t``; with
    ``extend`` the schedule keeps its own hyperparameters (a longer run), else they must match the checkpoint's."""
    if state.get("kind") != STATE_KIND:
        raise ValueError(f"not a trainer checkpoint: its kind is {state.get('kind')!r}, expected {STATE_KIND!r}")
    t.model.load_state_dict(state["model"])
    t.optimizer.load_state_dict(state["optimizer"])
    if (state.get("schedule") is None) != (t.schedule is None):
        raise ValueError("the checkpoint and this trainer disagree on having a learning-rate schedule")
    if t.schedule is not None:
        if extend and "strict" in inspect.signature(t.schedule.load_state_dict).parameters:
            t.schedule.load_state_dict(state["schedule"], strict=False)
        else:
            t.schedule.load_state_dict(state["schedule"])
    if state.get("loader") is not None:
        t.train_loader.load_state_dict(state["loader"])
    saved_callbacks = state.get("callbacks") or {}
    for cb in t.callbacks:
        if hasattr(cb, "load_state_dict") and type(cb).__name__ in saved_callbacks:
            cb.load_state_dict(saved_callbacks[type(cb).__name__])
    rng = state["rng"]
    if hasattr(t.model, "load_rng_states"):
        t.model.load_rng_states(rng["model"])
    np.random.set_state(rng["numpy_global"])
    python_state = rng["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    t.history.load_state_dict(state["history"])
    t.best_state = dict(state["best_model"]) if state.get("best_model") is not None else None
    c = state["counters"]
    t.step, t.epoch = int(c["step"]), int(c["epoch"])
    t.best_val_acc = -math.inf if c["best_val_acc"] is None else float(c["best_val_acc"])
    t.best_epoch, t.bad_epochs = int(c["best_epoch"]), int(c["bad_epochs"])
    t.train_time_s, t.samples_seen = float(c["train_time_s"]), int(c["samples_seen"])
    t.stop_reason = c["stop_reason"]  # only early stopping is checkpointed as final
    t.stop_training = t.stop_reason is not None
    t.epoch_totals = EpochTotals(**c["epoch_totals"])
    t.update_ratios.load_state_dict(c.get("update_ratios"))  # (absent in checkpoints from before it existed)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
