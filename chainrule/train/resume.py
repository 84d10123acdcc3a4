"""Exact resume for ``Trainer``: its whole state as a dict of JSON-able values and NumPy arrays, and back.

``trainer_state(trainer)`` holds everything the rest of a run depends on: the parameters training has reached
(also after ``fit`` put the best ones into the model, with ``restore_best``), the best parameters, the optimizer's
and the schedule's state, the loader's position inside the epoch, every random generator's state (the model's
dropout generators, NumPy's and Python's global ones), the state of every callback that has a ``state_dict``
(e.g. ``TimeBudget``'s time used), the history, the counters, the running totals of the current epoch, and the
caller's config and metadata. (Augmentation draws from generators the data loader derives from its seed, epoch and
batch index, so the loader's position restores it.) ``load_trainer_state(trainer, state)`` puts it
into a freshly built trainer, which then continues bit for bit as if never interrupted.

A state read from a file is checked before any of it is used (``check_trainer_state``): counters are integers in
range and agree with the history (the number of epoch records, the number of step rows), weights and optimizer
moments are finite floating-point arrays, and ``load_trainer_state`` refuses arrays whose dtype or shape differs
from the freshly built model's and optimizer's (no silent cast of int8 "weights").
"""

from __future__ import annotations

import inspect
import math
import random
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from chainrule.train.stopping import StopReason

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
            "samples_seen": t.samples_seen, "stop_reason": t.stop_message,
            "stop_kind": None if t.stop is None else t.stop.value,
            "epoch_totals": t.epoch_totals.as_dict(), "update_ratios": t.update_ratios.state_dict(),
        },
    }


_MAX_COUNT = 2**53  # counters beyond this are not steps anyone trained


def check_trainer_state(state: Mapping[str, Any]) -> None:
    """Raise ValueError (saying which entry and why) unless ``state`` looks like a ``trainer_state``: the kind, the
    counters (integers >= 0, in range, consistent with each other and with the history), the weights and optimizer
    arrays (finite floating-point). ``chainrule.train.load_checkpoint(path, validate=check_trainer_state)``."""
    if state.get("kind") != STATE_KIND:
        raise ValueError(f"not a trainer checkpoint: its kind is {state.get('kind')!r}, expected {STATE_KIND!r}")
    for key in ("model", "optimizer", "rng", "history", "counters"):
        if not isinstance(state.get(key), Mapping):
            raise ValueError(f"the checkpoint lacks its {key!r} entry (or it is not a table)")
    c = state["counters"]
    step, epoch = _count(c, "step"), _count(c, "epoch")
    for name in ("best_epoch", "bad_epochs"):
        if _count(c, name) > epoch:
            raise ValueError(f"counters.{name} is {c[name]}, more than the {epoch} epoch(s) completed")
    _count(c, "samples_seen")
    if epoch > step:
        raise ValueError(f"counters.epoch is {epoch} but counters.step is {step}: every epoch takes at least one step")
    _seconds(c, "train_time_s")
    if c.get("best_val_acc") is not None and not (_real(c["best_val_acc"]) and 0 <= c["best_val_acc"] <= 1):
        raise ValueError(f"counters.best_val_acc must be an accuracy in [0, 1] or none, got {c['best_val_acc']!r}")
    kinds = [k.value for k in StopReason]
    if c.get("stop_kind") is not None and c["stop_kind"] not in kinds:
        raise ValueError(f"counters.stop_kind must be one of {kinds} or none, got {c['stop_kind']!r}")
    if c.get("stop_reason") is not None and not isinstance(c["stop_reason"], str):
        raise ValueError(f"counters.stop_reason must be a message or none, got {c['stop_reason']!r}")
    totals = c.get("epoch_totals")
    if not isinstance(totals, Mapping) or set(totals) != {"steps", "samples", "loss_sum", "correct", "time_s"}:
        raise ValueError(f"counters.epoch_totals is malformed: {totals!r}")
    if _count(totals, "steps", "counters.epoch_totals") > step or \
            _count(totals, "correct", "counters.epoch_totals") > _count(totals, "samples", "counters.epoch_totals"):
        raise ValueError(f"counters.epoch_totals is out of range: {dict(totals)}")
    _seconds(totals, "time_s", "counters.epoch_totals")
    if not (_real(totals["loss_sum"]) and math.isfinite(totals["loss_sum"])):
        raise ValueError(f"counters.epoch_totals.loss_sum must be a finite number, got {totals['loss_sum']!r}")
    history = state["history"]
    steps = history.get("steps") if isinstance(history, Mapping) else None
    if not isinstance(steps, Mapping) or not isinstance(steps.get("step"), np.ndarray):
        raise ValueError("the checkpoint's history has no step column")
    if len(steps["step"]) != step:
        raise ValueError(f"counters.step is {step} but the history records {len(steps['step'])} steps")
    if len(steps["step"]) and (steps["step"].dtype.kind not in "iu" or int(steps["step"][-1]) != step):
        raise ValueError(f"counters.step is {step} but the history's last step is {steps['step'][-1]!r}")
    if "epochs_json" in history:
        import json

        try:
            n_epochs = len(json.loads(history["epochs_json"]))
        except (TypeError, ValueError) as e:
            raise ValueError(f"the history's epoch records are not valid JSON ({e})") from None
        if n_epochs != epoch:
            raise ValueError(f"counters.epoch is {epoch} but the history records {n_epochs} epoch(s)")
    for where, arrays in (("model", state["model"]), ("best_model", state.get("best_model") or {}),
                          ("optimizer state", state["optimizer"].get("state") or {})):
        for key, a in arrays.items():
            if where == "optimizer state" and str(key).endswith(".step"):
                continue  # a step count (an integer scalar), checked by the optimizer
            if where != "optimizer state" and isinstance(a, np.ndarray) and a.dtype.kind in "iu" and a.ndim == 0:
                # an integer buffer is a count, a scalar (batch norm's num_batches_tracked); an integer array is a
                # weight that lost its floating point, refused below
                if a < 0:
                    raise ValueError(f"{where} entry {key!r} is a negative count ({a})")
                continue  # its dtype and shape are checked against the model (_same_arrays)
            if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
                kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
                raise ValueError(f"{where} entry {key!r} is {kind}; weights and moments are floating-point arrays")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{where} entry {key!r} holds nan or inf; a checkpoint is only written after a "
                                 "finite step")


