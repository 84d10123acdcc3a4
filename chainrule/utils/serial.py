"""The one pickle-free file format: a nested state of dicts, lists, tuples, scalars and NumPy arrays in one ``.npz``.

    save_tree("model.npz", {"W": W, "meta": {"lr": 0.1, "sizes": (3, 2)}}, header={"format": "chainrule.x"})
    header, tree = load_tree("model.npz")       # tree == the saved state: arrays bit for bit, tuples as tuples

The archive holds every array of the tree under a readable path-like key (``model/0.weight``) and one entry
``__meta__``: the UTF-8 bytes of a JSON document ``{**header, "format_version": ..., "state": tree}`` in which
each array is replaced by ``{"__ndarray__": key}`` (and each tuple by ``{"__tuple__": [...]}``). Loading uses
``allow_pickle=False``, so reading a file runs no code from it; object arrays are refused when saving. Reading
checks the zip CRC of every member, so a truncated or corrupted file raises ``FileFormatError`` instead of
returning garbage. Files are written with ``chainrule.utils.atomic`` (all or nothing). Estimator files
(``chainrule.classifiers.io``) and training checkpoints (``chainrule.train.checkpoint``) are both this format,
with their own ``header``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from chainrule.utils.atomic import atomic_write_bytes

__all__ = ["save_tree", "load_tree", "pack_tree", "unpack_tree", "FileFormatError", "META_KEY"]

META_KEY = "__meta__"
_PLAIN = (str, int, float, bool, type(None))  # JSON as they are (exact types: not NumPy scalars or subclasses)


class FileFormatError(ValueError):
    """A file is missing, corrupt, truncated, or not in the format asked for; the message says which."""


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
    doc = {**dict(header or {}), "format_version": int(format_version), "state": meta}
    arrays[META_KEY] = np.frombuffer(json.dumps(doc, separators=(",", ":")).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()  # np.savez appends ".npz" to names without it: write bytes, keep the name exactly
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path`` (no pickle; each member's CRC checked), or FileFormatError."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"no chainrule file at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}  # reading checks each CRC
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise FileFormatError(f"{path} is corrupt or truncated, or not an .npz archive readable without "
                              f"pickle ({type(e).__name__}: {e})") from e


def load_tree(path: str | os.PathLike, *, max_version: int = 1) -> tuple[dict[str, Any], Any]:
    """(header, tree) of a file written by ``save_tree``; FileFormatError if it is unreadable, not this format, or of
    a format version newer than ``max_version``. ``header`` holds the document's entries besides "state"."""
    path = Path(path)
    arrays = read_npz(path)
    if META_KEY not in arrays:
        raise FileFormatError(f"{path} is an .npz archive but not a chainrule file (it has no {META_KEY} entry)")
    try:
        doc = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(f"{path}: the metadata is not valid JSON ({e})") from e
    version = doc.get("format_version") if isinstance(doc, dict) else None
    if not isinstance(version, int):
        raise FileFormatError(f"{path} has no format version; it is not a chainrule file")
    if version > max_version:
        raise FileFormatError(f"{path} has format version {version}, newer than this chainrule reads "
                              f"({max_version}); upgrade chainrule to load it")
    header = {k: v for k, v in doc.items() if k != "state"}
    return header, unpack_tree(doc.get("state"), arrays)
