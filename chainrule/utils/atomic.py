"""Atomic file writes: a reader (or a crash, or ``kill -9``) sees the old file or the new one, never half of one.

    with atomic_open("runs/a/summary.json", "w") as f:      # a temp file in the same folder
        f.write(text)                                        # flushed, fsync'ed, renamed over the target
    atomic_write_text(path, text); atomic_write_bytes(path, data); atomic_write_json(path, obj)
    with atomic_open("plot.png", "wb") as f: fig.savefig(f, format="png")

The steps: create ``.<name>.<pid>.<random>.tmp`` next to the target (so the rename never crosses file systems), write,
flush, ``fsync`` the file, ``os.replace`` it over the target, ``fsync`` the folder (so the rename itself survives a
power cut; a no-op where folders cannot be opened). On any error the temp file is removed; an ``OSError`` (disk
full, permission denied, ...) is re-raised naming the target file, any other exception propagates unchanged
(with a note naming the file on Python >= 3.11). The target's parent folder must exist unless ``mkdir=True``.
Every file chainrule writes goes through here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = ["atomic_open", "atomic_write_text", "atomic_write_bytes", "atomic_write_json", "fsync_dir",
           "remove_stale_temp_files", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".tmp"


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make renames in ``directory`` durable (POSIX); silently a no-op where a folder cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _named(e: OSError, path: Path) -> OSError:
    """``e`` as an OSError of the same class whose message names ``path``."""
    if e.filename is not None and str(path) in str(e):
        return e
    message = f"cannot write {path}: {e.strerror or e}"
    try:
        return type(e)(e.errno, message) if e.errno is not None else type(e)(message)
    except TypeError:  # an OSError subclass with another constructor
        return OSError(e.errno, message)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None, mkdir: bool = False, permissions: int = 0o644) -> Iterator[IO[Any]]:
    """A file object (``mode`` "w" or "wb") whose contents replace ``path`` atomically when the block ends."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX)
    except OSError as e:
        raise _named(e, path) from e
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, permissions)  # mkstemp creates 0600; these are ordinary readable files
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _named(e, path) from e
        if hasattr(e, "add_note"):  # Python >= 3.11
            e.add_note(f"(while writing {path}; nothing was written there)")
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, **kwargs: Any) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb", **kwargs) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, **kwargs: Any) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_open(path, "w", **kwargs) as f:
        f.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, allow_nan: bool = False,
                      default: Any = None, **kwargs: Any) -> Path:
    """Write ``obj`` as JSON plus a newline atomically; returns the path. The document is built before the file is
    opened, so a value JSON cannot hold (or a non-finite float, unless ``allow_nan``) raises with nothing written."""
    text = json.dumps(obj, indent=indent, allow_nan=allow_nan, default=default) + "\n"
    return atomic_write_text(path, text, **kwargs)


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+" + re.escape(TEMP_SUFFIX) + "$")


def remove_stale_temp_files(directory: str | os.PathLike, name_glob: str = "*") -> list[Path]:
    """Remove the temp files that writers killed mid-write left in ``directory`` (those of targets matching
    ``name_glob`` whose writing process is gone); returns what was removed. Live writers' files are kept."""
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for p in directory.glob(f".{name_glob}.*{TEMP_SUFFIX}"):
        m = _TEMP_NAME.match(p.name)
        if m and int(m["pid"]) != os.getpid() and not _process_alive(int(m["pid"])):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, as another user's process
        return True
    return True