def _count(table: Mapping[str, Any], name: str, where: str = "counters") -> int:
    v = table.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < _MAX_COUNT:
        raise ValueError(f"{where}.{name} must be an integer in [0, 2**53), got {v!r}")
    return v


def _real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _seconds(table: Mapping[str, Any], name: str, where: str = "counters") -> None:
    v = table.get(name)
    if not (_real(v) and math.isfinite(v) and v >= 0):
        raise ValueError(f"{where}.{name} must be a finite number of seconds >= 0, got {v!r}")


def _same_arrays(what: str, saved: Mapping[str, Any], built: Mapping[str, np.ndarray]) -> None:
    """The checkpoint's arrays must have the dtypes and shapes of the model just built (no cast, no reshape)."""
    for key, mine in built.items():
        theirs = saved.get(key)
        if isinstance(theirs, np.ndarray) and (theirs.dtype != mine.dtype or theirs.shape != mine.shape):
            raise ValueError(f"{what} entry {key!r} is {theirs.dtype} {theirs.shape}, but this model's is "
                             f"{mine.dtype} {mine.shape}")


def load_trainer_state(t: Trainer, state: Mapping[str, Any], extend: bool = False) -> None:
    """Restore a ``trainer_state`` (e.g. ``load_checkpoint(path)``) into the freshly built trainer ``t``; with
    ``extend`` the schedule keeps its own hyperparameters (a longer run), else they must match the checkpoint's.
    The state is checked first (``check_trainer_state``; dtypes and shapes against ``t``'s model)."""
    check_trainer_state(state)
    built = t.model.state_dict()
    _same_arrays("model", state["model"], built)
    if state.get("best_model") is not None:
        _same_arrays("best_model", state["best_model"], built)
    params = [p for group in t.optimizer.param_groups for p in group["params"]]
    for key, a in (state["optimizer"].get("state") or {}).items():
        index, _, name = str(key).partition(".")
        if index.isdigit() and int(index) < len(params) and name != "step":
            p = params[int(index)].data
            if isinstance(a, np.ndarray) and (a.dtype != p.dtype or a.shape != p.shape):
                raise ValueError(f"optimizer state entry {key!r} is {a.dtype} {a.shape}, but its parameter is "
                                 f"{p.dtype} {p.shape}")
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
    message = c["stop_reason"]  # only early stopping is checkpointed as final
    kind = c.get("stop_kind")  # (absent in checkpoints from before the kinds were stored)
    t.stop_message = message
    t.stop = None if message is None else StopReason(kind) if kind else StopReason.from_message(message)
    t.stop_training = t.stop is not None
    t.epoch_totals = EpochTotals(**c["epoch_totals"])
    t.update_ratios.load_state_dict(c.get("update_ratios"))  # (absent in checkpoints from before it existed)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
