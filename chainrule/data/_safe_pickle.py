"""A restricted unpickler for CIFAR-10's pickled batches.

``pickle.load`` runs whatever callables a file names, so a doctored ``data_batch_1`` could run
``os.system``; and even NumPy's own globals are dangerous: ``numpy.ndarray(shape, dtype, buffer,
offset, strides)`` called by a 281-byte pickle builds a 150,000 x 3072 array from a 1-byte buffer
with zero strides, and without a buffer it hands back uninitialised memory (old pointers read as
labels). CIFAR-10's python release only needs a dict of lists, strings and one uint8 array, so
this unpickler resolves a handful of names to stand-ins of its own and refuses every other global
with `UnsafePickleError`:

- ``numpy.ndarray`` is a token that may only be passed to ``_reconstruct``; calling it is refused.
- ``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`` (what the official files use, and
  NumPy for protocols 2-4) returns a placeholder whose ``__setstate__`` accepts only
  ``(1, shape, dtype, is_fortran, rawdata)`` with ``rawdata`` a byte string of exactly
  ``prod(shape) * dtype.itemsize`` bytes; the array is a view of those bytes.
- ``numpy.core.numeric._frombuffer(buffer, dtype, shape, order)`` (NumPy's protocol 5) gets the
  same check.
- ``numpy.dtype`` builds only plain integer dtypes (``u1`` ... ``i8``), and their
  ``__setstate__`` accepts only the state NumPy writes for those.
- ``_codecs.encode`` only encodes to latin-1 (how Python 3 protocol-2 pickles store bytes).

So an array costs exactly the bytes the file holds for it, and the (pure-Python) unpickler never
allocates a length or memo index an opcode merely claims: memory is bounded by the file's size,
never by what it claims. Arrays are returned at the top level or as values of a top-level
dict (where CIFAR-10 keeps them); a placeholder anywhere else is left as it is, and fails the
caller's type checks.
"""
from __future__ import annotations

import io
import math
import pickle
import struct
from typing import Any

import numpy as np

_MAX_NDIM = 32
_DTYPES = frozenset({"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8"})


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something the restricted unpickler does not allow (it was not loaded)."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` limited to latin-1: how Python 3 protocol-2 pickles store bytes."""
    if not isinstance(text, str) or not isinstance(encoding, str) or \
            encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r}): "
                                "only latin-1 text is allowed")
    return text.encode("latin1")


