"""Learning-rate schedules: pure functions of the step, and thin objects that set an optimizer's learning rates.

Pure functions (``step`` counts from 0; every one takes ``warmup_steps``, see below)::

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

Scheduler objects wrap the functions. Built over an optimizer they read each group's ``lr`` as its base rate, set
the rate for step 0 at once and a new one at every ``step()``; call ``step()`` after ``optimizer.step()``, once per
optimizer step (``interval="step"``) or once per epoch (``interval="epoch"``; the step then counts epochs). Without
an optimizer (``base_lr=...``) they preview a schedule: ``values(n)``, ``plot(n, path)``. ``ReduceOnPlateau``
lowers the rate when a metric stops improving; ``make_schedule(name, ...)`` builds any of them by name (for a CLI).
"""

from __future__ import annotations

import bisect
import difflib
import inspect
import math
from numbers import Integral, Real
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

# ---- pure functions ----------------------------------------------------------------------------------------


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


# ---- scheduler objects -------------------------------------------------------------------------------------

_INTERVALS = ("step", "epoch")


class _Scheduler:
    """Shared part: base rates from an optimizer's groups (or ``base_lr``), the counter, checkpoints."""

    config_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, optimizer: Any, base_lr: float | None, warmup_steps: int, interval: str):
        if (optimizer is None) == (base_lr is None):
            raise ValueError(
                "pass either an optimizer (each group's current lr becomes its base rate) or base_lr= for a "
                f"standalone schedule, not {'both' if optimizer is not None else 'neither'}"
            )
        if optimizer is not None and not hasattr(optimizer, "param_groups"):
            raise TypeError(f"optimizer must have param_groups (a chainrule.optim optimizer), got {optimizer!r}")
        if interval not in _INTERVALS:
            raise ValueError(f"interval must be one of {list(_INTERVALS)}, got {interval!r}")
        self.optimizer = optimizer
        groups = optimizer.param_groups if optimizer is not None else [{"lr": base_lr}]
        self.base_lrs = [_check_lr("base_lr" if optimizer is None else f"lr of param group {i}", g["lr"])
                         for i, g in enumerate(groups)]
        self.warmup_steps = _check_count("warmup_steps", warmup_steps)
        self.interval = interval
        self.last_step = 0
        self._last_lr: list[float] = []

    def config(self) -> dict[str, Any]:
        """The schedule's hyperparameters (JSON-able)."""
        out = {}
        for name in self.config_names:
            v = getattr(self, name)
            out[name] = list(v) if isinstance(v, tuple) else v
        return out

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group at the current step."""
        return list(self._last_lr)

    def _set(self, lrs: list[float]) -> None:
        self._last_lr = lrs
        if self.optimizer is not None:
            for group, lr in zip(self.optimizer.param_groups, lrs):
                group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        """``{"type", "last_step", "base_lrs", "config", ...}``: JSON-able Python scalars and lists only."""
        return {"type": type(self).__name__, "last_step": self.last_step, "base_lrs": list(self.base_lrs),
                "config": self.config()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Resume at the saved step with the saved base rates, and set the optimizer's rates accordingly.

        With ``strict`` a saved hyperparameter that differs from this schedule's raises ValueError; with
        ``strict=False`` this schedule's own hyperparameters are kept (e.g. to extend ``total_steps``).
        """
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(f"state_dict is from a {state_dict.get('type')}, not a {type(self).__name__}")
        if strict:
            mine, saved = self.config(), dict(state_dict.get("config", {}))
            diff = [f"{k}: saved {saved.get(k)!r}, here {mine[k]!r}" for k in mine if saved.get(k) != mine[k]]
            if diff:
                raise ValueError(
                    "schedule hyperparameters differ from the checkpoint (" + "; ".join(diff) + "); build the "
                    "schedule as when it was saved, or pass strict=False to keep the new ones"
                )
        base_lrs = [float(b) for b in state_dict["base_lrs"]]
        if len(base_lrs) != len(self.base_lrs):
            raise ValueError(
                f"state_dict has {len(base_lrs)} base rate(s) but the optimizer has {len(self.base_lrs)} group(s)"
            )
        self.base_lrs = base_lrs
        self.last_step = _check_count("last_step", state_dict["last_step"])
        self._restore(state_dict)

    def _restore(self, state_dict: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args}, base_lrs={self.base_lrs}, last_step={self.last_step})"


