"""Training for a fixed time: a ``Trainer`` callback that stops after N seconds, and a schedule that anneals over them.

    budget = TimeBudget(600)                                    # ten minutes of training steps
    schedule = BudgetSchedule(opt, "cosine", total_steps=epochs * len(loader), warmup_steps=500, budget=budget)
    Trainer(model, F.cross_entropy, opt, loader, schedule=schedule, epochs=epochs, callbacks=[budget]).fit()

``epochs`` is then an upper bound: training ends when the budget is spent, after the step that spends it (inside an
epoch if need be; the trainer does not validate that partial epoch, see ``Trainer.fit``), or after ``epochs``,
whichever comes first. The schedule's progress is the larger of the fraction of steps done and the fraction of the
budget spent, so a "cosine over 10 minutes" anneals to zero exactly when time is up, on any machine. Such a run
depends on the machine's speed, so it is not reproducible step for step.
"""

from __future__ import annotations

import math
import time
from numbers import Integral, Real
from typing import Any, Mapping

from chainrule.optim import lr_functions

SHAPES = ("constant", "linear", "cosine")


class TimeBudget:
    """Trainer callback: stops training once ``seconds`` of training (summed over ``fit`` calls) have passed.

    The clock runs from ``on_train_begin`` to ``on_train_end`` of each ``fit``, except between an epoch's last step
    and the next epoch's start: the epoch-end work (validation, diagnostics, checkpoints) does not spend the budget,
    so validating every epoch does not cost training steps. ``elapsed()`` is the time used so far and ``spent``
    says whether the budget stopped training. A ``fit`` that begins with the budget already spent stops before its
    first step (raise ``seconds`` to train on).
    """

    def __init__(self, seconds: float):
        if isinstance(seconds, bool) or not isinstance(seconds, Real) or not (
                math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"seconds must be a finite number > 0, got {seconds!r}")
        self.seconds = seconds
        self.used = 0.0                  # seconds of the fit calls that have ended
        self.start: float | None = None  # perf_counter() at the start of the current fit (or of its last pause)
        self.paused: float | None = None  # perf_counter() at an epoch's last step, while its epoch-end work runs
        self.spent = False

    def elapsed(self) -> float:
        """Seconds of training so far (the ended fit calls and the current one)."""
        if self.start is None:
            return self.used
        return self.used + ((self.paused if self.paused is not None else time.perf_counter()) - self.start)

    def on_train_begin(self, trainer: Any) -> None:
        self.start, self.paused = time.perf_counter(), None
        if self.used >= self.seconds:
            self.spent = trainer.stop_training = True

    def on_epoch_begin(self, trainer: Any) -> None:
        if self.paused is not None and self.start is not None:  # skip the time the epoch-end work took
            self.start += time.perf_counter() - self.paused
            self.paused = None

    def on_step_end(self, trainer: Any) -> None:
        if self.elapsed() >= self.seconds:
            self.spent = trainer.stop_training = True
        elif trainer.epoch_step >= len(trainer.train_loader):  # the epoch's last step: its end-of-epoch work is next
            self.paused = time.perf_counter()

    def on_train_end(self, trainer: Any) -> None:
        self.used, self.start, self.paused = self.elapsed(), None, None

    def state_dict(self) -> dict[str, Any]:
        """The time used so far (saved in trainer checkpoints, so a resumed run has only the rest of the budget)."""
        return {"seconds": self.seconds, "used": self.elapsed(), "spent": self.spent}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.used, self.spent = float(state["used"]), bool(state["spent"])


class BudgetSchedule:
    """A learning-rate schedule over a run that ends at ``total_steps`` or when ``budget`` is spent.

    lr = base_lr * warmup(step) * shape(progress), with progress = min(1, max(step / total_steps,
    budget.elapsed() / budget.seconds)), shape 1 ("constant"), 1 - p ("linear") or (1 + cos(pi p)) / 2 ("cosine"),
    and the linear warmup ramp of ``chainrule.optim.schedules``: (step + 1) / (warmup_steps + 1) for the first
    ``warmup_steps`` steps. Each param group's ``lr`` at construction is its base rate; ``step()`` after every
    optimizer step (``interval = "step"``).
    """

    interval = "step"

    def __init__(self, optimizer: Any, shape: str, total_steps: int, warmup_steps: int, budget: TimeBudget):
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {list(SHAPES)}, got {shape!r}")
        if isinstance(total_steps, bool) or not isinstance(total_steps, Integral) or total_steps < 1:
            raise ValueError(f"total_steps must be an integer >= 1, got {total_steps!r}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, Integral) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        self.optimizer, self.shape, self.total_steps = optimizer, shape, int(total_steps)
        self.warmup_steps, self.budget = int(warmup_steps), budget
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.last_step = 0
        self._set()

    def progress(self) -> float:
        return min(1.0, max(self.last_step / self.total_steps, self.budget.elapsed() / self.budget.seconds))

    def factor(self) -> float:
        """The multiplier of the base rates now: warmup(step) * shape(progress)."""
        p = self.progress()  # the shapes of chainrule.optim.lr_functions over a run of length 1, at p
        value = {"constant": 1.0, "linear": lr_functions.linear(p, 1.0, 1),
                 "cosine": lr_functions.cosine(p, 1.0, 1)}[self.shape]
        return value * lr_functions.linear_warmup(self.last_step, 1.0, self.warmup_steps)

    def _set(self) -> None:
        f = self.factor()
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f

    def step(self) -> None:
        """Advance one optimizer step and set the rates for it."""
        self.last_step += 1
        self._set()

    def get_last_lr(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "last_step": self.last_step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume at the saved step (the time part of the progress is the budget's own ``elapsed()``)."""
        if state.get("type") != type(self).__name__:
            raise ValueError(f"state_dict is from a {state.get('type')}, not a {type(self).__name__}")
        base_lrs = [float(b) for b in state["base_lrs"]]
        if len(base_lrs) != len(self.base_lrs):
            raise ValueError(f"state_dict has {len(base_lrs)} base rate(s) but the optimizer has "
                             f"{len(self.base_lrs)} group(s)")
        self.base_lrs, self.last_step = base_lrs, int(state["last_step"])
        self._set()
