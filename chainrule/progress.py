"""Live progress for long work: one redrawn line on a terminal, plain periodic log lines anywhere else.

    from chainrule.progress import progress

    with progress(len(X), "kNN: nearest neighbours", unit="queries") as bar:
        for start in range(0, len(X), chunk):
            ...
            bar.update(len(block))

On a terminal (the stream's ``isatty()``) the bar is one line on stderr, redrawn at most every ``interval``
seconds, showing done/total, the rate, the elapsed time and an ETA; it appears only once the work has run for
``delay`` seconds, so quick calls print nothing, and it is erased when the work ends. Anywhere else (a pipe, a log
file, CI) nothing is redrawn: the ``chainrule.progress`` logger gets an INFO line every ``log_every`` seconds of
long work and one when it ends (visible where chainrule's INFO messages are, e.g. in the CLI without
``--quiet``). Nested work (a kNN prediction inside a tuning trial) shares the line: the outer tasks are shown
briefly on its left.

In a Jupyter kernel (an IPython shell with a kernel, the stream left at its default) the bar is an HTML
``<progress>`` element with the same text, shown once the work has run for ``delay`` seconds and updated in place
(one ``display_data`` message, then ``update_display_data`` messages at most every ``interval`` seconds); it stays
in the cell's output, complete, when the work ends.

Lines printed while a bar is live must not land on top of it: log through ``LogHandler`` (the CLI does) or print
with ``write(text)``; both erase the bar, print the line, and draw the bar again below it.

``set_enabled(False)`` (the CLI's ``--quiet``) or the environment variable ``CHAINRULE_PROGRESS=0`` turns all of
it off; worker processes (joblib, Dask, multiprocessing) never draw.
"""

from __future__ import annotations

import html
import logging
import math
import multiprocessing
import os
import shutil
import sys
import threading
import time
from typing import Any, Callable, TextIO

__all__ = ["Progress", "progress", "set_enabled", "is_enabled", "write", "LogHandler", "format_duration",
           "close_all"]

logger = logging.getLogger("chainrule.progress")

DELAY = 1.0       # default seconds of work before a bar appears on a terminal
LOG_EVERY = 10.0  # default seconds between plain progress lines elsewhere

_lock = threading.RLock()
_enabled = True
_active: list["Progress"] = []   # live tasks, outermost first
_drawn: dict[int, TextIO] = {}   # id(stream) -> stream that currently shows a bar line


def set_enabled(enabled: bool) -> bool:
    """Turn progress display on or off for this process; returns the previous setting."""
    global _enabled
    with _lock:
        previous, _enabled = _enabled, bool(enabled)
        if not _enabled:
            _erase_all()
    return previous


def close_all() -> None:
    """End every live task and erase its line (e.g. after an exception or Ctrl-C skipped their ``close``)."""
    with _lock:
        for p in list(reversed(_active)):
            p.close()
        _erase_all()


def is_enabled() -> bool:
    """Whether progress may be shown: not turned off, not ``CHAINRULE_PROGRESS=0``, not a worker process."""
    return (_enabled and os.environ.get("CHAINRULE_PROGRESS", "1").strip() != "0"
            and multiprocessing.current_process().name == "MainProcess")


def format_duration(seconds: float) -> str:
    """12.3 -> "12s", 83 -> "1:23", 4000 -> "1:06:40" (what an ETA needs, no more)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _notebook_kernel() -> bool:
    """True inside a Jupyter kernel: display messages reach a front end that renders HTML."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def _count(n: float, unit: str) -> str:
    if unit == "B":
        for size, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if n >= size:
                return f"{n / size:.1f} {suffix}"
        return f"{int(n)} B"
    return f"{int(n):,}"