class LRSchedule(_Scheduler):
    """A schedule that is a function of the step alone; subclasses define ``lr(step, base_lr)``."""

    def __init__(self, optimizer: Any = None, *, base_lr: float | None = None, warmup_steps: int = 0,
                 interval: str = "step"):
        super().__init__(optimizer, base_lr, warmup_steps, interval)
        self._set(self.lr_at(0))  # also validates the hyperparameters against every base rate, now, not mid-run

    def lr(self, step: float, base_lr: float) -> float:
        """The rate at ``step`` for a group whose base rate is ``base_lr`` (pure)."""
        raise NotImplementedError

    def lr_at(self, step: float) -> list[float]:
        """The rate of each group at ``step`` (pure: the schedule is not advanced)."""
        return [self.lr(step, b) for b in self.base_lrs]

    def step(self) -> None:
        """Advance one step (or epoch) and set the optimizer's rates for it."""
        self.last_step += 1
        self._set(self.lr_at(self.last_step))

    def _restore(self, state_dict: Mapping[str, Any]) -> None:
        self._set(self.lr_at(self.last_step))

    def values(self, steps: int) -> np.ndarray:
        """(steps, G): the rate of each of the G groups at steps 0 .. steps-1."""
        steps = _check_count("steps", steps, low=1)
        return np.array([self.lr_at(t) for t in range(steps)], dtype=np.float64)

    def plot(self, steps: int, path: str | None = None) -> Any:
        """Preview the schedule over ``steps`` steps (one line per group); save a PNG/SVG/PDF if ``path``.

        Returns the ``matplotlib.figure.Figure`` (displayed inline in notebooks). Uses the Agg canvas directly,
        so pyplot's backend and figure list are left alone. Needs matplotlib (``pip install chainrule[plots]``).
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("schedule.plot needs matplotlib: pip install 'chainrule[plots]'") from e
        lrs = self.values(steps)
        fig = Figure(figsize=(6.0, 3.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for gi in range(lrs.shape[1]):
            ax.plot(np.arange(steps), lrs[:, gi], label=f"group {gi}" if lrs.shape[1] > 1 else None)
        if self.warmup_steps:
            ax.axvline(self.warmup_steps, color="0.6", linestyle=":", linewidth=1)
        ax.set_xlabel(self.interval)
        ax.set_ylabel("learning rate")
        ax.set_title(f"{type(self).__name__}: " + ", ".join(f"{k}={v}" for k, v in self.config().items()),
                     fontsize=8)
        if lrs.shape[1] > 1:
            ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
        return fig


class ConstantSchedule(LRSchedule):
    """Constant rate (after the optional warmup): see ``constant``."""

    config_names = ("warmup_steps", "interval")

    def lr(self, step: float, base_lr: float) -> float:
        return constant(step, base_lr, self.warmup_steps)


class StepSchedule(LRSchedule):
    """Multiply by ``gamma`` at each milestone: see ``step_decay``."""

    config_names = ("milestones", "gamma", "warmup_steps", "interval")

    def __init__(self, optimizer: Any = None, *, milestones: Sequence[int], gamma: float = 0.1,
                 base_lr: float | None = None, warmup_steps: int = 0, interval: str = "step"):
        self.milestones = tuple(_check_milestones(milestones))
        self.gamma = _check_positive("gamma", gamma)
        super().__init__(optimizer, base_lr=base_lr, warmup_steps=warmup_steps, interval=interval)

    def lr(self, step: float, base_lr: float) -> float:
        return step_decay(step, base_lr, self.milestones, self.gamma, self.warmup_steps)


class ExponentialSchedule(LRSchedule):
    """Multiply by ``gamma`` every step: see ``exponential``."""

    config_names = ("gamma", "warmup_steps", "interval")

    def __init__(self, optimizer: Any = None, *, gamma: float, base_lr: float | None = None, warmup_steps: int = 0,
                 interval: str = "step"):
        self.gamma = _check_positive("gamma", gamma)
        super().__init__(optimizer, base_lr=base_lr, warmup_steps=warmup_steps, interval=interval)

    def lr(self, step: float, base_lr: float) -> float:
        return exponential(step, base_lr, self.gamma, self.warmup_steps)


class CosineSchedule(LRSchedule):
    """Cosine decay to the floor ``min_lr`` at ``total_steps``: see ``cosine``."""

    config_names = ("total_steps", "min_lr", "warmup_steps", "interval")

    def __init__(self, optimizer: Any = None, *, total_steps: int, min_lr: float = 0.0, base_lr: float | None = None,
                 warmup_steps: int = 0, interval: str = "step"):
        self.total_steps = _check_count("total_steps", total_steps, low=1)
        self.min_lr = _check_lr("min_lr", min_lr)
        super().__init__(optimizer, base_lr=base_lr, warmup_steps=warmup_steps, interval=interval)

    def lr(self, step: float, base_lr: float) -> float:
        return cosine(step, base_lr, self.total_steps, self.min_lr, self.warmup_steps)


class LinearSchedule(LRSchedule):
    """Linear decay to ``end_lr`` at ``total_steps``: see ``linear``."""

    config_names = ("total_steps", "end_lr", "warmup_steps", "interval")

    def __init__(self, optimizer: Any = None, *, total_steps: int, end_lr: float = 0.0, base_lr: float | None = None,
                 warmup_steps: int = 0, interval: str = "step"):
        self.total_steps = _check_count("total_steps", total_steps, low=1)
        self.end_lr = _check_lr("end_lr", end_lr)
        super().__init__(optimizer, base_lr=base_lr, warmup_steps=warmup_steps, interval=interval)

    def lr(self, step: float, base_lr: float) -> float:
        return linear(step, base_lr, self.total_steps, self.end_lr, self.warmup_steps)


class InvSqrtSchedule(LRSchedule):
    """Inverse square root decay: see ``invsqrt``."""

    config_names = ("timescale", "warmup_steps", "interval")

    def __init__(self, optimizer: Any = None, *, timescale: float | None = None, base_lr: float | None = None,
                 warmup_steps: int = 0, interval: str = "step"):
        self.timescale = None if timescale is None else _check_positive("timescale", timescale)
        super().__init__(optimizer, base_lr=base_lr, warmup_steps=warmup_steps, interval=interval)

    def lr(self, step: float, base_lr: float) -> float:
        return invsqrt(step, base_lr, self.timescale, self.warmup_steps)


class ReduceOnPlateau(_Scheduler):
    """Divide the rate by ``1 / factor`` when a metric has not improved for ``patience`` calls.

    Call ``step(metric)`` once per evaluation (usually per epoch) with the validation loss (``mode="min"``) or
    accuracy (``mode="max"``). A value improves on the best so far when it is below ``best * (1 - threshold)``
    (``threshold_mode="rel"``) or ``best - threshold`` (``"abs"``); mirrored for ``"max"``. After more than
    ``patience`` calls without improvement each group's rate becomes ``max(lr * factor, min_lr)`` (changes
    smaller than ``eps`` are skipped), then ``cooldown`` calls pass before bad calls count again. This is
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s rule. No warmup: the rate starts at the base rate.
    """

    config_names = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps",
                    "interval")

    def __init__(self, optimizer: Any = None, *, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0,
                 eps: float = 1e-8, base_lr: float | None = None, interval: str = "epoch"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' (a loss) or 'max' (an accuracy), got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        factor = _check_positive("factor", factor)
        if factor >= 1.0:
            raise ValueError(f"factor must be < 1 (the rate is multiplied by it), got {factor!r}")
        self.mode, self.threshold_mode, self.factor = mode, threshold_mode, factor
        self.patience = _check_count("patience", patience)
        self.cooldown = _check_count("cooldown", cooldown)
        self.threshold = _check_lr("threshold", threshold)
        self.min_lr = _check_lr("min_lr", min_lr)
        self.eps = _check_lr("eps", eps)
        super().__init__(optimizer, base_lr, 0, interval)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad = 0
        self.cooldown_counter = 0
        self._set(list(self.base_lrs))

    def is_better(self, value: float, best: float) -> bool:
        """Whether ``value`` counts as an improvement on ``best`` under ``mode`` and ``threshold``."""
        if self.mode == "min":
            return value < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return value > (best * (1.0 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metric: Any = None) -> None:  # type: ignore[override]
        """Record one evaluation of the monitored metric and lower the rates if it has plateaued."""
        if metric is None:
            raise TypeError("ReduceOnPlateau.step needs the monitored metric, e.g. scheduler.step(val_loss)")
        value = float(metric.item() if hasattr(metric, "item") else metric)
        self.last_step += 1
        if self.is_better(value, self.best):
            self.best, self.num_bad = value, 0
        else:
            self.num_bad += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad = 0
        if self.num_bad > self.patience:
            lrs = []
            for lr in self._last_lr:
                new = max(lr * self.factor, self.min_lr)
                lrs.append(new if lr - new > self.eps else lr)
            self._set(lrs)
            self.cooldown_counter = self.cooldown
            self.num_bad = 0

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        # best is +-inf until the first metric: stored as None to keep the document standard JSON
        out.update(best=self.best if math.isfinite(self.best) else None, num_bad=self.num_bad,
                   cooldown_counter=self.cooldown_counter, lrs=list(self._last_lr))
        return out

    def _restore(self, state_dict: Mapping[str, Any]) -> None:
        lrs = [float(x) for x in state_dict["lrs"]]
        if len(lrs) != len(self.base_lrs):
            raise ValueError(f"state_dict has {len(lrs)} current rate(s) for {len(self.base_lrs)} group(s)")
        best = state_dict["best"]
        self.best = float(best) if best is not None else (math.inf if self.mode == "min" else -math.inf)
        self.num_bad = _check_count("num_bad", state_dict["num_bad"])
        self.cooldown_counter = _check_count("cooldown_counter", state_dict["cooldown_counter"])
        self._set(lrs)


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
