"""NumPy's own bundled OpenBLAS, for the level-1 routine NumPy does not expose (``axpby``).

NumPy's wheels ship OpenBLAS as ``numpy.libs/libscipy_openblas64_*.so`` (``numpy/.dylibs`` on macOS); it is already
loaded when NumPy is, so opening the same file gives the same library and the same thread pool as ``np.matmul``
(never a second BLAS). Its symbols carry a prefix and an integer-width suffix that changed across NumPy releases, so
several spellings are tried. A NumPy built against another BLAS (conda, distributions) is simply not found, and
callers fall back to ufuncs.
"""

from __future__ import annotations

import ctypes
import glob
import os
from dataclasses import dataclass

import numpy as np

# (prefix, suffix) of the CBLAS symbols in NumPy's OpenBLAS builds, newest first; "64_" means 64-bit integers.
_SPELLINGS = (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", ""))


@dataclass(frozen=True)
class OpenBLAS:
    path: str
    saxpby: object
    daxpby: object


def _library_files() -> list[str]:
    here = os.path.dirname(np.__file__)
    found = glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*"))  # Linux and Windows wheels
    found += glob.glob(os.path.join(here, ".dylibs", "*openblas*"))  # macOS wheels
    return sorted(found)


def load() -> tuple[OpenBLAS | None, str]:
    """(NumPy's OpenBLAS with ``cblas_?axpby`` declared, "") or (None, why not)."""
    files = _library_files()
    if not files:
        return None, "NumPy's bundled OpenBLAS not found (NumPy built against another BLAS)"
    for path in files:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in _SPELLINGS:
            names = [f"{prefix}cblas_{t}axpby{suffix}" for t in "sd"]
            if all(hasattr(lib, name) for name in names):
                int_t = ctypes.c_int64 if suffix == "64_" else ctypes.c_int
                fns = []
                for name, real in zip(names, (ctypes.c_float, ctypes.c_double)):
                    fn = getattr(lib, name)
                    fn.argtypes = [int_t, real, ctypes.c_void_p, int_t, real, ctypes.c_void_p, int_t]
                    fn.restype = None
                    fns.append(fn)
                return OpenBLAS(os.path.realpath(path), *fns), ""
    return None, f"no cblas_saxpby in {files}"