class Progress:
    """One piece of long work with ``total`` units (None: unknown); see the module docstring.

    ``update(n)`` adds n units done, ``set(n)`` sets the count, ``note(text)`` replaces the text shown after the
    numbers (loss, accuracy, ...), ``close()`` ends it (also on leaving a ``with`` block).

    Args:
        total: units of work, or None when unknown (then no percentage or ETA).
        desc: what is being done, e.g. "HOG + colour features".
        unit: what is counted ("images", "steps", "B" for bytes); shown after the numbers.
        stream: where the bar is drawn (default: ``sys.stderr`` at the time of creation).
        enabled: False to show nothing; None (default) follows ``is_enabled()``.
        delay: seconds of work before the bar first appears (terminal) - quick work prints nothing (default:
            the module's ``DELAY``, 1 s).
        interval: the shortest time between redraws (terminal).
        log_every: seconds between the plain log lines (not a terminal); 0 turns them off (default: the module's
            ``LOG_EVERY``, 10 s).
        initial: units already done when this starts (a resumed run); not counted in the rate.
        rate: show the rate (units per second); False when the note shows a better one.
        time_left: a function giving the most seconds the work can still take (a time budget's remainder), or
            None: the ETA is then the smaller of that and the rate's estimate.
    """

    def __init__(self, total: float | None, desc: str, unit: str = "", *, stream: TextIO | None = None,
                 enabled: bool | None = None, delay: float | None = None, interval: float = 0.2,
                 log_every: float | None = None, initial: float = 0, rate: bool = True,
                 time_left: Callable[[], float] | None = None):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.delay = float(DELAY if delay is None else delay)
        self.interval = float(interval)
        self.log_every = float(LOG_EVERY if log_every is None else log_every)
        self.n = self.initial = initial
        self.show_rate = rate
        self.time_left = time_left
        self._cells: int | None = None  # width of the drawn bar, once chosen
        self.text = ""
        self.start = time.perf_counter()
        self._last_draw = -math.inf
        self._last_log = self.start
        self._logged = False
        self.closed = False
        on = is_enabled() if enabled is None else bool(enabled) and is_enabled()
        self.tty = on and _isatty(self.stream)
        self.notebook = on and not self.tty and stream is None and _notebook_kernel()
        self._display: Any = None  # the notebook's display handle, once shown
        self.log = on and not self.tty and not self.notebook and self.log_every > 0
        if self.tty:
            with _lock:
                _active.append(self)

    # ---- counting ------------------------------------------------------------------------------------------

    def update(self, n: float = 1) -> None:
        self.set(self.n + n)

    def set(self, n: float) -> None:
        self.n = n
        self._tick()

    def note(self, text: str) -> None:
        """The text shown after the numbers (e.g. "loss 0.4312"); drawn with the next update."""
        self.text = text

    def set_total(self, total: float | None) -> None:
        self.total = total

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def eta(self) -> float | None:
        """Seconds left at the average rate since the start, at most ``time_left()`` (None when unknown)."""
        done = self.n - self.initial
        by_rate = max(self.total - self.n, 0) * self.elapsed / done if self.total and done > 0 else None
        if self.time_left is None:
            return by_rate
        limit = max(float(self.time_left()), 0.0)
        return limit if by_rate is None else min(by_rate, limit)

    def _tick(self) -> None:
        if self.closed:
            return
        now = time.perf_counter()
        if self.tty:
            if now - self.start >= self.delay and now - self._last_draw >= self.interval:
                self._last_draw = now
                with _lock:
                    _draw(self.stream)
        elif self.notebook:
            if now - self.start >= self.delay and now - self._last_draw >= self.interval:
                self._last_draw = now
                self._show()
        elif self.log and now - self._last_log >= self.log_every:
            self._last_log = now
            self._logged = True
            logger.info("%s", self.line(plain=True))

    # ---- text ----------------------------------------------------------------------------------------------

    def line(self, plain: bool = False, width: int | None = None) -> str:
        """The status text: "desc: 40% |####      | 400/1,000 images [0:12<0:18, 33.1 images/s] note"."""
        done = self.n - self.initial
        elapsed = self.elapsed
        rate = done / elapsed if elapsed > 0 and done > 0 else None
        unit = f" {self.unit}" if self.unit and self.unit != "B" else ""
        if self.total:
            frac = min(max(self.n / self.total, 0.0), 1.0)
            counts = f"{_count(self.n, self.unit)}/{_count(self.total, self.unit)}{unit}"
            head = f"{self.desc}: {100 * frac:3.0f}%"
        else:
            frac = None
            counts = f"{_count(self.n, self.unit)}{unit}"
            head = f"{self.desc}:"
        eta = self.eta()
        timing = format_duration(elapsed) + (f"<{format_duration(eta)}" if eta is not None else "")
        speed = ""
        if rate is not None and self.show_rate:
            speed = (f", {_count(rate, self.unit)}/s" if self.unit == "B" else
                     f", {rate:,.0f}{unit}/s" if rate >= 100 else f", {rate:.3g}{unit}/s")
        tail = f"{counts} [{timing}{speed}]" + (f" {self.text}" if self.text else "")
        if plain:
            eta_text = f", ETA {format_duration(eta)}" if eta is not None else ""
            pct = f" ({100 * frac:.0f}%)" if frac is not None else ""
            return (f"{self.desc}: {counts}{pct}, {format_duration(elapsed)} elapsed{eta_text}"
                    + (f"; {self.text}" if self.text else ""))
        if frac is not None and width is not None:
            room = width - len(head) - len(tail) - 4
            if self._cells is None:  # chosen once, with slack, so the bar does not jump as the numbers change
                self._cells = min(room - 8, 30) if room - 8 >= 10 else 0
            if self._cells and room >= self._cells:
                filled = int(frac * self._cells)
                return f"{head} |{'#' * filled}{' ' * (self._cells - filled)}| {tail}"
        return f"{head} {tail}"

    def html(self) -> str:
        """The notebook form: an HTML ``<progress>`` bar (indeterminate without a total) and the status text."""
        bar = (f'<progress value="{self.n:g}" max="{self.total:g}" style="width: 30ch"></progress>' if self.total
               else '<progress style="width: 30ch"></progress>')
        return (f'<div class="chainrule-progress">{bar} '
                f'<code>{html.escape(self.line())}</code></div>')

    def _show(self) -> None:
        from IPython.display import HTML, display

        if self._display is None:
            self._display = display(HTML(self.html()), display_id=True)
        else:
            self._display.update(HTML(self.html()))

    def short(self) -> str:
        """The compact form used when inner work shares the line: "trials 3/20 <0:42"."""
        counts = f"{_count(self.n, self.unit)}/{_count(self.total, self.unit)}" if self.total else \
            _count(self.n, self.unit)
        eta = self.eta()
        return f"{self.desc} {counts}" + (f" <{format_duration(eta)}" if eta is not None else "")

    # ---- ending --------------------------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.notebook and self._display is not None:
            self._show()  # the final state stays in the cell's output
        if self.tty:
            with _lock:
                if self in _active:
                    _active.remove(self)
                if any(p.stream is self.stream for p in _active):
                    _draw(self.stream)
                else:
                    _erase(self.stream)
        elif self._logged:
            logger.info("%s: done, %s in %s", self.desc,
                        f"{_count(self.n, self.unit)}{' ' + self.unit if self.unit and self.unit != 'B' else ''}",
                        format_duration(self.elapsed))

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(total: float | None, desc: str, unit: str = "", **kwargs: Any) -> Progress:
    """A ``Progress`` (usable as a context manager); see the class for the keyword arguments."""
    return Progress(total, desc, unit, **kwargs)


