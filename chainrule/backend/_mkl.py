"""Find and load Intel MKL's single dynamic library (``libmkl_rt``) and declare the few functions chainrule calls.

MKL comes from the optional ``mkl`` wheel (``pip install mkl``), which puts ``libmkl_rt.so.*`` in ``<prefix>/lib``;
a conda or system MKL is found the same way. The library is loaded only when the GEMM backend is ``mkl`` or
``auto``, and a failure to load it is reported as a reason string, never raised.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, files

# CBLAS enums (cblas.h).
ROW_MAJOR = 101
NO_TRANS = 111
TRANS = 112

# mkl_set_interface_layer / mkl_set_threading_layer values (mkl_service.h).
_INTERFACE_LP64 = 0
_INTERFACE_ILP64 = 1
_THREADING_NAMES = {0: "intel", 1: "sequential", 2: "pgi", 3: "gnu", 4: "tbb"}


@dataclass(frozen=True)
class MKL:
    """The loaded library: ``sgemm`` is ``cblas_sgemm`` with its argument types set, and so on."""

    path: str
    version: str
    int_bits: int  # 32 (LP64) or 64 (ILP64): the width of MKL_INT in the CBLAS calls
    lib: ctypes.CDLL
    sgemm: object
    dgemm: object

    def num_threads(self) -> int:
        return int(self.lib.MKL_Get_Max_Threads())

    def set_num_threads(self, n: int) -> None:
        self.lib.MKL_Set_Num_Threads(ctypes.c_int(n))

    def threading_layer(self) -> str:
        # mkl_set_threading_layer returns the layer in force; passing it again changes nothing once MKL runs.
        return _THREADING_NAMES.get(int(self.lib.MKL_Set_Threading_Layer(ctypes.c_int(-1))), "unknown")


def candidate_paths() -> list[str]:
    """Where ``libmkl_rt`` may be, most specific first: this environment's lib/, the mkl wheel's files, the system.

    ``CHAINRULE_MKL_LIB=/path/to/libmkl_rt.so`` names the one file to use instead (a path that does not exist
    hides MKL, e.g. to test the NumPy fallback).
    """
    forced = os.environ.get("CHAINRULE_MKL_LIB")
    if forced:
        return [forced]
    found: list[str] = []
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix, os.environ.get("CONDA_PREFIX", "")]):
        if prefix:
            found += sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")), reverse=True)
    try:
        found += [str(f.locate()) for f in files("mkl") or [] if "libmkl_rt" in f.name]
    except PackageNotFoundError:
        pass
    system = ctypes.util.find_library("mkl_rt")
    if system:
        found.append(system)
    return list(dict.fromkeys(os.path.realpath(p) if os.path.isabs(p) else p for p in found))


def load() -> tuple[MKL | None, str]:
    """(the library, "") on success, else (None, why not)."""
    paths = candidate_paths()
    if not paths:
        return None, "libmkl_rt not found"
    errors = []
    for path in paths:
        try:
            return _declare(ctypes.CDLL(path), path), ""
        except (OSError, AttributeError) as e:  # not loadable, or not an MKL with the CBLAS interface
            errors.append(f"{path}: {e}")
    return None, "could not load libmkl_rt: " + "; ".join(errors)


def _declare(lib: ctypes.CDLL, path: str) -> MKL:
    # The interface layer must be chosen before any other MKL call; if MKL_INTERFACE_LAYER already chose
    # ILP64, MKL says so in the return value and the integer arguments are 64-bit.
    lib.MKL_Set_Interface_Layer.restype = ctypes.c_int
    layer = lib.MKL_Set_Interface_Layer(ctypes.c_int(_INTERFACE_LP64))
    int_t = ctypes.c_int64 if layer == _INTERFACE_ILP64 else ctypes.c_int
    lib.MKL_Get_Max_Threads.restype = ctypes.c_int
    lib.MKL_Set_Threading_Layer.restype = ctypes.c_int
    ptr = ctypes.c_void_p
    for name, real in (("cblas_sgemm", ctypes.c_float), ("cblas_dgemm", ctypes.c_double)):
        fn = getattr(lib, name)
        # layout, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc
        fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t,
                       real, ptr, int_t, ptr, int_t, real, ptr, int_t]
        fn.restype = None
    buf = ctypes.create_string_buffer(256)
    lib.MKL_Get_Version_String(buf, ctypes.c_int(len(buf)))
    version = buf.value.decode(errors="replace").strip()
    return MKL(path, version, 64 if layer == _INTERFACE_ILP64 else 32, lib, lib.cblas_sgemm, lib.cblas_dgemm)
