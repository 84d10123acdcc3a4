"""Weight averaging as Trainer callbacks: an exponential moving average (EMA) of a model's parameters and buffers, and
Lookahead (slow weights that the model is pulled back to every k steps).

    ema = EMA(model, decay=0.999)                  # or Trainer(..., callbacks=[ema])
    for step ...: opt.step(); ema.update()         # (the callback calls update() after every step)
    with ema.swapped():                            # evaluate with the averaged weights, then restore
        scores = predict_scores(model, X_val)

After every optimizer step, ``raw <- decay * raw + (1 - decay) * value`` for every float parameter and buffer (batch
norm's running mean and variance too, so the averaged weights are evaluated with statistics averaged alike; integer
buffers such as ``num_batches_tracked`` are copied), starting from ``raw = 0``; the average is the bias-corrected
``raw / (1 - decay ** t)`` after t updates (as Adam corrects its moments): exactly the mean of the states seen, each
weighted by ``decay ** age``, so the initial weights never dominate and the decay means what it says. (TensorFlow's
``num_updates`` warm-up, ``min(decay, (1 + t) / (10 + t))``, caps the decay at ~0.996 for the first 2,500 updates,
which made 0.999 and 0.9995 give identical averages in 15-epoch runs.) ``every`` updates only every k-th step with
decay ** k (the same time constant), which divides the cost -- one pass over the parameters, ~17 MB read twice and
written once for the 3072-1024-1024-10 net -- by k.

    la = Lookahead(model, alpha=0.5, k=5)        # Trainer(..., callbacks=[la]); la.update() after every step
    la = Lookahead(model, alpha=cubic_alpha(total_steps))   # airbench's schedule: alpha a pure function of the step

Lookahead (Zhang et al., 2019, "Lookahead Optimizer: k steps forward, 1 step back"): the optimizer moves the model
("fast" weights); every k-th step the slow copy moves towards them, ``slow <- slow + alpha (fast - slow)``, and the
model is set back to it, ``fast <- slow``. Float buffers (batch norm's statistics) are treated alike, as airbench
does. At the end of training (``finish()``, the ``on_train_end`` hook) a last sync folds in the steps since the
previous one and the model takes the slow weights.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np


class EMA:
    """Exponential moving average of ``model``'s state (parameters and buffers), updated with ``update()``."""

    def __init__(self, model: Any, decay: float = 0.999, every: int = 1):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA: decay must be in [0, 1), got {decay!r}")
        if every < 1:
            raise ValueError(f"EMA: every must be a positive number of steps, got {every!r}")
        self.model, self.decay, self.every = model, float(decay), int(every)
        self.num_updates = 0
        self._steps = 0
        self._raw: dict[str, np.ndarray] = {k: (np.zeros_like(v) if v.dtype.kind == "f" else np.array(v, copy=True))
                                            for k, v in model.state_dict().items()}

    def _live(self) -> dict[str, np.ndarray]:
        """The model's own arrays (not copies), by state-dict key."""
        live = {name: p.data for name, p in self.model.named_parameters()}
        live.update(dict(self.model.named_buffers()))
        return live

    def update(self) -> None:
        """Fold the model's current state into the average (every ``every``-th call)."""
        self._steps += 1
        if self._steps % self.every:
            return
        d = self.decay ** self.every
        for name, value in self._live().items():
            raw = self._raw[name]
            if raw.dtype.kind == "f":
                raw *= d
                raw += (1.0 - d) * value
            else:
                raw[...] = value
        self.num_updates += 1

    def on_step_end(self, trainer: Any) -> None:  # Trainer callback
        self.update()

    def state_dict(self) -> dict[str, np.ndarray]:
        """The averaged state (bias-corrected; the model's own state before any update), for ``load_state_dict``."""
        if self.num_updates == 0:
            return {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}
        correction = 1.0 - (self.decay ** self.every) ** self.num_updates
        return {k: (v / correction).astype(v.dtype) if v.dtype.kind == "f" else v.copy() for k, v in self._raw.items()}

    @contextlib.contextmanager
    def swapped(self) -> Iterator[Any]:
        """Inside the block the model holds the averaged state; the trained state is restored afterwards."""
        saved = {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.state_dict())
        try:
            yield self.model
        finally:
            self.model.load_state_dict(saved)


