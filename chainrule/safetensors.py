"""Weights as ``.safetensors`` files (the ``safetensors`` package; no pickle), checked before they are read.

    from chainrule import safetensors as st
    st.save_model(model, "mlp.safetensors")                  # model.state_dict(), chainrule's layout
    st.load_model(model, "mlp.safetensors")                  # strict: keys, shapes and dtypes must match
    st.save_file(model.to_torch_state_dict(), "mlp_torch.safetensors")   # PyTorch's layout: torch loads it with
    #     torch_model.load_state_dict(safetensors.torch.load_file("mlp_torch.safetensors"))
    model.load_torch_state_dict(st.load_file("from_torch.safetensors"))   # and back

A safetensors file is 8 bytes (little-endian u64 N), an N-byte JSON header ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}`` and the data. ``load_file`` validates the header itself
before the ``safetensors`` package reads anything, so an untrusted file costs memory bounded by its size on disk, not
by what it claims (``docs/reliability.md``): the header length must fit in the file (and under 100 MB, safetensors'
own cap), every entry must have a known dtype, a shape of non-negative ints whose byte size is exactly its offsets'
span, and the spans must tile the data exactly (no holes, no overlap, nothing past the end). A file that breaks a
rule raises ``SafetensorsError`` naming the file, the tensor and the rule. bfloat16 and float8 tensors (which NumPy
has no dtype for) are refused with the fix (``{k: v.float() for k, v in state.items()}`` in PyTorch).

Estimators are saved in this format by ``estimator.save("model.safetensors")`` (``chainrule.classifiers.io``):
their learned arrays as tensors, their settings as JSON in the metadata entry ``"chainrule"``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from chainrule.tensor import Tensor
from chainrule.utils.atomic import atomic_write_bytes
from chainrule.utils.serial import FileFormatError

__all__ = ["save_file", "load_file", "load_file_and_metadata", "read_metadata", "save_model", "load_model",
           "check_dtypes", "SafetensorsError", "MAX_HEADER_BYTES"]

MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_NUMPY_DTYPES = {np.dtype(d) for d in _DTYPES.values()}
_NO_NUMPY_DTYPE = {"BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"}


class SafetensorsError(FileFormatError):
    """A ``.safetensors`` file that breaks the format's rules (or chainrule's dtype rules); the message says which."""


def _require_package() -> Any:
    try:
        import safetensors.numpy
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise ImportError("safetensors files need the 'safetensors' package: pip install 'chainrule[interop]'") from e
    return safetensors.numpy


def save_file(tensors: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``tensors`` (name -> array or Tensor) to ``path`` atomically; ``metadata`` is text only (str -> str)."""
    st = _require_package()
    arrays = {}
    for key, value in tensors.items():
        a = np.asarray(value.data if isinstance(value, Tensor) else value)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        if a.dtype not in _NUMPY_DTYPES:
            raise TypeError(f"save_file: tensor {key!r} has dtype {a.dtype}; safetensors stores numbers and bools "
                            f"({', '.join(sorted(_DTYPES))})")
        arrays[key] = np.require(a, requirements="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    if metadata is not None:
        bad = [k for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))]
        if bad:
            raise TypeError(f"save_file: metadata must map str to str; entry {bad[0]!r} does not")
    return atomic_write_bytes(path, st.save(arrays, metadata=dict(metadata) if metadata else None))


