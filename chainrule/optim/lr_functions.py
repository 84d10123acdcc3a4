"""Learning-rate schedules as pure functions of the step (the formulas; ``chainrule.optim.schedules`` has the rest).

``step`` counts from 0; every function takes ``warmup_steps``, see below::

    constant(step, base_lr)                          base_lr
    step_decay(step, base_lr, milestones, gamma)     base_lr * gamma ** (number of milestones <= step)
    exponential(step, base_lr, gamma)                base_lr * gamma ** step
    cosine(step, base_lr, total_steps, min_lr)       min_lr + (base_lr - min_lr) (1 + cos(pi step / T)) / 2
    linear(step, base_lr, total_steps, end_lr)       base_lr + (end_lr - base_lr) step / T
    invsqrt(step, base_lr, timescale)                base_lr / sqrt(1 + step / timescale)

Linear warmup goes in front of any of them with ``warmup_steps=W``: steps 0 .. W-1 ramp the rate as
``base_lr * (step + 1) / (W + 1)`` (nanoGPT's ramp, equal to torch's ``LinearLR(start_factor=1/(W+1),
total_iters=W)``), then the schedule runs as above on ``step - W``. Positions in the run stay absolute:
``total_steps`` is the length of the whole run including warmup (decay takes T = total_steps - W steps and ends
at total_steps; the rate stays at the end value afterwards) and ``milestones`` are absolute steps.

The ``_check_*`` helpers validate hyperparameters with messages that name the rule; the scheduler objects
(``chainrule.optim.lr_scheduler``) use them too.
"""

from __future__ import annotations

import bisect
import math
from numbers import Integral, Real
from typing import Any, Sequence

import numpy as np

def _check_step(step: Any) -> None:
    if isinstance(step, bool) or not isinstance(step, Real) or not step >= 0:
        raise ValueError(f"step must be a number >= 0, got {step!r}")


def _check_lr(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_count(name: str, value: Any, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_total(total_steps: Any, warmup_steps: int) -> int:
    total_steps = _check_count("total_steps", total_steps, low=1)
    if total_steps <= warmup_steps:
        raise ValueError(
            f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps}): total_steps counts the whole "
            "run, warmup included"
        )
    return total_steps


def linear_warmup(step: float, base_lr: float, warmup_steps: int) -> float:
    """``base_lr * (step + 1) / (warmup_steps + 1)`` for step < warmup_steps, then ``base_lr``."""
    _check_step(step)
    base_lr = _check_lr("base_lr", base_lr)
    warmup_steps = _check_count("warmup_steps", warmup_steps)
    return base_lr * (step + 1) / (warmup_steps + 1) if step < warmup_steps else base_lr


def constant(step: float, base_lr: float, warmup_steps: int = 0) -> float:
    """``base_lr`` at every step (after the optional warmup)."""
    return linear_warmup(step, base_lr, warmup_steps)


def step_decay(
    step: float, base_lr: float, milestones: Sequence[int], gamma: float = 0.1, warmup_steps: int = 0,
) -> float:
    """``base_lr * gamma ** k`` with k the number of milestones <= step (e.g. 0.1 after epochs 30, 60, 90)."""
    milestones = _check_milestones(milestones)
    gamma = _check_positive("gamma", gamma)
    warmup_steps = _check_count("warmup_steps", warmup_steps)
    if step < warmup_steps:
        return linear_warmup(step, base_lr, warmup_steps)
    _check_step(step)
    return _check_lr("base_lr", base_lr) * gamma ** bisect.bisect_right(milestones, step)


def exponential(step: float, base_lr: float, gamma: float, warmup_steps: int = 0) -> float:
    """``base_lr * gamma ** step``: multiply by gamma at every step (counted from the end of warmup)."""
    gamma = _check_positive("gamma", gamma)
    warmup_steps = _check_count("warmup_steps", warmup_steps)
    if step < warmup_steps:
        return linear_warmup(step, base_lr, warmup_steps)
    _check_step(step)
    return _check_lr("base_lr", base_lr) * gamma ** (step - warmup_steps)


def cosine(step: float, base_lr: float, total_steps: int, min_lr: float = 0.0, warmup_steps: int = 0) -> float:
    """Half a cosine from ``base_lr`` down to the floor ``min_lr`` over the run, then ``min_lr``.

    ``min_lr + (base_lr - min_lr) (1 + cos(pi t / T)) / 2`` with t = step - warmup_steps and
    T = total_steps - warmup_steps (SGDR without restarts; min_lr = 0 gives alpha_0 (1 + cos(t pi / T)) / 2).
    """
    total_steps = _check_total(total_steps, _check_count("warmup_steps", warmup_steps))
    base_lr, min_lr = _check_lr("base_lr", base_lr), _check_lr("min_lr", min_lr)
    if min_lr > base_lr:
        raise ValueError(f"min_lr ({min_lr!r}) must not exceed base_lr ({base_lr!r}): it is the schedule's floor")
    if step < warmup_steps:
        return linear_warmup(step, base_lr, warmup_steps)
    _check_step(step)
    span = total_steps - warmup_steps
    t = min(step - warmup_steps, span)
    return min_lr + (base_lr - min_lr) * (1.0 + math.cos(math.pi * t / span)) / 2.0


def linear(step: float, base_lr: float, total_steps: int, end_lr: float = 0.0, warmup_steps: int = 0) -> float:
    """Straight line from ``base_lr`` to ``end_lr`` over the run, then ``end_lr``: alpha_0 (1 - t / T) for end_lr=0."""
    total_steps = _check_total(total_steps, _check_count("warmup_steps", warmup_steps))
    base_lr, end_lr = _check_lr("base_lr", base_lr), _check_lr("end_lr", end_lr)
    if step < warmup_steps:
        return linear_warmup(step, base_lr, warmup_steps)
    _check_step(step)
    span = total_steps - warmup_steps
    t = min(step - warmup_steps, span)
    return base_lr + (end_lr - base_lr) * (t / span)


def invsqrt(step: float, base_lr: float, timescale: float | None = None, warmup_steps: int = 0) -> float:
    """Inverse square root decay ``base_lr / sqrt(1 + t / timescale)``, t = step - warmup_steps.

    ``timescale=None`` means ``warmup_steps`` (then it equals ``base_lr * sqrt(W / step)`` after warmup: the
    Transformer / T5 schedule, continuous with the ramp), or 1 without warmup (``alpha_0 / sqrt(t)`` with t
    counted from 1).
    """
    warmup_steps = _check_count("warmup_steps", warmup_steps)
    timescale = _check_positive("timescale", timescale if timescale is not None else max(warmup_steps, 1))
    if step < warmup_steps:
        return linear_warmup(step, base_lr, warmup_steps)
    _check_step(step)
    return _check_lr("base_lr", base_lr) / math.sqrt(1.0 + (step - warmup_steps) / timescale)


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_milestones(milestones: Any) -> list[int]:
    ms = list(milestones) if isinstance(milestones, (list, tuple, range, np.ndarray)) else None
    if ms is None or not all(isinstance(m, Integral) and not isinstance(m, bool) and m >= 0 for m in ms):
        raise ValueError(f"milestones must be a list of integer steps >= 0, got {milestones!r}")
    if any(b <= a for a, b in zip(ms, ms[1:])):
        raise ValueError(f"milestones must be strictly increasing, got {ms}; sort them and drop duplicates")
    return [int(m) for m in ms]
