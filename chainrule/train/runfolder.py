"""A run folder: everything one training run leaves behind, in one directory.

    runs/<name>/
        config.toml        the resolved configuration: the model, the run settings and every parameter of the
                           estimator (``chainrule.commands.config``), the library version
        model.npz          the fitted estimator (``chainrule.classifiers.load``), written when training ends
        metrics.csv        one row per step and per epoch (see chainrule.train.history)
        metrics.jsonl      the same rows as JSON lines, epoch rows with diagnostics
        summary.json       final and best accuracies, timings, throughput
        checkpoints/       step-XXXXXXXX.npz (the last few) and best.npz (the best validation epoch so far)
        plots/             PNG plots
        report.html        one self-contained page with the summary and every plot
        .lock              the writer's lock (``chainrule.utils.locking``): one process writes a run at a time

One writer: ``create()`` makes a new folder appear already locked (an exclusive create: of two runs started into one
folder, one gets it, the other is refused), ``lock()`` locks an existing one (``--resume``), and the lock is held
until ``release()`` (or the process ends, however it ends). Another writer gets ``FolderInUseError`` naming the
holder's pid.

TOML is read with the standard library's ``tomllib`` (Python >= 3.11; ``tomli`` on older Pythons) and written
with ``dumps_toml`` below, which handles what a configuration holds: strings, numbers, booleans, lists of those,
and tables of them (``None`` values are left out: TOML has no null).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

from chainrule.train.checkpoint import CheckpointManager
from chainrule.train.history import write_json
from chainrule.utils.atomic import atomic_write_text
from chainrule.utils.locking import LOCK_NAME, FolderInUseError, FolderLock, create_locked_folder

try:  # Python >= 3.11
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    try:
        import tomli as _toml  # type: ignore[no-redef]
    except ModuleNotFoundError:
        _toml = None  # type: ignore[assignment]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# ---- TOML ------------------------------------------------------------------------------------------------


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML file; errors name the file and say what is wrong."""
    if _toml is None:  # pragma: no cover - Python 3.10 without tomli
        raise RuntimeError("reading TOML on Python < 3.11 needs the 'tomli' package: pip install tomli")
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _toml.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except _toml.TOMLDecodeError as e:
        raise ValueError(f"config file {path} is not valid TOML: {e}") from None


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # shortest round-trip form; always has '.' or 'e'
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x, f"{where}[{i}]") for i, x in enumerate(v)) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x, f'{where}.{k}')}"
                               for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"cannot write {where} = {v!r} ({type(v).__name__}) to TOML; use str, number, bool or list")


def dumps_toml(config: Mapping[str, Any]) -> str:
    """A TOML document for ``config``: top-level scalars first, then one ``[table]`` per nested dict."""
    lines = []
    tables = []
    for key, value in config.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value, key)}")
    for key, table in tables:
        lines.append("")
        lines.append(f"[{_toml_key(key)}]")
        for k, v in table.items():
            if v is not None:
                lines.append(f"{_toml_key(k)} = {_toml_value(v, f'{key}.{k}')}")
    return "\n".join(lines).lstrip("\n") + "\n"


def write_toml(path: str | os.PathLike, config: Mapping[str, Any], header: str | None = None) -> None:
    """Write ``config`` as TOML atomically; ``header`` lines become comments at the top."""
    path = Path(path)
    text = dumps_toml(config)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    atomic_write_text(path, text)


# ---- the folder ------------------------------------------------------------------------------------------


