"""Checkpoints: one atomic, pickle-free file per save, and a folder that keeps the last N plus the best.

A checkpoint is a plain ``.npz`` archive (loaded with ``allow_pickle=False``) holding

- every NumPy array of the saved state, under a readable path-like key (``model/layers.0.weight``), and
- one entry ``__meta__``: the UTF-8 bytes of a JSON document with the format version and the state's tree, in
  which each array is replaced by ``{"__ndarray__": key}``.

So any nested mix of dicts (string keys), lists, tuples, strings, numbers, booleans, None and arrays round-trips
exactly: ``load_checkpoint(p) == state`` (arrays bit for bit, RNG states as exact Python ints). Object arrays are
refused: they would need pickle.

Writes are atomic: the archive is written to a temporary file in the same directory, flushed and fsync'ed, then
moved over the target with ``os.replace`` (and the directory is fsync'ed), so a crash or SIGKILL leaves either the
old file or the new one, never half of one. Reading checks the zip's CRC of every member, so a truncated or
corrupted file raises ``CheckpointError`` instead of returning garbage. ``CheckpointManager`` names files
``step-00000120.npz``, keeps the newest ``keep_last`` of them plus ``best.npz``, and ``load_latest`` falls back to
the previous checkpoint with a ``CheckpointWarning`` when the newest one is unreadable.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

FORMAT_VERSION = 1
_META_KEY = "__meta__"
_STEP_FILE = re.compile(r"^step-(\d{8,})\.npz$")

logger = logging.getLogger("chainrule.train")


class CheckpointError(Exception):
    """A checkpoint file is missing, corrupt, truncated, of an unknown format version, or not a checkpoint."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (corrupt or truncated) and an older one used instead."""


# ---- the state tree <-> (JSON tree, arrays) ----------------------------------------------------------------


def pack_state(tree: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """Split a nested state into a JSON-able tree and a flat dict of arrays keyed by their path in the tree."""
    arrays: dict[str, np.ndarray] = {}

    def visit(node: Any, path: str) -> Any:
        if isinstance(node, np.ndarray):
            if node.dtype.hasobject:
                raise TypeError(f"checkpoint state at {path or '/'}: object arrays cannot be stored without pickle")
            key = path or "root"
            while key in arrays or key == _META_KEY:
                key += "_"
            arrays[key] = node
            return {"__ndarray__": key}
        if isinstance(node, Mapping):
            out = {}
            for k, v in node.items():
                if not isinstance(k, str):
                    raise TypeError(
                        f"checkpoint state at {path or '/'}: dict keys must be strings, got {k!r} "
                        f"({type(k).__name__})"
                    )
                out[k] = visit(v, f"{path}/{k}" if path else k)
            return out
        if isinstance(node, tuple):
            return {"__tuple__": [visit(v, f"{path}/{i}") for i, v in enumerate(node)]}
        if isinstance(node, list):
            return [visit(v, f"{path}/{i}") for i, v in enumerate(node)]
        if isinstance(node, (np.bool_, bool)):
            return bool(node)
        if isinstance(node, np.integer):
            return int(node)
        if isinstance(node, np.floating):
            return float(node)
        if node is None or isinstance(node, (str, int, float)):
            return node
        raise TypeError(
            f"checkpoint state at {path or '/'}: cannot store a {type(node).__name__}; use arrays, numbers, "
            "strings, lists and dicts"
        )

    return visit(tree, ""), arrays


def unpack_state(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Inverse of ``pack_state``."""
    if isinstance(tree, dict):
        if set(tree) == {"__ndarray__"}:
            key = tree["__ndarray__"]
            if key not in arrays:
                raise CheckpointError(f"checkpoint metadata refers to array {key!r}, which the archive lacks")
            return arrays[key]
        if set(tree) == {"__tuple__"}:
            return tuple(unpack_state(v, arrays) for v in tree["__tuple__"])
        return {k: unpack_state(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unpack_state(v, arrays) for v in tree]
    return tree


# ---- one file --------------------------------------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` (a dict) to ``path`` atomically (temp file, fsync, ``os.replace``). Returns the path."""
    path = Path(path)
    meta, arrays = pack_state(dict(state))
    doc = json.dumps({"format_version": FORMAT_VERSION, "state": meta}, separators=(",", ":"))
    arrays[_META_KEY] = np.frombuffer(doc.encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; raise ``CheckpointError`` if it is unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _META_KEY not in archive.files:
                raise CheckpointError(
                    f"{path} is an .npz archive but not a chainrule checkpoint (it has no {_META_KEY} entry)"
                )
            doc = json.loads(archive[_META_KEY].tobytes().decode("utf-8"))
            arrays = {k: archive[k] for k in archive.files if k != _META_KEY}  # reading checks each CRC
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(e).__name__}: {e})") from e
    version = doc.get("format_version") if isinstance(doc, dict) else None
    if not isinstance(version, int):
        raise CheckpointError(f"{path} has no format version; it is not a chainrule checkpoint")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}, newer than this chainrule reads ({FORMAT_VERSION}); "
            "upgrade chainrule to load it"
        )
    state = unpack_state(doc.get("state"), arrays)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the checkpoint's state is not a dict")
    return state


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
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