def _check_header(path: Path, header: Any, data_len: int) -> dict[str, str]:
    """Validate a parsed header against the data length; return the metadata (or {})."""
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: the header is not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise SafetensorsError(f"{path}: __metadata__ must map strings to strings")
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{path}: tensor {name!r} must have exactly 'dtype', 'shape' and 'data_offsets', "
                                   f"got {sorted(entry) if isinstance(entry, dict) else type(entry).__name__}")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype in _NO_NUMPY_DTYPE:
            raise SafetensorsError(f"{path}: tensor {name!r} is {dtype}, which NumPy has no dtype for; save it as "
                                   "float32 (in PyTorch: {k: v.float() for k, v in state.items()})")
        if dtype not in _DTYPES:
            raise SafetensorsError(f"{path}: tensor {name!r} has unknown dtype {dtype!r}; expected one of "
                                   f"{', '.join(sorted(_DTYPES))}")
        if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
            raise SafetensorsError(f"{path}: tensor {name!r} has shape {shape!r}; expected a list of ints >= 0")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise SafetensorsError(f"{path}: tensor {name!r} has data_offsets {offsets!r}; expected [begin, end] "
                                   "with 0 <= begin <= end")
        nbytes = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise SafetensorsError(f"{path}: tensor {name!r} claims shape {shape} of {dtype} ({nbytes} bytes) but its "
                                   f"data_offsets {offsets} span {offsets[1] - offsets[0]} bytes")
        if offsets[1] > data_len:
            raise SafetensorsError(f"{path}: tensor {name!r} ends at byte {offsets[1]} of the data, but the file holds "
                                   f"{data_len} bytes of data: it is truncated, or its header lies")
        spans.append((offsets[0], offsets[1], name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise SafetensorsError(f"{path}: tensor {name!r} starts at byte {begin} of the data, expected {position}: "
                                   "the tensors' data must follow one another without holes or overlap")
        position = end
    if position != data_len:
        raise SafetensorsError(f"{path}: the tensors cover {position} bytes of data but the file holds {data_len}: "
                               "bytes past the last tensor")
    return metadata


def _read(path: str | os.PathLike) -> tuple[Path, bytes, dict[str, str]]:
    """The validated file's bytes and metadata (the whole file is read once: memory is its size)."""
    path = Path(path)
    if not path.is_file():
        raise SafetensorsError(f"no safetensors file at {path}")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise SafetensorsError(f"{path} is {size} bytes: too short for a safetensors file (8-byte header length)")
        n = int.from_bytes(f.read(8), "little")
        if n > MAX_HEADER_BYTES or n > size - 8:
            raise SafetensorsError(f"{path}: the header claims {n} bytes but the file holds {size - 8} after the "
                                   f"length (and headers are at most {MAX_HEADER_BYTES}): truncated, or not a "
                                   "safetensors file")
        raw = f.read(n)
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"{path}: the header is not valid UTF-8 JSON ({e})") from e
        metadata = _check_header(path, header, size - 8 - n)
        f.seek(0)
        data = f.read()
    if len(data) != size:
        raise SafetensorsError(f"{path} changed size while it was read")
    return path, data, metadata


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a validated file ({} if it has none)."""
    return _read(path)[2]


def load_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of the file at ``path``, as NumPy arrays, after checking the header (module docstring)."""
    return load_file_and_metadata(path)[0]


def load_file_and_metadata(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, ``__metadata__``) of the file at ``path``, read once, after checking the header."""
    st = _require_package()
    path, data, metadata = _read(path)
    try:
        return dict(st.load(data)), metadata
    except Exception as e:  # safetensors raises its own SafetensorError; our checks should have caught it first
        raise SafetensorsError(f"{path}: safetensors could not read it ({type(e).__name__}: {e})") from e


def save_model(model: Any, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model.state_dict()`` (chainrule's layout and key names) to ``path``."""
    return save_file(model.state_dict(), path, metadata)


def load_model(model: Any, path: str | os.PathLike, strict: bool = True) -> Any:
    """Load a file written by ``save_model`` into ``model`` (``load_state_dict`` semantics; every floating-point
    parameter must come from a floating-point tensor). Returns ``IncompatibleKeys``."""
    state = load_file(path)
    check_dtypes(model, state, str(path))
    return model.load_state_dict(state, strict=strict)


def check_dtypes(model: Any, state: Mapping[str, np.ndarray], source: str) -> None:
    """Refuse integer or boolean arrays for floating-point entries (and floats for integer ones), naming each."""
    expected = {key: p.data.dtype for key, p in model.named_parameters()}
    expected.update((key, b.dtype) for key, b in model.named_buffers())
    bad = []
    for key, value in state.items():
        if key in expected:
            want, got = expected[key], np.asarray(value).dtype
            if (want.kind == "f") != (got.kind == "f") or got.kind not in "biuf":
                bad.append(f"{key}: {got} (the model's is {want})")
    if bad:
        raise SafetensorsError(f"{source}: wrong dtype for {len(bad)} entr{'y' if len(bad) == 1 else 'ies'}; nothing "
                               "was loaded: " + "; ".join(bad))