class _NdarrayToken:
    """What ``numpy.ndarray`` resolves to: only a marker for ``_reconstruct``, never a constructor."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsafePickleError(
            "refusing to call numpy.ndarray(...) from a pickle: it can build arrays larger than the "
            "file (zero strides over a tiny buffer) or from uninitialised memory; official CIFAR-10 "
            "batches build arrays with numpy.core.multiarray._reconstruct and raw bytes")

    def __reduce__(self) -> Any:  # pragma: no cover - never pickled
        raise TypeError("not picklable")


_NDARRAY = _NdarrayToken()


class _DtypeRecipe:
    """``numpy.dtype(code, align, copy)`` for a plain integer code, then its (checked) ``__setstate__``."""

    def __init__(self, code: Any, align: Any = False, copy: Any = False) -> None:
        code = code.decode("latin1") if isinstance(code, bytes) else code
        if not isinstance(code, str) or code not in _DTYPES:
            raise UnsafePickleError(f"refusing numpy.dtype({code!r}): only the integer dtypes "
                                    f"{sorted(_DTYPES)} are allowed in CIFAR-10 batches")
        self.dtype = np.dtype(code)
        self._built = False

    def __setstate__(self, state: Any) -> None:
        # NumPy writes (3, byteorder, subarray, names, fields, elsize, alignment, flags) and
        # (3, '|', None, None, None, -1, -1, 0) for one-byte ints; anything else is not a plain int.
        if self._built or not isinstance(state, tuple) or len(state) != 8 or state[0] != 3 or \
                state[1] not in ("<", ">", "|", "=") or state[2:5] != (None, None, None) or \
                state[5:] != (-1, -1, 0):
            raise UnsafePickleError(f"refusing dtype state {state!r:.200}: not the state NumPy "
                                    f"writes for {self.dtype}")
        self._built = True
        if state[1] in "<>" and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(state[1])


def _check_raw(raw: Any, dtype: Any, shape: Any, where: str) -> tuple[bytes, np.dtype, tuple[int, ...]]:
    """The checked (bytes, dtype, shape) of an array whose data must be exactly ``raw``."""
    if isinstance(raw, str):  # Python 2 byte strings arrive as latin-1 text
        raw = raw.encode("latin1")
    if not isinstance(raw, (bytes, bytearray)):
        raise UnsafePickleError(f"refusing {where}: array data must be a byte string, got "
                                f"{type(raw).__name__}")
    if not isinstance(dtype, _DtypeRecipe):
        raise UnsafePickleError(f"refusing {where}: the array's dtype must be a numpy.dtype from the "
                                f"pickle, got {type(dtype).__name__}")
    if not isinstance(shape, tuple) or len(shape) > _MAX_NDIM or \
            not all(type(d) is int and d >= 0 for d in shape):
        raise UnsafePickleError(f"refusing {where}: shape must be a tuple of at most {_MAX_NDIM} "
                                f"non-negative ints, got {shape!r:.200}")
    need = math.prod(shape) * dtype.dtype.itemsize
    if len(raw) != need:
        raise UnsafePickleError(
            f"refusing {where}: shape {shape} of {dtype.dtype} needs {need} bytes but the pickle "
            f"holds {len(raw)}; an array must be stored in full")
    return bytes(raw), dtype.dtype, shape


def _array(raw: bytes, dtype: np.dtype, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")


class _ArrayRecipe:
    """``_reconstruct(ndarray, (0,), b'b')``: an empty placeholder until its checked ``__setstate__``."""

    def __init__(self, cls: Any, shape: Any, typecode: Any) -> None:
        if cls is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
            raise UnsafePickleError(
                f"refusing _reconstruct({cls!r:.80}, {shape!r:.80}, {typecode!r:.20}): official "
                "batches call it as _reconstruct(numpy.ndarray, (0,), b'b')")
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None:
            raise UnsafePickleError("refusing a second __setstate__ on one array")
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1 or \
                not isinstance(state[3], bool):
            raise UnsafePickleError(f"refusing array state {state!r:.200}: expected (1, shape, "
                                    "dtype, is_fortran, rawdata)")
        raw, dtype, shape = _check_raw(state[4], state[2], state[1], "array state")
        self.array = _array(raw, dtype, shape, state[3])


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """NumPy's protocol-5 array constructor, with the same checks as ``_reconstruct``'s state."""
    if order not in ("C", "F"):
        raise UnsafePickleError(f"refusing _frombuffer order {order!r:.20}: expected 'C' or 'F'")
    raw, dtype, shape = _check_raw(buf, dtype, shape, "_frombuffer")
    return _array(raw, dtype, shape, order == "F")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _DtypeRecipe,
        ("_codecs", "encode"): _latin1_encode,
    }
    # The official files (Python 2, NumPy 1.x) name numpy.core.multiarray._reconstruct;
    # files written by NumPy 2 name numpy._core.*; protocol 5 pickles use _frombuffer.
    for pkg in ("numpy.core", "numpy._core"):
        allowed[(f"{pkg}.multiarray", "_reconstruct")] = _ArrayRecipe
        allowed[(f"{pkg}.numeric", "_frombuffer")] = _frombuffer
    return allowed


_ALLOWED = _allowed_globals()


class _RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (``pickle._Unpickler``), restricted.

    Not the C one: for BINBYTES / BINBYTES8 / BYTEARRAY8 the C unpickler allocates the length the
    opcode declares before reading (a 22-byte pickle claiming 8 GB allocates 8 GB). The Python one
    reads what the file holds (BYTEARRAY8, which it too would allocate first, is replaced below)
    and keeps the memo in a dict. It is ~1.7x slower (~20 ms more per CIFAR-10 batch).
    """

    def __init__(self, file: io.BufferedIOBase) -> None:
        # latin1 turns Python 2 byte strings (keys, array buffers) into str, as NumPy expects.
        super().__init__(file, encoding="latin1")

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            allowed = ", ".join(sorted(f"{m}.{n}" for m, n in _ALLOWED))
            raise UnsafePickleError(
                f"refusing to unpickle global '{module}.{name}'; CIFAR-10 batches "
                f"only need NumPy array globals ({allowed}). The file is not an official "
                "CIFAR-10 batch or has been tampered with.") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("persistent ids are not allowed in CIFAR-10 batches")

    def _load_bytearray8(self) -> None:
        # pickle._Unpickler allocates bytearray(declared length) before reading; read what is there instead.
        (n,) = struct.unpack("<Q", self.read(8))
        data = self.read(n)
        if len(data) < n:
            raise pickle.UnpicklingError("pickle data was truncated")
        self.append(bytearray(data))

    dispatch = {**pickle._Unpickler.dispatch, pickle.BYTEARRAY8[0]: _load_bytearray8}


def _finish(obj: Any, source: str) -> Any:
    """Placeholders -> arrays, at the top level and in a top-level dict's values."""
    if isinstance(obj, _ArrayRecipe):
        if obj.array is None:
            raise UnsafePickleError(f"{source}: an array was declared but its data never followed")
        return obj.array
    if isinstance(obj, _DtypeRecipe):
        return obj.dtype
    if isinstance(obj, dict):
        return {k: _finish(v, source) if isinstance(v, (_ArrayRecipe, _DtypeRecipe)) else v
                for k, v in obj.items()}
    return obj


def restricted_loads(data: bytes, source: str) -> Any:
    """Unpickle ``data`` allowing only checked NumPy array building; ``source`` names the file in errors."""
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as exc:  # raised without the file's name by the stand-ins above
        raise UnsafePickleError(f"{source}: {exc}") from None
    except Exception as exc:  # truncated or garbled pickles raise many different types
        raise pickle.UnpicklingError(f"{source}: not a readable pickle ({type(exc).__name__}: "
                                     f"{exc})") from exc
    return _finish(obj, source)
