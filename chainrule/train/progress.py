"""``ProgressBar``: a trainer callback showing the whole run's progress - steps done of all the run's steps, a
whole-run ETA (at most what a ``TimeBudget`` among the trainer's callbacks has left), and the current epoch, loss,
learning rate and throughput - through ``chainrule.progress``.

On a terminal it is one redrawn line (the trainer's epoch log lines print above it, never over it, when they go
through ``chainrule.progress.LogHandler`` as in the CLI); elsewhere it logs a plain line every ``log_every``
seconds, so logs and CI output never fill with carriage returns. ``enabled=False`` (the CLI's ``--quiet``) turns
it off.
"""

from __future__ import annotations

from typing import Any, TextIO

from chainrule.progress import Progress
from chainrule.train.budget import TimeBudget


class ProgressBar:
    """Trainer callback (``Trainer(..., callbacks=[ProgressBar()])``).

    Args:
        enabled: False shows nothing.
        stream: where the terminal line goes (default: stderr).
        refresh_every: steps between updates of the loss / lr / throughput text.
        mininterval: the shortest time between redraws, in seconds.
        delay: seconds before the line first appears (a run shorter than that prints nothing; default:
            ``chainrule.progress.DELAY``).
        log_every: seconds between plain progress lines when the stream is not a terminal (0: none; default:
            ``chainrule.progress.LOG_EVERY``).
        desc: what the line is called, e.g. "training" or the model's name.
    """

    def __init__(self, enabled: bool = True, stream: TextIO | None = None, refresh_every: int = 5,
                 mininterval: float = 0.2, delay: float | None = None, log_every: float | None = None,
                 desc: str = "training"):
        self.enabled = bool(enabled)
        self.stream = stream
        self.refresh_every = max(int(refresh_every), 1)
        self.mininterval = mininterval
        self.delay = delay
        self.log_every = log_every
        self.desc = desc
        self._bar: Progress | None = None

    def on_train_begin(self, trainer: Any) -> None:
        self.close()
        if not self.enabled:
            return
        per_epoch = len(trainer.train_loader) if hasattr(trainer.train_loader, "__len__") else None
        total = per_epoch * trainer.epochs if per_epoch else None
        max_steps = getattr(trainer, "max_steps", None)  # a run cut at a number of steps
        if max_steps is not None:
            total = min(total, max_steps) if total else max_steps
        budget = next((cb for cb in trainer.callbacks if isinstance(cb, TimeBudget)), None)
        time_left = None if budget is None else (lambda: budget.seconds - budget.elapsed())  # a budget ends it sooner
        self._bar = Progress(total, self.desc, "steps", stream=self.stream, delay=self.delay,
                             interval=self.mininterval, log_every=self.log_every, initial=trainer.step, rate=False,
                             time_left=time_left)
        self._bar.note(f"epoch {trainer.epoch + 1}/{trainer.epochs}")

    def on_step_end(self, trainer: Any) -> None:
        if self._bar is None:
            return
        if trainer.epoch_step % self.refresh_every == 0 or trainer.epoch_step == 1:
            self._bar.note(self._text(trainer))
        self._bar.set(trainer.step)

    def on_epoch_end(self, trainer: Any) -> None:
        if self._bar is None:
            return
        last = trainer.history.epochs[-1] if trainer.history.epochs else {}
        note = f"epoch {trainer.epoch}/{trainer.epochs} done"
        if last.get("val_acc") is not None:
            note += f" · val_acc {last['val_acc']:.4f}"
        self._bar.note(note)
        self._bar.set(trainer.step)

    def on_train_end(self, trainer: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    @staticmethod
    def _text(trainer: Any) -> str:
        n = len(trainer.train_loader) if hasattr(trainer.train_loader, "__len__") else None
        parts = [f"epoch {trainer.epoch + 1}/{trainer.epochs}" + (f" step {trainer.epoch_step}/{n}" if n else "")]
        steps = trainer.history.steps
        if steps["loss"]:
            parts.append(f"loss {steps['loss'][-1]:.4f}")
            parts.append(f"lr {steps['lr'][-1]:.3g}")
        totals = trainer.epoch_totals
        if totals.time_s > 0:
            parts.append(f"{totals.samples / totals.time_s:,.0f} samples/s")
        return " · ".join(parts)
