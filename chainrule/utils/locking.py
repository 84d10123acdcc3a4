"""One writer per folder: an exclusive lock on ``FOLDER/.lock`` held for as long as the folder is written.

    with FolderLock("runs/a") as lock:          # FolderInUseError "runs/a is in use by pid 4242" if held
        ...                                      # write the folder; the lock goes with the process
    lock = create_locked_folder("runs/b", subdirs=("checkpoints", "plots"))   # a new folder, born locked

The lock is ``fcntl.flock(LOCK_EX | LOCK_NB)`` on the lock file, and the holder writes its pid into the file so that
a refused writer can say who holds it. The kernel drops a flock when its holder exits, however it exits
(``kill -9`` included), so a lock is never stale; the file stays behind, empty of meaning until locked again. The
file descriptor is not inherited by programs the holder executes (Python's descriptors are close-on-exec).

``create_locked_folder`` makes a new folder appear *with its lock already held*: it builds the folder (lock file,
pid and sub-folders) under a temporary name beside the target and renames it into place. ``rename`` refuses a
target that exists and is not empty, so of two writers creating one folder exactly one wins, and nobody ever sees
the folder without its lock. An existing empty folder is replaced (nothing is lost).

Run folders (``chainrule.train.runfolder``) and search folders (``chainrule.tune.store``) are locked this way.
Locks need POSIX ``fcntl`` (Linux, macOS): elsewhere ``FolderLock`` does not lock (``LOCKING`` is False).
``flock`` on network file systems is only as good as the file system's lock support (NFS v4: yes; some FUSE
mounts: no).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from chainrule.utils.atomic import _process_alive as _alive

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderLock", "FolderInUseError", "create_locked_folder", "LOCK_NAME", "LOCKING"]

LOCK_NAME = ".lock"
LOCKING = fcntl is not None
_PID_WAIT_S = 2.0  # how long a refused writer waits for a new holder to write its pid


class FolderInUseError(RuntimeError):
    """Another process holds the folder's lock. ``pid`` is the holder's (None if it could not be read)."""

    def __init__(self, folder: Path, pid: int | None):
        self.folder, self.pid = folder, pid
        who = f"pid {pid}" if pid is not None else "another process"
        if pid is not None and not _alive(pid):  # a child it forked still holds the descriptor
            who += " (which has exited; a process it started still holds the lock)"
        super().__init__(f"{folder} is in use by {who}: one process writes a folder at a time; wait for it to "
                         "finish (or stop it), or use another folder")


class FolderLock:
    """The exclusive lock of ``folder`` (its ``.lock`` file). ``acquire`` never waits: it succeeds or raises
    ``FolderInUseError`` naming the holder's pid. Also a context manager (acquire on enter, release on exit)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "FolderLock":
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd, self.folder)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (closing the file drops the flock). The file stays: removing it would race with a process
        that has just opened it."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def moved_to(self, folder: str | os.PathLike) -> None:
        """The locked folder was renamed to ``folder`` (the lock goes with the file, not the name)."""
        self.folder = Path(folder)

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"FolderLock({str(self.folder)!r}, held={self.held})"


def create_locked_folder(path: str | os.PathLike, subdirs: Iterable[str] = ()) -> FolderLock:
    """Create the folder ``path`` (with ``subdirs``) so that it appears already locked by this process; returns the
    held lock. Raises ``FileExistsError`` if ``path`` exists and is not an empty folder (the caller decides what
    that folder is); the parent folders are created as needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    lock = FolderLock(staging)
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes 0700; run folders are ordinary folders
        for sub in subdirs:
            (staging / sub).mkdir()
        lock.acquire()
        try:
            os.rename(staging, path)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise FileExistsError(errno.EEXIST, f"{path} exists and is not an empty folder", str(path)) from None
            raise
    except BaseException:
        lock.release()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    lock.moved_to(path)
    return lock


def _lock(fd: int, folder: Path) -> None:
    if fcntl is None:  # pragma: no cover - not POSIX
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FolderInUseError(folder, _holder(fd)) from None


def _holder(fd: int) -> int | None:
    """The pid in a held lock file; a holder that has just taken the lock may not have written it yet."""
    deadline = time.monotonic() + _PID_WAIT_S
    while True:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)
