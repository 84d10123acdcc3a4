"""``ReduceOnPlateau``: lower the learning rate when a monitored metric stops improving (driven by the metric, not
the step count)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from chainrule.optim.lr_functions import _check_count, _check_lr, _check_positive
from chainrule.optim.lr_scheduler import _Scheduler


class ReduceOnPlateau(_Scheduler):
    """Divide the rate by ``1 / factor`` when a metric has not improved for ``patience`` calls.

    Call ``step(metric)`` once per evaluation (usually per epoch) with the validation loss (``mode="min"``) or
    accuracy (``mode="max"``). A value improves on the best so far when it is below ``best * (1 - threshold)``
    (``threshold_mode="rel"``) or ``best - threshold`` (``"abs"``); mirrored for ``"max"``. After more than
    ``patience`` calls without improvement each group's rate becomes ``max(lr * factor, min_lr)`` (changes
    smaller than ``eps`` are skipped), then ``cooldown`` calls pass before bad calls count again. This is
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s rule (``ReduceLROnPlateau`` below is PyTorch's name and
    argument order). ``min_lr`` is one floor or a list of one per group. No warmup: the rate starts at the base rate.
    """

    config_names = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps",
                    "interval")

    def __init__(self, optimizer: Any = None, *, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8, base_lr: float | None = None,
                 interval: str = "epoch"):
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
        if isinstance(min_lr, (list, tuple)):
            self.min_lr: float | tuple[float, ...] = tuple(_check_lr(f"min_lr[{i}]", v) for i, v in enumerate(min_lr))
        else:
            self.min_lr = _check_lr("min_lr", min_lr)
        self.eps = _check_lr("eps", eps)
        super().__init__(optimizer, base_lr, 0, interval)
        if isinstance(self.min_lr, tuple) and len(self.min_lr) != len(self.base_lrs):
            raise ValueError(f"min_lr has {len(self.min_lr)} values for {len(self.base_lrs)} param group(s); "
                             "pass one number or one per group")
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
            floors = self.min_lr if isinstance(self.min_lr, tuple) else [self.min_lr] * len(self._last_lr)
            for lr, floor in zip(self._last_lr, floors):
                new = max(lr * self.factor, floor)
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


class ReduceLROnPlateau(ReduceOnPlateau):
    """``torch.optim.lr_scheduler.ReduceLROnPlateau``: ``ReduceOnPlateau`` with PyTorch's positional argument order
    (optimizer, mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps); ``step(metrics)``."""

    def __init__(self, optimizer: Any, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8):
        super().__init__(optimizer, mode=mode, factor=factor, patience=patience, threshold=threshold,
                         threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr, eps=eps)
