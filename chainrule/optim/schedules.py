"""Learning-rate schedules: pure functions of the step, and thin objects that set an optimizer's learning rates.

Pure functions of the step: ``constant``, ``step_decay``, ``exponential``, ``cosine``, ``linear`` and ``invsqrt``,
each with optional linear warmup (``warmup_steps``); ``chainrule.optim.lr_functions`` gives their formulas and how
warmup and ``total_steps`` count.

Scheduler objects wrap the functions. Built over an optimizer they read each group's ``lr`` as its base rate, set
the rate for step 0 at once and a new one at every ``step()``; call ``step()`` after ``optimizer.step()``, once per
optimizer step (``interval="step"``) or once per epoch (``interval="epoch"``; the step then counts epochs). Without
an optimizer (``base_lr=...``) they preview a schedule: ``values(n)``, ``plot(n, path)``. ``ReduceOnPlateau``
lowers the rate when a metric stops improving; ``make_schedule(name, ...)`` builds any of them by name, and
``run_schedule(name, optimizer, total_steps)`` builds the schedule of a whole training run by name alone (the
estimators and the CLI use it; ``RUN_SCHEDULES`` lists the names).

Everything is importable from here; the code lives in three modules of one concept each: the pure functions in
``chainrule.optim.lr_functions``, the step-driven scheduler objects in ``chainrule.optim.lr_scheduler``,
``ReduceOnPlateau`` in ``chainrule.optim.plateau``. This module adds the registry ``SCHEDULES`` and
``make_schedule``.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from chainrule.optim.lr_functions import constant, cosine, exponential, invsqrt, linear, linear_warmup, step_decay
from chainrule.optim.lr_scheduler import (ConstantSchedule, CosineSchedule, ExponentialSchedule, InvSqrtSchedule,
                                          LinearSchedule, LRSchedule, StepSchedule, _Scheduler)
from chainrule.optim.plateau import ReduceOnPlateau

__all__ = [
    "constant", "step_decay", "exponential", "cosine", "linear", "invsqrt", "linear_warmup",
    "LRSchedule", "ConstantSchedule", "StepSchedule", "ExponentialSchedule", "CosineSchedule", "LinearSchedule",
    "InvSqrtSchedule", "ReduceOnPlateau", "SCHEDULES", "make_schedule", "RUN_SCHEDULES", "run_schedule",
]

# ---- by name -----------------------------------------------------------------------------------------------

SCHEDULES: dict[str, type[_Scheduler]] = {
    "constant": ConstantSchedule,
    "step": StepSchedule,
    "exponential": ExponentialSchedule,
    "cosine": CosineSchedule,
    "linear": LinearSchedule,
    "invsqrt": InvSqrtSchedule,
    "plateau": ReduceOnPlateau,
}


def make_schedule(name: str, optimizer: Any = None, *, warmup: int = 0, **kwargs: Any) -> _Scheduler:
    """Build a schedule by name: one of ``SCHEDULES`` ('constant', 'step', 'exponential', 'cosine', 'linear',
    'invsqrt', 'plateau'), over ``optimizer`` or, without one, with ``base_lr=`` for a preview.

    ``warmup`` is the number of linear-warmup steps (not available for 'plateau'); other keyword arguments go to
    the schedule's class (e.g. ``total_steps=``, ``min_lr=``, ``milestones=``, ``gamma=``)::

        sched = make_schedule("cosine", opt, total_steps=10_000, warmup=500, min_lr=1e-5)
        make_schedule("step", base_lr=0.1, milestones=[30, 60, 90]).plot(100, "lr.png")
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in SCHEDULES:
        close = difflib.get_close_matches(str(name), list(SCHEDULES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown schedule {name!r}{hint}; valid names: {', '.join(SCHEDULES)}")
    cls = SCHEDULES[key]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "optimizer")]
    if "warmup_steps" in kwargs:
        raise TypeError("make_schedule takes the warmup length as warmup=, not warmup_steps=")
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        valid = sorted(set(accepted) - {"warmup_steps"}) + (["warmup"] if "warmup_steps" in accepted else [])
        raise TypeError(f"schedule {key!r} got unexpected argument(s) {unknown}; it accepts {valid}")
    if "warmup_steps" in accepted:
        kwargs["warmup_steps"] = warmup
    elif warmup:
        raise ValueError(f"schedule {key!r} does not support warmup, got warmup={warmup!r}")
    return cls(optimizer, **kwargs)


# ---- the schedule of a whole run, by name --------------------------------------------------------------------

RUN_SCHEDULES = ("constant", "cosine", "linear", "step", "exponential")


def run_schedule(name: str, optimizer: Any, total_steps: int, *, warmup: int = 0) -> _Scheduler:
    """The learning-rate schedule of a run of ``total_steps`` optimizer steps, by name alone (one of
    ``RUN_SCHEDULES``), each with ``warmup`` steps of linear warmup:

    - "constant": the base rate throughout;
    - "cosine" / "linear": decay to 0 at ``total_steps``;
    - "step": x0.1 at 1/2 and again at 3/4 of the run (milestones ``max(1, T // 2)`` and ``max(1, 3 T // 4)``);
    - "exponential": x``gamma`` per step with gamma chosen so the rate is 1% of the base rate at the end.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in RUN_SCHEDULES:
        close = difflib.get_close_matches(str(name), list(RUN_SCHEDULES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown run schedule {name!r}{hint}; valid names: {', '.join(RUN_SCHEDULES)}")
    total_steps = max(int(total_steps), 1)
    warmup = min(int(warmup), total_steps - 1)
    if key == "constant":
        return make_schedule("constant", optimizer, warmup=warmup)
    if key in ("cosine", "linear"):
        return make_schedule(key, optimizer, warmup=warmup, total_steps=total_steps)
    if key == "step":
        milestones = sorted({max(1, total_steps // 2), max(1, 3 * total_steps // 4)})
        return make_schedule("step", optimizer, warmup=warmup, milestones=milestones, gamma=0.1)
    return make_schedule("exponential", optimizer, warmup=warmup, gamma=0.01 ** (1.0 / max(total_steps - warmup, 1)))