# ---- the shared terminal line ------------------------------------------------------------------------------


def _width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return shutil.get_terminal_size((100, 24)).columns


def _draw(stream: TextIO) -> None:
    """Redraw the line of ``stream``: the innermost visible task in full, its outer tasks in short form."""
    tasks = [p for p in _active if p.stream is stream]
    visible = [p for p in tasks if time.perf_counter() - p.start >= p.delay]
    if not visible or not is_enabled():
        return
    width = max(_width(stream) - 1, 20)
    outer = " > ".join(p.short() for p in visible[:-1])
    prefix = outer + " > " if outer else ""
    text = prefix + visible[-1].line(width=width - len(prefix))
    if len(text) > width:
        text = text[:width - 1] + "~"
    try:
        stream.write("\r" + text + "\x1b[K")
        stream.flush()
    except (OSError, ValueError):  # the terminal went away: stop drawing on it
        for p in tasks:
            p.tty = False
        return
    _drawn[id(stream)] = stream


def _erase(stream: TextIO) -> None:
    if _drawn.pop(id(stream), None) is not None:
        try:
            stream.write("\r\x1b[K")
            stream.flush()
        except (OSError, ValueError):
            pass


def _erase_all() -> None:
    for stream in list(_drawn.values()):
        _erase(stream)


def _redraw_all() -> None:
    for stream in {id(p.stream): p.stream for p in _active}.values():
        _draw(stream)


def write(text: str, stream: TextIO | None = None) -> None:
    """Print ``text`` and a newline to ``stream`` (default stdout) without landing on a live bar."""
    stream = stream if stream is not None else sys.stdout
    with _lock:
        bars = bool(_drawn) and (id(stream) in _drawn or _isatty(stream))
        if bars:
            _erase_all()
        stream.write(text + "\n")
        stream.flush()
        if bars:
            _redraw_all()


class LogHandler(logging.StreamHandler):
    """A ``logging.StreamHandler`` that erases the live progress bar before each record and redraws it after."""

    def emit(self, record: logging.LogRecord) -> None:
        with _lock:
            bars = bool(_drawn)
            if bars:
                _erase_all()
            super().emit(record)
            if bars:
                _redraw_all()
