"""Ctrl-C and ``kill``: finish the current step, write a checkpoint, then stop (``chainrule train``).

    with StopOnSignal() as stop:             # SIGINT and SIGTERM handled from here on (main thread only)
        stop.training = True                 # while a trainer runs: a signal only asks it to stop
        est.fit(..., callbacks=[stop])       # the callback sets trainer.stop_training after the step
        stop.training = False
        stop.check()                         # raises Interrupted if a signal came during the fit

While ``training`` is set, the first SIGINT or SIGTERM only sets a flag: the trainer finishes the step it is in,
stops, and writes its checkpoint (``Trainer.fit`` saves one when a callback stops it inside an epoch; at an epoch
end the epoch's own checkpoint is written). Outside training (loading data, writing the report), and on a second
signal, ``Interrupted`` is raised at once. ``Interrupted.exit_code`` is the shell's: 128 + the signal number (130
for SIGINT, 143 for SIGTERM). The previous handlers are put back on exit.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["StopOnSignal", "Interrupted", "SIGNALS"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """The process was asked to stop (SIGINT / SIGTERM). ``signum``; ``exit_code`` = 128 + signum."""

    def __init__(self, signum: int, message: str = ""):
        self.signum = signum
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopOnSignal:
    """Context manager handling SIGINT and SIGTERM (see the module docstring); also a ``Trainer`` callback."""

    def __init__(self) -> None:
        self.training = False
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():  # signals are only delivered there
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.training and self.signum is None:
            self.signum = signum  # the trainer stops after its current step (callbacks below)
            return
        raise Interrupted(self.signum or signum)

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)

    # ---- Trainer callback ----------------------------------------------------------------------------------

    def on_step_end(self, trainer: Any) -> None:
        if self.signum is not None:
            trainer.stop_training = True

    on_epoch_end = on_step_end
