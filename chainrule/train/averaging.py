"""Weight averaging: an exponential moving average (EMA) of a model's parameters and buffers, as a Trainer callback.

    ema = EMA(model, decay=0.999)                  # or Trainer(..., callbacks=[ema])
    for step ...: opt.step(); ema.update()         # (the callback calls update() after every step)
    with ema.swapped():                            # evaluate with the averaged weights, then restore
        scores = predict_scores(model, X_val)

After every optimizer step, ``avg <- decay * avg + (1 - decay) * value`` for every float parameter and buffer (batch
norm's running mean and variance too, so the averaged weights are evaluated with statistics averaged alike; integer
buffers such as ``num_batches_tracked`` are copied). The effective decay is warmed up as in TensorFlow's
``ExponentialMovingAverage(num_updates=...)``: ``min(decay, (1 + t) / (10 + t))`` at update t, so early averages are
not dominated by the random initialisation. ``every`` updates only every k-th step (with decay ** k, the same time
constant), which divides the cost -- one pass over the parameters, ~4 MB x 2 reads + 1 write for the
3072-1024-1024-10 net -- by k.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

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
        self.shadow: dict[str, np.ndarray] = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}

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
        t = self.num_updates
        d = min(self.decay, (1.0 + t) / (10.0 + t)) ** self.every
        for name, value in self._live().items():
            avg = self.shadow[name]
            if avg.dtype.kind == "f":
                avg *= d
                avg += (1.0 - d) * value
            else:
                avg[...] = value
        self.num_updates += 1

    def on_step_end(self, trainer: Any) -> None:  # Trainer callback
        self.update()

    def state_dict(self) -> dict[str, np.ndarray]:
        """The averaged state, loadable with ``model.load_state_dict``."""
        return {k: v.copy() for k, v in self.shadow.items()}

    @contextlib.contextmanager
    def swapped(self) -> Iterator[Any]:
        """Inside the block the model holds the averaged state; the trained state is restored afterwards."""
        saved = {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.shadow)
        try:
            yield self.model
        finally:
            self.model.load_state_dict(saved)