# ---- a folder of checkpoints -----------------------------------------------------------------------------


class CheckpointManager:
    """``directory/step-XXXXXXXX.npz`` files (the newest ``keep_last`` are kept) and ``directory/best.npz``."""

    def __init__(self, directory: str | os.PathLike, keep_last: int = 3):
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            raise ValueError(f"keep_last must be an integer >= 1, got {keep_last!r}")
        self.directory = Path(directory)
        self.keep_last = keep_last

    @property
    def best_path(self) -> Path:
        return self.directory / "best.npz"

    def step_path(self, step: int) -> Path:
        return self.directory / f"step-{step:08d}.npz"

    def steps(self) -> list[tuple[int, Path]]:
        """The step checkpoints present, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.iterdir():
            m = _STEP_FILE.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
        return sorted(found)

    def save(self, state: Mapping[str, Any], step: int, is_best: bool = False) -> Path:
        """Write the checkpoint of ``step`` (and ``best.npz`` if ``is_best``), then drop old step files."""
        self._remove_stale_temp_files()
        path = save_checkpoint(self.step_path(step), state)
        if is_best:
            self._copy_atomic(path, self.best_path)
        for _, old in self.steps()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def save_best(self, state: Mapping[str, Any]) -> Path:
        return save_checkpoint(self.best_path, state)

    def load_latest(self) -> tuple[dict[str, Any], Path] | None:
        """The newest readable step checkpoint and its path, or None when there is none at all.

        An unreadable newer file is skipped with a ``CheckpointWarning`` naming it and the fallback. If every
        file is unreadable, ``CheckpointError`` is raised.
        """
        candidates = self.steps()[::-1]
        if not candidates:
            return None
        errors = []
        for i, (_, path) in enumerate(candidates):
            try:
                state = load_checkpoint(path)
            except CheckpointError as e:
                errors.append(str(e))
                nxt = candidates[i + 1][1].name if i + 1 < len(candidates) else None
                msg = f"skipping checkpoint {path.name}: {e}" + (f"; falling back to {nxt}" if nxt else "")
                warnings.warn(msg, CheckpointWarning, stacklevel=2)
                continue
            return state, path
        raise CheckpointError(f"no readable checkpoint in {self.directory}: " + "; ".join(errors))

    def load_best(self) -> dict[str, Any]:
        return load_checkpoint(self.best_path)

    def _copy_atomic(self, src: Path, dst: Path) -> None:
        tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            try:
                os.link(src, tmp)  # same bytes, no copy; the step file may be pruned later, the link stays
            except OSError:
                shutil.copyfile(src, tmp)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(dst.parent)

    def _remove_stale_temp_files(self) -> None:
        """Temp files left by a process killed mid-write (never a finished checkpoint)."""
        if not self.directory.is_dir():
            return
        for p in self.directory.glob(".*.npz.tmp-*"):
            pid = p.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
                p.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
