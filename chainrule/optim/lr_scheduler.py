"""Scheduler objects: set an optimizer's learning rates from a schedule, step after step (``torch.optim.lr_scheduler``).

Built over an optimizer they read each group's ``lr`` as its base rate, set the rate for step 0 at once and a new
one at every ``step()``; call ``step()`` after ``optimizer.step()``, once per optimizer step (``interval="step"``) or
once per epoch (``interval="epoch"``; the step then counts epochs). Without an optimizer (``base_lr=...``) they
preview a schedule: ``values(n)``, ``plot(n, path)``. Each ``LRSchedule`` wraps one pure function of
``chainrule.optim.lr_functions``; ``state_dict()`` / ``load_state_dict()`` resume exactly. ``ReduceOnPlateau``
(``chainrule.optim.plateau``) shares the ``_Scheduler`` base; import them all from ``chainrule.optim.schedules``.

PyTorch's names, with PyTorch's arguments and semantics, are at the end: ``StepLR`` and ``CosineAnnealingLR`` (over
the same pure functions) and ``ReduceLROnPlateau`` (``ReduceOnPlateau``, importable from here as in PyTorch).
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from chainrule.optim.lr_functions import (_check_count, _check_lr, _check_milestones, _check_positive, constant, cosine,
                                          exponential, invsqrt, linear, step_decay)

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
            from pathlib import Path

            from chainrule.utils.atomic import atomic_open

            with atomic_open(path, "wb") as f:
                fig.savefig(f, format=Path(path).suffix.lstrip(".").lower() or "png")
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



# ---- PyTorch's names (torch.optim.lr_scheduler), with its arguments and semantics ---------------------------------


def _check_last_epoch(last_epoch: Any) -> None:
    if last_epoch != -1:
        raise ValueError(f"last_epoch={last_epoch!r}: only a fresh start (-1) is supported; to resume, build the "
                         "scheduler and call load_state_dict() with its saved state_dict()")


class StepLR(LRSchedule):
    """``torch.optim.lr_scheduler.StepLR``: each group's rate times ``gamma`` every ``step_size`` steps (epochs),
    ``base_lr * gamma ** (step // step_size)``, i.e. ``exponential`` of the step counted in units of step_size."""

    config_names = ("step_size", "gamma", "interval")

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1, *,
                 interval: str = "epoch"):
        _check_last_epoch(last_epoch)
        self.step_size = _check_count("step_size", step_size, low=1)
        self.gamma = _check_positive("gamma", gamma)
        super().__init__(optimizer, interval=interval)

    def lr(self, step: float, base_lr: float) -> float:
        return exponential(step // self.step_size, base_lr, self.gamma)


class CosineAnnealingLR(LRSchedule):
    """``torch.optim.lr_scheduler.CosineAnnealingLR``: half a cosine from each group's rate down to ``eta_min`` over
    ``T_max`` steps (epochs) and, as in PyTorch, back up over the next T_max (a period of 2 T_max).

    ``CosineSchedule`` (``cosine``) is the same curve up to ``total_steps`` but then stays at its floor, which is
    what a run that ends there wants; this one repeats: step t gives ``cosine`` at t folded into [0, T_max].
    """

    config_names = ("T_max", "eta_min", "interval")

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0, last_epoch: int = -1, *,
                 interval: str = "epoch"):
        _check_last_epoch(last_epoch)
        self.T_max = _check_count("T_max", T_max, low=1)
        self.eta_min = _check_lr("eta_min", eta_min)
        super().__init__(optimizer, interval=interval)

    def lr(self, step: float, base_lr: float) -> float:
        t = step % (2 * self.T_max)
        return cosine(min(t, 2 * self.T_max - t), base_lr, self.T_max, self.eta_min)


def __getattr__(name: str) -> Any:
    # ReduceLROnPlateau lives in chainrule.optim.plateau, which imports this module: resolved on first use
    if name == "ReduceLROnPlateau":
        from chainrule.optim.plateau import ReduceLROnPlateau

        return ReduceLROnPlateau
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
