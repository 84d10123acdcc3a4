"""Cache directory and atomic, pickle-free array caches.

Decoded datasets are cached in the cache directory (``$CHAINRULE_DATA`` or
``~/.cache/chainrule``) as one folder of ``.npy`` files per entry. An entry is written into a
temporary folder that is renamed into place with ``os.replace``, so a reader never sees a
half-written entry and an interrupted write leaves nothing behind (each file is written with
``chainrule.utils.atomic``, the one atomic writer). Arrays are read with
``allow_pickle=False``; large ones are memory-mapped copy-on-write (``mmap_mode="c"``), so a
cached load costs milliseconds, pages are read on first use, and writing to the returned
arrays never touches the cache file. Each file's header is checked against its size before
the array is read: a header claiming more data than the file holds is never allocated. An entry
that cannot be read is treated as missing.

Only files this module wrote (inside the cache directory) are ever replaced or removed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from chainrule.utils.atomic import atomic_open

ENV_VAR = "CHAINRULE_DATA"


class CacheWarning(UserWarning):
    """A cache file could not be read or written; the data is (re)loaded from the source."""


def cache_dir() -> Path:
    """The data/cache directory: ``$CHAINRULE_DATA`` if set, else ``~/.cache/chainrule``.

    The directory is not created here; writers create it when they need it.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/chainrule").expanduser()


def digest(parts: Any) -> str:
    """SHA-256 hex digest of a JSON-serialisable description (stable across runs)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


_MMAP_BYTES = 1 << 20  # arrays at least this large are memory-mapped on load
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def _check_npy_size(file: Path) -> None:
    """Raise ValueError unless ``file``'s .npy header describes exactly the bytes it holds.

    ``np.load`` allocates what the header claims before reading, so a 12 KB file whose header
    says (400000, 32, 32, 3) would cost 1.2 GB; this check reads only the header.
    """
    with open(file, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version not in _HEADER_READERS:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, _, dtype = _HEADER_READERS[version](f)
        if dtype.hasobject:
            raise ValueError("object arrays are never cached")
        need = f.tell() + int(np.prod(shape, dtype=object)) * dtype.itemsize
    size = file.stat().st_size
    if size != need:
        raise ValueError(f"header says {shape} {dtype} ({need} bytes with the header) but the "
                         f"file has {size} bytes")


class ArrayCache:
    """One cached entry: the folder ``<root>/<kind>/<source>-<content>/`` of ``<name>.npy`` files.

    ``source`` identifies what is cached (e.g. the absolute path of an image folder and the
    decoding options); ``content`` identifies its current state (file list, sizes, mtimes).
    When the content changes the key changes, the entry is rebuilt, and stale entries of the
    same source are removed.
    """

    def __init__(self, kind: str, source: Any, content: Any, root: Path | None = None) -> None:
        self.folder = (root if root is not None else cache_dir()) / kind
        self.source_id = digest(source)[:20]
        self.content_id = digest(content)[:20]
        self.path = self.folder / f"{self.source_id}-{self.content_id}"

    def load(self) -> dict[str, np.ndarray] | None:
        """The cached arrays (large ones as copy-on-write memory maps), or None if absent."""
        if not self.path.is_dir():
            return None
        arrays = {}
        try:
            for file in sorted(self.path.glob("*.npy")):
                _check_npy_size(file)
                mmap = "c" if file.stat().st_size >= _MMAP_BYTES else None
                arrays[file.stem] = np.load(file, allow_pickle=False, mmap_mode=mmap)
        except (OSError, ValueError, EOFError) as exc:
            warnings.warn(f"ignoring unreadable cache entry {self.path}: {exc}", CacheWarning,
                          stacklevel=2)
            return None
        return arrays

    def save(self, arrays: Mapping[str, np.ndarray]) -> bool:
        """Write the entry and drop stale ones; warn and return False if the cache is unwritable."""
        for name, arr in arrays.items():
            if np.asarray(arr).dtype.hasobject:
                raise TypeError(f"cache array {name!r} has object dtype; only plain arrays are cached")
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                        dir=self.folder))
            for name, arr in arrays.items():
                with atomic_open(tmp / f"{name}.npy", "wb") as f:  # the one atomic writer
                    np.save(f, np.asarray(arr), allow_pickle=False)
            os.chmod(tmp, 0o755)
            if self.path.exists():  # an entry with this key is complete by construction
                shutil.rmtree(self.path, ignore_errors=True)
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            if not self.path.is_dir():  # a concurrent writer may have won the rename
                warnings.warn(f"could not write cache {self.path}: {exc}", CacheWarning,
                              stacklevel=2)
                return False
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        for stale in self.folder.glob(f"{self.source_id}-*"):
            if stale != self.path and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        return True