def cubic_alpha(total_steps: int, decay: float = 0.95 ** 5, power: float = 3.0) -> Callable[[int], float]:
    """airbench's Lookahead schedule as a pure function of the step: alpha(t) = 1 - decay (t / total)^power.

    Early on alpha ~ 1 (the slow weights follow the model: no averaging); towards the end the slow weights keep
    ``decay`` (0.95^5 ~ 0.77 at the last step) of themselves at each sync, averaging the last few hundred steps."""
    if not isinstance(total_steps, (int, np.integer)) or total_steps < 1:
        raise ValueError(f"cubic_alpha: total_steps must be a positive int, got {total_steps!r}")
    if not 0.0 <= decay <= 1.0 or power < 0:
        raise ValueError(f"cubic_alpha: expected decay in [0, 1] and power >= 0, got decay={decay!r}, "
                         f"power={power!r}")
    return lambda step: 1.0 - decay * min(step / total_steps, 1.0) ** power


class Lookahead:
    """Lookahead's slow weights over ``model``'s float state; ``update()`` after every optimizer step.

    ``alpha``: a number in (0, 1] or a function of the step count (``cubic_alpha``); ``k``: steps between syncs.
    ``state_dict`` / ``load_state_dict`` hold the slow weights and the step count (a resumed run continues
    exactly; the Trainer saves them with its checkpoints)."""

    def __init__(self, model: Any, alpha: float | Callable[[int], float] = 0.5, k: int = 5):
        if not callable(alpha) and not 0.0 < alpha <= 1.0:
            raise ValueError(f"Lookahead: alpha must be in (0, 1] or a function of the step, got {alpha!r}")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"Lookahead: k must be a positive number of steps, got {k!r}")
        self.model, self.alpha, self.k = model, alpha, int(k)
        self.steps = 0
        self._slow = {name: np.array(v, copy=True) for name, v in _live_state(model).items() if v.dtype.kind == "f"}

    def alpha_at(self, step: int) -> float:
        a = float(self.alpha(step)) if callable(self.alpha) else float(self.alpha)
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"Lookahead: alpha({step}) = {a}, expected a value in [0, 1]")
        return a

    def _sync(self, alpha: float) -> None:
        live = _live_state(self.model)
        for name, slow in self._slow.items():
            fast = live[name]
            slow += alpha * (fast - slow)
            fast[...] = slow

    def update(self) -> None:
        """Count a step; every k-th, move the slow weights towards the model's and set the model to them."""
        self.steps += 1
        if self.steps % self.k == 0:
            self._sync(self.alpha_at(self.steps))

    def finish(self) -> None:
        """End on the slow weights: a last sync if steps were taken since the previous one (so a run shorter than
        k steps still moves), then the model takes the slow weights."""
        self._sync(self.alpha_at(self.steps) if self.steps % self.k else 0.0)

    def on_step_end(self, trainer: Any) -> None:  # Trainer callbacks
        self.update()

    def on_train_end(self, trainer: Any) -> None:
        self.finish()

    def state_dict(self) -> dict[str, Any]:
        return {"steps": np.array(self.steps, dtype=np.int64),
                **{f"slow.{k}": np.array(v, copy=True) for k, v in self._slow.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        keys = {f"slow.{k}" for k in self._slow}
        if set(state) != keys | {"steps"}:
            raise ValueError(f"Lookahead.load_state_dict: the state holds {sorted(set(state))}, this model needs "
                             f"{sorted(keys | {'steps'})}; load a state saved for the same model")
        for k, v in self._slow.items():
            value = np.asarray(state[f"slow.{k}"])
            if value.shape != v.shape:
                raise ValueError(f"Lookahead.load_state_dict: slow.{k} has shape {value.shape}, expected {v.shape}")
            v[...] = value
        self.steps = int(state["steps"])


def _live_state(model: Any) -> dict[str, np.ndarray]:
    """The model's own arrays (parameters and buffers, not copies), by state-dict key."""
    live = {name: p.data for name, p in model.named_parameters()}
    live.update(dict(model.named_buffers()))
    return live
