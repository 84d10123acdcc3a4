"""A restricted unpickler for CIFAR-10's pickled batches.

``pickle.load`` runs whatever callables a file names, so a doctored ``data_batch_1`` could run
``os.system``. CIFAR-10's python release only needs a dict of lists, strings and one uint8 NumPy
array, so the unpickler below resolves only the few NumPy globals that rebuild an array and
refuses every other global with `UnsafePickleError`.
"""
from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

_np_core = getattr(np, "_core", None) or np.core  # NumPy 2 renamed numpy.core to numpy._core


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that is not on the allow-list (it was not loaded)."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` limited to latin-1: how Python 3 protocol-2 pickles store bytes."""
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    # The official files (Python 2, NumPy 1.x) name numpy.core.multiarray._reconstruct;
    # files written by NumPy 2 name numpy._core.*; protocol 5 pickles use _frombuffer.
    for pkg in ("numpy.core", "numpy._core"):
        allowed[(f"{pkg}.multiarray", "_reconstruct")] = _np_core.multiarray._reconstruct
        allowed[(f"{pkg}.numeric", "_frombuffer")] = _np_core.numeric._frombuffer
    return allowed


_ALLOWED = _allowed_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        # latin1 turns Python 2 byte strings (keys, array buffers) into str, as NumPy expects.
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            allowed = ", ".join(sorted(f"{m}.{n}" for m, n in _ALLOWED))
            raise UnsafePickleError(
                f"{self.source}: refusing to unpickle global '{module}.{name}'; CIFAR-10 batches "
                f"only need NumPy array globals ({allowed}). The file is not an official "
                "CIFAR-10 batch or has been tampered with.") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: persistent ids are not allowed in CIFAR-10 batches")


def restricted_loads(data: bytes, source: str) -> Any:
    """Unpickle ``data`` allowing only NumPy array globals; ``source`` names the file in errors."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # truncated or garbled pickles raise many different types
        raise pickle.UnpicklingError(f"{source}: not a readable pickle ({type(exc).__name__}: "
                                     f"{exc})") from exc
