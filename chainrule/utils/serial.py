"""The one pickle-free file format: a nested state of dicts, lists, tuples, scalars and NumPy arrays in one ``.npz``.

    save_tree("model.npz", {"W": W, "meta": {"lr": 0.1, "sizes": (3, 2)}}, header={"format": "chainrule.x"})
    header, tree = load_tree("model.npz")       # tree == the saved state: arrays bit for bit, tuples as tuples

The archive holds every array of the tree under a readable path-like key (``model/0.weight``) and one entry
``__meta__``: the UTF-8 bytes of a JSON document ``{**header, "format_version": ..., "state": tree}`` in which
each array is replaced by ``{"__ndarray__": key}`` (and each tuple by ``{"__tuple__": [...]}``). Loading uses
``allow_pickle=False``, so reading a file runs no code from it; object arrays are refused when saving. Reading
checks the zip CRC of every member, so a truncated or corrupted file raises ``FileFormatError`` instead of
returning garbage, and the document's manifest (``"arrays"``: each array's dtype, shape and SHA-256) is checked
before anything is returned, so an array rewritten after the file was made (by hand, by another tool: the zip's CRC
is then valid again) raises ``IntegrityError`` naming the file and the array; so does a change to the JSON part
(counters, settings: ``"state_sha256"``). Files are written with
``chainrule.utils.atomic`` (all or nothing). Estimator files
(``chainrule.classifiers.io``) and training checkpoints (``chainrule.train.checkpoint``) are both this format,
with their own ``header``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from chainrule.utils.atomic import atomic_write_bytes

__all__ = ["save_tree", "load_tree", "pack_tree", "unpack_tree", "FileFormatError", "IntegrityError", "META_KEY",
           "manifest", "seal"]

META_KEY = "__meta__"
_PLAIN = (str, int, float, bool, type(None))  # JSON as they are (exact types: not NumPy scalars or subclasses)


class FileFormatError(ValueError):
    """A file is missing, corrupt, truncated, or not in the format asked for; the message says which."""


class IntegrityError(FileFormatError):
    """A readable file whose arrays are not the ones its manifest records (changed after it was written)."""


def _sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).reshape(-1).view(np.uint8)).hexdigest()


def _state_sha256(meta: Any) -> str:
    """SHA-256 of the JSON part of the tree (counters, settings, array references), canonically encoded."""
    return hashlib.sha256(json.dumps(meta, separators=(",", ":"), sort_keys=True).encode("utf-8")).hexdigest()


def manifest(arrays: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
    """{key: [dtype, shape, SHA-256 of the bytes]} of every array (what ``save_tree`` records)."""
    return {k: [a.dtype.str, list(a.shape), _sha256(a)] for k, a in arrays.items()}


def _verify(path: Path, recorded: Any, arrays: Mapping[str, np.ndarray]) -> None:
    if not isinstance(recorded, dict):
        raise IntegrityError(f"{path}: the manifest of its arrays is malformed")
    missing, extra = sorted(set(recorded) - set(arrays)), sorted(set(arrays) - set(recorded))
    if missing or extra:
        raise IntegrityError(f"{path} does not hold the arrays its manifest lists"
                             + (f"; missing: {', '.join(missing)}" if missing else "")
                             + (f"; not in the manifest: {', '.join(extra)}" if extra else ""))
    for key, a in arrays.items():
        entry = recorded[key]
        if not (isinstance(entry, list) and len(entry) == 3):
            raise IntegrityError(f"{path}: the manifest entry of array {key!r} is malformed")
        dtype, shape, digest = entry
        if a.dtype.str != dtype or list(a.shape) != shape:
            raise IntegrityError(f"{path}: array {key!r} is {a.dtype.str} {list(a.shape)}, but the file was written "
                                 f"with {dtype} {shape}: it was changed after it was written")
        if _sha256(a) != digest:
            raise IntegrityError(f"{path}: array {key!r} does not match the SHA-256 recorded when the file was "
                                 "written: it was changed after it was written (or damaged)")


def pack_tree(tree: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """Split a nested state into a JSON-able tree and a flat dict of arrays keyed by their path in the tree."""
    arrays: dict[str, np.ndarray] = {}

    def visit(node: Any, path: str) -> Any:
        kind = type(node)
        if kind in _PLAIN:
            return node
        if kind is list and all(type(v) in _PLAIN for v in node):  # e.g. a random generator's state words
            return list(node)
        if isinstance(node, np.ndarray):
            if node.dtype.hasobject:
                raise TypeError(f"state at {path or '/'}: object arrays cannot be stored without pickle")
            key = path or "root"
            while key in arrays or key == META_KEY:
                key += "_"
            arrays[key] = node
            return {"__ndarray__": key}
        if isinstance(node, Mapping):
            out = {}
            for k, v in node.items():
                if not isinstance(k, str):
                    raise TypeError(f"state at {path or '/'}: dict keys must be strings, got {k!r} "
                                    f"({type(k).__name__})")
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
        raise TypeError(f"state at {path or '/'}: cannot store a {type(node).__name__}; use arrays, numbers, "
                        "strings, lists and dicts")

    return visit(tree, ""), arrays


def unpack_tree(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Inverse of ``pack_tree``."""
    if isinstance(tree, dict):
        if set(tree) == {"__ndarray__"}:
            key = tree["__ndarray__"]
            if key not in arrays:
                raise FileFormatError(f"the metadata refers to array {key!r}, which the archive lacks")
            return arrays[key]
        if set(tree) == {"__tuple__"}:
            return tuple(unpack_tree(v, arrays) for v in tree["__tuple__"])
        return {k: unpack_tree(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unpack_tree(v, arrays) for v in tree]
    return tree


def save_tree(path: str | os.PathLike, tree: Any, *, header: Mapping[str, Any] | None = None,
              format_version: int = 1) -> Path:
    """Write ``tree`` to ``path`` atomically; ``header`` entries go beside ``format_version`` in the JSON document.
    The whole archive is built in memory first, so an unstorable value raises with nothing written."""
    meta, arrays = pack_tree(tree)
    doc = {**dict(header or {}), "format_version": int(format_version), "arrays": manifest(arrays),
           "state_sha256": _state_sha256(meta), "state": meta}
    arrays[META_KEY] = np.frombuffer(json.dumps(doc, separators=(",", ":")).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()  # np.savez appends ".npz" to names without it: write bytes, keep the name exactly
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def seal(doc: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """``doc`` with the manifest and state hash of ``arrays`` and ``doc["state"]`` recomputed (what ``save_tree``
    records): for tools that rewrite a file on purpose."""
    return {**doc, "arrays": manifest({k: a for k, a in arrays.items() if k != META_KEY}),
            "state_sha256": _state_sha256(doc.get("state"))}


MAX_META_BYTES = 64 * 2**20  # the JSON document of a file (settings, counters, history): far above any real one
_NPY_HEADER_MAX = 2**17  # an .npy member's header (magic, length, dict): NumPy writes a few hundred bytes
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, KeyError, TypeError,
                NotImplementedError, RuntimeError)


class _Npz:
    """An open ``.npz`` archive whose members are read one at a time, each bounded before it is decompressed.

    Opening reads only the zip's directory. ``read(key, limit)`` refuses a member whose declared (uncompressed) size
    exceeds ``limit`` before reading a byte of it, reads at most that many bytes (the zip's own size field bounds
    the decompressor, so a member that lies about its size stops there and fails its CRC), and parses it as an
    ``.npy`` without pickle."""

    def __init__(self, path: Path):
        self.path = path
        if not path.is_file():
            raise FileFormatError(f"no chainrule file at {path}" + (": it is a directory" if path.is_dir() else ""))
        try:
            self.zip = zipfile.ZipFile(path)
        except _READ_ERRORS as e:
            raise self._corrupt(e) from e
        self.members = {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i
                        for i in self.zip.infolist()}

    def __enter__(self) -> "_Npz":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.zip.close()

    def _corrupt(self, e: BaseException) -> FileFormatError:
        return FileFormatError(f"{self.path} is corrupt or truncated, or not an .npz archive readable without "
                               f"pickle ({type(e).__name__}: {e})")

    def read(self, key: str, limit: int) -> np.ndarray:
        info = self.members[key]
        if info.file_size > limit:
            raise IntegrityError(f"{self.path}: member {info.filename!r} expands to {info.file_size:,} bytes, more "
                                 f"than the {limit:,} its manifest allows; the file was changed after it was "
                                 "written (refused before decompressing it)")
        try:
            with self.zip.open(info) as f:
                data = f.read(info.file_size + 1)  # stops at the declared size; reaching it checks the CRC
            if len(data) != info.file_size:
                raise EOFError(f"member {info.filename!r} holds {len(data)} bytes, its header says {info.file_size}")
            return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except _READ_ERRORS as e:
            raise self._corrupt(e) from e

    def read_legacy(self, key: str) -> np.ndarray:
        """A member of a file without a manifest: its size must agree with what its .npy header declares (so it
        costs what the header claims, and never more than the zip entry says)."""
        info = self.members[key]
        try:
            with self.zip.open(info) as f:
                head = f.read(_NPY_HEADER_MAX)
            buffer = io.BytesIO(head)
            version = np.lib.format.read_magic(buffer)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(buffer)
        except _READ_ERRORS as e:
            raise self._corrupt(e) from e
        declared = buffer.tell() + dtype.itemsize * math.prod(shape)
        if info.file_size != declared:
            raise FileFormatError(f"{self.path}: member {info.filename!r} is {info.file_size:,} bytes, but its "
                                  f"header declares {declared:,}; the file is corrupt")
        return self.read(key, declared)


def _declared_bytes(path: Path, key: str, entry: Any) -> int:
    """The most bytes the .npy member ``key`` may expand to, from its manifest entry [dtype, shape, sha256]."""
    try:
        dtype, shape, _ = entry
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
            raise TypeError(f"shape {shape!r}")
        itemsize = np.dtype(str(dtype)).itemsize
    except (TypeError, ValueError) as e:
        raise IntegrityError(f"{path}: the manifest entry of array {key!r} is malformed ({e})") from e
    return _NPY_HEADER_MAX + itemsize * math.prod(shape)


def npz_members(path: str | os.PathLike) -> list[str]:
    """The member keys of the ``.npz`` at ``path`` (names without ".npy"), reading only the zip's directory."""
    with _Npz(Path(path)) as archive:
        return list(archive.members)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` without a manifest (older formats), without pickle: each member's CRC is
    checked and its size must agree with its .npy header (``_Npz.read_legacy``); else FileFormatError."""
    with _Npz(Path(path)) as archive:
        return {key: archive.read_legacy(key) for key in archive.members}


def _read_checked(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(document, arrays) of a ``save_tree`` file, read in the safe order: the JSON document first (at most
    MAX_META_BYTES), then, if it has a manifest, the set of members is checked against it and each member's
    declared size against its manifest entry before any array is decompressed. Unlisted members are never read."""
    with _Npz(path) as archive:
        if META_KEY not in archive.members:
            raise FileFormatError(f"{path} is an .npz archive but not a chainrule file (it has no {META_KEY} entry)")
        try:
            doc = json.loads(archive.read(META_KEY, MAX_META_BYTES).tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FileFormatError(f"{path}: the metadata is not valid JSON ({e})") from e
        keys = [k for k in archive.members if k != META_KEY]
        recorded = doc.get("arrays") if isinstance(doc, dict) else None
        if recorded is None:
            return doc, {k: archive.read_legacy(k) for k in keys}
        if not isinstance(recorded, dict):
            raise IntegrityError(f"{path}: the manifest of its arrays is malformed")
        missing, extra = sorted(set(recorded) - set(keys)), sorted(set(keys) - set(recorded))
        if missing or extra:
            raise IntegrityError(f"{path} does not hold the arrays its manifest lists"
                                 + (f"; missing: {', '.join(missing)}" if missing else "")
                                 + (f"; not in the manifest: {', '.join(extra)}" if extra else "")
                                 + " (refused before reading them)")
        limits = {k: _declared_bytes(path, k, recorded[k]) for k in keys}
        return doc, {k: archive.read(k, limits[k]) for k in keys}


def load_tree(path: str | os.PathLike, *, max_version: int = 1,
              manifest_from: int | None = None) -> tuple[dict[str, Any], Any]:
    """(header, tree) of a file written by ``save_tree``; FileFormatError if it is unreadable, not this format, or of
    a format version newer than ``max_version``; IntegrityError if an array differs from the file's manifest. Files
    of format version ``manifest_from`` or later must have a manifest (older ones may predate it). ``header`` holds
    the document's entries besides "state" and "arrays"."""
    path = Path(path)
    doc, arrays = _read_checked(path)
    version = doc.get("format_version") if isinstance(doc, dict) else None
    if not isinstance(version, int):
        raise FileFormatError(f"{path} has no format version; it is not a chainrule file")
    if version > max_version:
        raise FileFormatError(f"{path} has format version {version}, newer than this chainrule reads "
                              f"({max_version}); upgrade chainrule to load it")
    if "arrays" in doc:
        _verify(path, doc["arrays"], arrays)
        if doc.get("state_sha256") != _state_sha256(doc.get("state")):
            raise IntegrityError(f"{path}: its settings and counters do not match the SHA-256 recorded when the file "
                                 "was written: it was changed after it was written (or damaged)")
    elif manifest_from is not None and version >= manifest_from:
        raise IntegrityError(f"{path} has format version {version} but no manifest of its arrays: it was changed "
                             "after it was written")
    header = {k: v for k, v in doc.items() if k not in ("state", "arrays", "state_sha256")}
    return header, unpack_tree(doc.get("state"), arrays)