def default_run_name(*parts: str) -> str:
    """``<part>-<part>-YYYYmmdd-HHMMSS``, with characters that are awkward in paths replaced."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    clean = [re.sub(r"[^A-Za-z0-9_.+-]+", "_", p).strip("_") for p in parts if p]
    return "-".join([*clean, stamp])


class RunExistsError(FileExistsError):
    """The folder asked for a new run already holds one (or other files): nothing was written there."""


SUBDIRS = ("checkpoints", "plots")


class RunFolder:
    """Paths and small readers/writers of one run folder (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock: FolderLock | None = None

    config_path = property(lambda self: self.path / "config.toml")
    metrics_csv = property(lambda self: self.path / "metrics.csv")
    metrics_jsonl = property(lambda self: self.path / "metrics.jsonl")
    summary_path = property(lambda self: self.path / "summary.json")
    model_path = property(lambda self: self.path / "model.npz")
    report_path = property(lambda self: self.path / "report.html")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    plots_dir = property(lambda self: self.path / "plots")

    def create(self) -> "RunFolder":
        """Create this folder for a new run, exclusively and locked (held until ``release()``).

        Raises ``RunExistsError`` if it holds a run (a config.toml) or any other files, ``FolderInUseError`` if
        another process holds it. A folder left by a run that was killed before it wrote config.toml (nothing
        but the empty skeleton) is taken over. An empty folder is used."""
        if self.held:
            return self
        try:
            self._lock = create_locked_folder(self.path, SUBDIRS)
            return self
        except FileExistsError:
            pass
        self.check_new()  # raises unless it is a skeleton nobody holds
        lock = FolderLock(self.path).acquire()
        try:
            self.check_new()  # (again, now that we hold it: the holder may have written it meanwhile)
            for sub in SUBDIRS:
                (self.path / sub).mkdir(exist_ok=True)
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        return self

    def check_new(self) -> None:
        """Raise unless a new run may be created here: ``FolderInUseError`` if a process holds it, ``RunExistsError``
        if it holds a run or other files. Reads only; a missing folder passes."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise RunExistsError(f"{self.path} exists and is not a folder; choose another --out")
        if (self.path / LOCK_NAME).is_file() and not self.held:
            with FolderLock(self.path):  # FolderInUseError if held; released at once otherwise
                pass
        if self.exists():
            raise RunExistsError(f"{self.path} already holds a run; continue it with --resume {self.path}, or "
                                 "choose another --out")
        extra = [p.name for p in sorted(self.path.iterdir()) if not _skeleton_entry(p)]
        if extra:
            shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
            raise RunExistsError(f"{self.path} exists and is not a chainrule run folder (it holds {shown}); "
                                 "choose another --out (or an empty folder)")

    def lock(self) -> "RunFolder":
        """Lock this existing run folder for writing (``--resume``); ``FolderInUseError`` if another process holds
        it."""
        if not self.held:
            self._lock = FolderLock(self.path).acquire()
        return self

    @property
    def held(self) -> bool:
        return self._lock is not None and self._lock.held

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def remove(self) -> None:
        """Delete the whole folder (a new run whose setup failed: nothing of it is worth keeping), then release."""
        import shutil

        if not self.held:
            raise RuntimeError(f"{self.path}: only the writer holding the lock may remove a run folder")
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()

    def exists(self) -> bool:
        return self.config_path.is_file()

    def checkpoints(self, keep_last: int = 3, extra: Mapping[str, Any] | None = None) -> CheckpointManager:
        """The run's checkpoints; ``extra`` entries are stored in each one (``chainrule train``: ``{"run": its
        settings}``, what ``--resume`` checks the request against)."""
        return CheckpointManager(self.checkpoint_dir, keep_last=keep_last, extra=extra)

    def write_config(self, config: Mapping[str, Any]) -> None:
        header = (f"chainrule run configuration, resolved (defaults < config file < command-line flags).\n"
                  f"Written {_dt.datetime.now().isoformat(timespec='seconds')}.")
        write_toml(self.config_path, config, header=header)

    def read_config(self) -> dict[str, Any]:
        return load_toml(self.config_path)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_json(self.summary_path, summary)

    def read_summary(self) -> dict[str, Any]:
        with open(self.summary_path, encoding="utf-8") as f:
            return json.load(f)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"


def _skeleton_entry(p: Path) -> bool:
    """What a run folder holds before its config.toml: the lock file and empty sub-folders."""
    if p.name == LOCK_NAME:
        return p.is_file()
    return p.name in SUBDIRS and p.is_dir() and not any(p.iterdir())


__all__ = ["RunFolder", "RunExistsError", "FolderInUseError", "load_toml", "dumps_toml", "write_toml",
           "default_run_name"]
