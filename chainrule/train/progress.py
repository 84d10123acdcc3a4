"""``ProgressBar``: a trainer callback showing one tqdm bar per epoch with loss, learning rate and throughput.

Only drawn when the stream is a terminal (``isatty()``) and ``enabled`` is true (the CLI's ``--quiet`` turns it
off), so logs and CI output are never filled with carriage returns. Needs ``tqdm`` (``chainrule[cli]``); without
it the callback does nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class ProgressBar:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None, refresh_every: int = 5,
                 mininterval: float = 0.1):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(enabled) and _isatty(self.stream) and _has_tqdm()
        self.refresh_every = refresh_every
        self.mininterval = mininterval
        self._bar: Any = None
        self._t0 = 0.0
        self._samples = 0

    def on_epoch_begin(self, trainer: Any) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        loader = trainer.train_loader
        total = len(loader) if hasattr(loader, "__len__") else None
        done = trainer.epoch_step
        self._bar = tqdm(total=total, initial=done, desc=f"epoch {trainer.epoch + 1}/{trainer.epochs}",
                         unit="batch", file=self.stream, leave=False, dynamic_ncols=True,
                         mininterval=self.mininterval)
        self._t0, self._samples = time.perf_counter(), 0

    def on_step_end(self, trainer: Any) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        self._samples += getattr(trainer.train_loader, "batch_size", 0)
        if trainer.epoch_step % self.refresh_every == 0:
            rate = self._samples / max(time.perf_counter() - self._t0, 1e-9)
            h = trainer.history.steps
            self._bar.set_postfix_str(f"loss {h['loss'][-1]:.4f}  lr {h['lr'][-1]:.3g}  {rate:.0f} samples/s",
                                      refresh=False)

    def on_epoch_end(self, trainer: Any) -> None:
        self.close()

    def on_train_end(self, trainer: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _has_tqdm() -> bool:
    import importlib.util

    return importlib.util.find_spec("tqdm") is not None
