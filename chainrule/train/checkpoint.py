"""Checkpoints: one atomic, pickle-free file per save, and a folder that keeps the last N plus the best.

A checkpoint is a plain ``.npz`` archive (loaded with ``allow_pickle=False``) holding

- every NumPy array of the saved state, under a readable path-like key (``model/layers.0.weight``), and
- one entry ``__meta__``: the UTF-8 bytes of a JSON document with the format version and the state's tree, in
  which each array is replaced by ``{"__ndarray__": key}``.

So any nested mix of dicts (string keys), lists, tuples, strings, numbers, booleans, None and arrays round-trips
exactly: ``load_checkpoint(p) == state`` (arrays bit for bit, RNG states as exact Python ints). Object arrays are
refused: they would need pickle.

The format is ``chainrule.utils.serial``'s (shared with estimator files); ``pack_state`` / ``unpack_state`` are its
``pack_tree`` / ``unpack_tree``. Writes are atomic (``chainrule.utils.atomic``: a temporary file in the same
directory, fsync, ``os.replace``, fsync of the directory), so a crash or SIGKILL leaves either the old file or the
new one, never half of one. Reading checks the zip's CRC of every member, so a truncated or
corrupted file raises ``CheckpointError`` instead of returning garbage, and (format version 2) each array's dtype,
shape and SHA-256 against the manifest written with the file, so an array rewritten afterwards raises
``CheckpointIntegrityError``, as does a state that ``validate`` (e.g. ``chainrule.train.resume.check_trainer_state``:
counters in range, float weights) refuses. ``CheckpointManager`` names files ``step-00000120.npz``, keeps the newest
``keep_last`` of them plus ``best.npz``; ``load_latest`` falls back to the previous checkpoint with a
``CheckpointWarning`` when the newest one is unreadable (damaged: truncated, bad CRC), but refuses one that is
readable and fails its integrity checks (changed after it was written), naming the newest earlier checkpoint that is
intact: it does not silently discard what someone did to the file.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

from chainrule.utils.atomic import TEMP_SUFFIX, atomic_write_bytes, fsync_dir, remove_stale_temp_files
from chainrule.utils.serial import FileFormatError, IntegrityError, load_tree, pack_tree, save_tree, unpack_tree

FORMAT_VERSION = 2  # 2: with the manifest of array dtypes, shapes and SHA-256s (required); 1: without
_STEP_FILE = re.compile(r"^step-(\d{8,})\.npz$")

logger = logging.getLogger("chainrule.train")


class CheckpointError(Exception):
    """A checkpoint file is missing, corrupt, truncated, of an unknown format version, or not a checkpoint."""


class CheckpointIntegrityError(CheckpointError):
    """A readable checkpoint whose contents fail the checks: an array differs from the file's manifest, or the state
    is out of range (``validate``). The file was changed after it was written."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (corrupt or truncated) and an older one used instead."""


# ---- one file (the format is chainrule.utils.serial's) ----------------------------------------------------


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` (a dict) to ``path`` atomically (``chainrule.utils.atomic``). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_tree(path, dict(state), format_version=FORMAT_VERSION)


def load_checkpoint(path: str | os.PathLike,
                    validate: Callable[[Mapping[str, Any]], None] | None = None) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; raise ``CheckpointError`` if it is unreadable and
    ``CheckpointIntegrityError`` if its arrays differ from its manifest or ``validate(state)`` raises ValueError."""
    try:
        _, state = load_tree(path, max_version=FORMAT_VERSION, manifest_from=2)
    except IntegrityError as e:
        raise CheckpointIntegrityError(str(e)) from e
    except FileFormatError as e:
        raise CheckpointError(str(e).replace("chainrule file", "chainrule checkpoint")
                              .replace("no chainrule checkpoint at", "no checkpoint file at")) from e
    if not isinstance(state, dict):
        raise CheckpointIntegrityError(f"{path}: the checkpoint's state is not a dict")
    if validate is not None:
        try:
            validate(state)
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointIntegrityError(f"{path}: {e}") from e
    return state


# ---- a folder of checkpoints -----------------------------------------------------------------------------


class CheckpointManager:
    """``directory/step-XXXXXXXX.npz`` files (the newest ``keep_last`` are kept) and ``directory/best.npz``."""

    def __init__(self, directory: str | os.PathLike, keep_last: int = 3, extra: Mapping[str, Any] | None = None):
        """``extra``: entries added to every state saved (e.g. ``{"run": config}``: what the CLI checks a resume
        against); they must not collide with the state's own keys."""
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
            raise ValueError(f"keep_last must be an integer >= 1, got {keep_last!r}")
        self.directory = Path(directory)
        self.keep_last = keep_last
        self.extra = dict(extra or {})

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
        if self.extra:
            clash = sorted(set(self.extra) & set(state))
            if clash:
                raise ValueError(f"CheckpointManager extra entries {clash} collide with the state's own keys")
            state = {**state, **self.extra}
        path = save_checkpoint(self.step_path(step), state)
        if is_best:
            self._copy_atomic(path, self.best_path)
        for _, old in self.steps()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self, validate: Callable[[Mapping[str, Any]], None] | None = None
                    ) -> tuple[dict[str, Any], Path] | None:
        """The newest readable step checkpoint and its path, or None when there is none at all.

        An unreadable (damaged) newer file is skipped with a ``CheckpointWarning`` naming it and the fallback. If
        every file is unreadable, ``CheckpointError`` is raised. A readable file that fails its integrity checks
        (manifest, ``validate``) raises ``CheckpointIntegrityError`` naming it and the newest earlier checkpoint that
        is intact, if any.
        """
        candidates = self.steps()[::-1]
        if not candidates:
            return None
        errors = []
        for i, (_, path) in enumerate(candidates):
            try:
                state = load_checkpoint(path, validate)
            except CheckpointIntegrityError as e:
                raise CheckpointIntegrityError(f"{e}. {self._intact_before(candidates[i + 1:], validate, path)}") \
                    from e
            except CheckpointError as e:
                errors.append(str(e))
                nxt = candidates[i + 1][1].name if i + 1 < len(candidates) else None
                msg = f"skipping checkpoint {path.name}: {e}" + (f"; falling back to {nxt}" if nxt else "")
                warnings.warn(msg, CheckpointWarning, stacklevel=2)
                continue
            return state, path
        raise CheckpointError(f"no readable checkpoint in {self.directory}: " + "; ".join(errors))

    def _intact_before(self, older: list[tuple[int, Path]], validate: Any, bad: Path) -> str:
        for _, path in older:
            try:
                load_checkpoint(path, validate)
            except CheckpointError:
                continue
            return (f"The earlier checkpoint {path.name} is intact: move {bad.name} out of {self.directory} to "
                    f"continue from {path.name}")
        return "No earlier checkpoint is intact"

    def load_best(self) -> dict[str, Any]:
        return load_checkpoint(self.best_path)

    def _copy_atomic(self, src: Path, dst: Path) -> None:
        """``dst`` becomes a hard link to ``src`` (same bytes, no copy; the step file may be pruned later, the link
        stays), or an atomic copy where links are not possible."""
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link{TEMP_SUFFIX}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
            os.replace(tmp, dst)
        except OSError:
            tmp.unlink(missing_ok=True)
            atomic_write_bytes(dst, src.read_bytes())
            return
        fsync_dir(dst.parent)

    def _remove_stale_temp_files(self) -> None:
        """Temp files left by a process killed mid-write (never a finished checkpoint, never a live writer's)."""
        remove_stale_temp_files(self.directory, "*.npz")


pack_state, unpack_state = pack_tree, unpack_tree
