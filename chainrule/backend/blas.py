"""GEMM, the one kernel a fully-connected network spends its time in: ``out = alpha * op(a) @ op(b) + beta * out``.

Three implementations behind one function:

- ``numpy``: ``np.matmul`` (NumPy's bundled OpenBLAS). Always available, always correct; the fallback.
- ``mkl``: Intel MKL's ``cblas_sgemm`` / ``cblas_dgemm`` called through ctypes on the arrays' own memory, when the
  optional ``mkl`` wheel is installed (``pip install mkl``).
- ``onednn``: oneDNN's matmul primitive (``chainrule.backend._onednn``) for float32 operands, when the optional
  ``onednn-cpu-gomp`` wheel is installed; float64 products go to ``np.matmul``. It is the one implementation that
  can compute float32 products in bfloat16 (see below).

Which one runs is chosen once, at import, from the environment variable ``CHAINRULE_GEMM``:

    numpy   (default) numpy
    auto    mkl if libmkl_rt loads, else numpy
    mkl     mkl, and importing chainrule fails if it cannot be loaded
    onednn  onednn, and importing chainrule fails if it cannot be loaded

Precision of float32 products (PyTorch's ``torch.set_float32_matmul_precision``): ``"highest"`` (default) computes
them in float32; ``"medium"`` lets the ``onednn`` implementation round both operands to bfloat16 and accumulate in
float32 (relative error ~2^-8 per operand, ~3e-3 of the largest output element measured on the benchmark MLP's
shapes), which on a CPU with AVX-512 BF16 (AMD Zen 4, Intel Cooper Lake and later) runs the products up to ~2x
faster, conversion included (``bench/bench_gemm.py``). Float64 products are always exact (gradient checks). Set it
with ``set_float32_matmul_precision`` or ``CHAINRULE_FLOAT32_MATMUL_PRECISION``.

NumPy is the default because it measured faster: on the 2-core AMD EPYC (AVX-512) this was developed on, NumPy
2.4's OpenBLAS ran the products of the benchmark MLPs' training steps at 1.1-1.3x the speed of PyTorch's MKL, and
MKL 2026.2 through this module at 0.75-0.95x (``bench/bench_gemm.py``, ``bench/RESULTS_step.md``). On other CPUs
(Intel's in particular) MKL may win: measure with that script, then set ``CHAINRULE_GEMM=auto``.

A hot loop must use ONE BLAS: every BLAS library keeps its own pool of worker threads, and alternating GEMMs between
two of them (NumPy's OpenBLAS and MKL, or NumPy's and SciPy's OpenBLAS) makes the pools fight for the cores
(about 3x slower on 2 cores). So every matrix product on chainrule's hot paths goes through ``gemm`` here.

Layouts: a 2-D operand is passed to BLAS as it lies in memory. A C-contiguous (row-major) array is used as is; an
F-contiguous one (e.g. the view ``w.T`` of a C-contiguous ``w``) is the row-major transpose of its memory, so it goes
in with the BLAS "transpose" flag: no copy. Row slices (``x[:, :k]``) work too, through the leading dimension. Only
arrays with no unit stride, unaligned or byte-swapped arrays are copied first. Threads: MKL uses
``MKL_NUM_THREADS`` (else ``OMP_NUM_THREADS``, else one per core); NumPy's OpenBLAS uses ``OPENBLAS_NUM_THREADS``
or ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import numpy as np

from chainrule.backend import _mkl, _onednn

CHOICES = ("auto", "mkl", "numpy", "onednn")
PRECISIONS = ("highest", "medium")

_BLAS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def gemm(
    a: np.ndarray,
    b: np.ndarray,
    *,
    trans_a: bool = False,
    trans_b: bool = False,
    out: np.ndarray | None = None,
    alpha: float = 1.0,
    beta: float = 0.0,
) -> np.ndarray:
    """``alpha * op(a) @ op(b) + beta * out`` for 2-D arrays, where ``op(x)`` is ``x.T`` if ``trans_x`` else ``x``.

    Shapes: op(a) is (M, K), op(b) is (K, N), the result (M, N). ``out`` (optional, (M, N), the result dtype) is
    written in place and returned; with ``beta != 0`` it must be given and its values are accumulated into (e.g. a
    gradient, or a broadcast bias: ``out[:] = bias; gemm(x, w, out=out, beta=1)``). Float32 and float64 operands
    of one dtype run on the selected BLAS; anything else (integers, mixed dtypes) falls back to ``np.matmul``.
    """
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"gemm: expected 2-D operands, got shapes {a.shape} and {b.shape}; use np.matmul for others")
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    (m, k), (k2, n) = opa.shape, opb.shape
    if k != k2:
        raise ValueError(
            f"gemm: op(a) {opa.shape} @ op(b) {opb.shape}: inner dimensions {k} and {k2} differ"
            f" (trans_a={trans_a}, trans_b={trans_b})"
        )
    if beta != 0 and out is None:
        raise ValueError(f"gemm: beta={beta} accumulates into out, so out= must be given")
    if out is not None and out.shape != (m, n):
        raise ValueError(f"gemm: out has shape {out.shape}, expected {(m, n)}")
    if out is not None and not out.flags.writeable:
        raise ValueError("gemm: out is read-only; pass a writeable array (it is written in place)")
    if a.dtype == b.dtype and a.dtype in _STATE.dtypes and m and n:
        if out is None:
            out = np.empty((m, n), dtype=a.dtype)
        elif np.may_share_memory(out, a) or np.may_share_memory(out, b):  # BLAS must not read what it writes
            if beta == 0:
                out[...] = gemm(a.copy(), b.copy(), trans_a=trans_a, trans_b=trans_b, alpha=alpha)
            else:
                out[...] = gemm(a.copy(), b.copy(), trans_a=trans_a, trans_b=trans_b, out=out.copy(),
                                alpha=alpha, beta=beta)
            return out
        if out.dtype == a.dtype and _rowmajor_ld(out) is not None:
            _library_gemm(opa, opb, out, alpha, beta)
            return out
        if out.dtype == a.dtype and _rowmajor_ld(out.T) is not None:  # F-ordered out: out.T = op(b).T @ op(a).T
            _library_gemm(opb.T, opa.T, out.T, alpha, beta)
            return out
    return _numpy_gemm(opa, opb, out, alpha, beta)


def _numpy_gemm(opa: np.ndarray, opb: np.ndarray, out: np.ndarray | None, alpha: float, beta: float) -> np.ndarray:
    if beta == 0:
        out = np.matmul(opa, opb, out=out)
    else:
        prod = np.matmul(opa, opb)
        if beta != 1:
            out *= beta
        if alpha != 1:
            prod *= alpha
            alpha = 1.0
        out += prod
        return out
    if alpha != 1:
        out *= alpha
    return out


def _rowmajor_ld(x: np.ndarray) -> int | None:
    """The leading dimension of ``x`` seen as a row-major BLAS matrix, or None if it is not one.

    Row-major means unit stride along columns and a row stride of at least the row length; axes of length 1 may
    have any stride (NumPy leaves them arbitrary), so they get the smallest legal value.
    """
    rows, cols = x.shape
    item = x.itemsize
    s_row, s_col = x.strides
    if cols > 1 and s_col != item:
        return None
    if rows <= 1:
        return max(cols, 1)
    if s_row % item or s_row < cols * item:
        return None
    return s_row // item


def _blas_operand(x: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(array, transpose flag, leading dimension) describing ``x`` to row-major CBLAS without copying if possible."""
    if x.flags.aligned and x.dtype.isnative:
        ld = _rowmajor_ld(x)
        if ld is not None:
            return x, _mkl.NO_TRANS, ld
        ld = _rowmajor_ld(x.T)
        if ld is not None:
            return x, _mkl.TRANS, ld
    x = np.ascontiguousarray(x)
    return x, _mkl.NO_TRANS, max(x.shape[1], 1)


def _library_gemm(opa: np.ndarray, opb: np.ndarray, out: np.ndarray, alpha: float, beta: float) -> None:
    """``out = alpha * opa @ opb + beta * out`` on the selected library; ``out`` is row-major and overlaps neither."""
    k = opa.shape[1]
    if k == 0:  # BLAS leaves C untouched when K == 0; the sum over nothing is 0
        if beta == 0:
            out[...] = 0
        elif beta != 1:
            out *= beta
        return
    a, ta, lda = _blas_operand(opa)
    b, tb, ldb = _blas_operand(opb)
    ldc = _rowmajor_ld(out)
    if _STATE.onednn is not None:
        _onednn_gemm(a, ta, lda, b, tb, ldb, out, ldc, alpha, beta)
        return
    fn = _STATE.mkl.sgemm if out.dtype == np.float32 else _STATE.mkl.dgemm
    fn(_mkl.ROW_MAJOR, ta, tb, opa.shape[0], opb.shape[1], k, alpha, a.ctypes.data, lda, b.ctypes.data, ldb, beta,
       out.ctypes.data, ldc)


def _onednn_gemm(a: np.ndarray, ta: int, lda: int, b: np.ndarray, tb: int, ldb: int, out: np.ndarray, ldc: int,
                 alpha: float, beta: float) -> None:
    """oneDNN's matmul computes ``out = op(a) @ op(b)``; alpha and beta, off the training step's path (its products
    have neither), are applied to a temporary afterwards."""
    # op(x) (here a and b themselves) as a strided matrix: row-major (ld, 1), or column-major (1, ld)
    sa = (1, lda) if ta == _mkl.TRANS else (lda, 1)
    sb = (1, ldb) if tb == _mkl.TRANS else (ldb, 1)
    shape_a, shape_b = a.shape, b.shape
    precision = "bfloat16" if _STATE.precision == "medium" else "float32"
    if alpha == 1 and beta == 0:
        _STATE.onednn.matmul(a, shape_a, sa, b, shape_b, sb, out, (ldc, 1), precision)
        return
    prod = np.empty(out.shape, dtype=out.dtype)
    _STATE.onednn.matmul(a, shape_a, sa, b, shape_b, sb, prod, (out.shape[1], 1), precision)
    if alpha != 1:
        prod *= alpha
    if beta == 0:
        out[...] = prod
        return
    if beta != 1:
        out *= beta
    out += prod


# ---- selection ---------------------------------------------------------------------------------------------------


class _State:
    name: str = "numpy"  # the implementation gemm() uses: "numpy", "mkl" or "onednn"
    requested: str = "auto"
    mkl: Any = None  # the loaded _mkl.MKL, or None
    mkl_error: str = ""  # why MKL is not in use, if it is not
    onednn: Any = None  # the loaded _onednn.OneDNN, or None
    dtypes: tuple = ()  # operand dtypes the selected library computes (others go to np.matmul)
    precision: str = "highest"  # float32 matmul precision: "highest" (float32) or "medium" (bfloat16 on onednn)


_STATE = _State()


def select(choice: str) -> str:
    """Switch the GEMM implementation (``"auto"``, ``"mkl"`` or ``"numpy"``) and return the one now in use.

    Chainrule calls this once at import with ``CHAINRULE_GEMM``; call it yourself only between training runs
    (benchmarks, tests), never inside a hot loop. ``"mkl"`` raises RuntimeError if MKL cannot be loaded.
    """
    if choice not in CHOICES:
        raise ValueError(f"GEMM backend must be one of {CHOICES}, got {choice!r} (set CHAINRULE_GEMM to one of them)")
    if _STATE.precision == "medium" and choice != "onednn":
        raise ValueError(f"GEMM backend {choice!r} cannot run float32 products in bfloat16 (precision 'medium'); "
                         "call set_float32_matmul_precision('highest') first, or select 'onednn'")
    _STATE.requested = choice
    _STATE.onednn, _STATE.dtypes = None, ()
    if choice == "numpy":
        _STATE.name, _STATE.mkl = "numpy", None
        _STATE.mkl_error = "disabled (CHAINRULE_GEMM=numpy)"
        return _STATE.name
    if choice == "onednn":
        lib, why = _onednn_library()
        if lib is None:
            raise RuntimeError(f"CHAINRULE_GEMM=onednn but oneDNN is unavailable: {why}; {BF16_INSTALL}, or use "
                               "auto/numpy/mkl")
        _STATE.name, _STATE.mkl, _STATE.onednn, _STATE.mkl_error = "onednn", None, lib, "not requested (onednn)"
        _STATE.dtypes = (np.dtype(np.float32),)
        return _STATE.name
    lib, why = _mkl_library()
    if lib is None and choice == "mkl":
        raise RuntimeError(f"CHAINRULE_GEMM=mkl but MKL is unavailable: {why}; pip install mkl, or use auto/numpy")
    _STATE.mkl = lib
    _STATE.name = "mkl" if lib is not None else "numpy"
    _STATE.mkl_error = why
    _STATE.dtypes = _BLAS_DTYPES if lib is not None else ()
    return _STATE.name


def set_float32_matmul_precision(precision: str) -> None:
    """How float32 products are computed: ``"highest"`` (float32, the default) or ``"medium"`` (operands rounded to
    bfloat16, float32 accumulation and result; needs the ``onednn`` backend). PyTorch's name and values."""
    if precision not in PRECISIONS:
        raise ValueError(f"float32 matmul precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "medium" and _STATE.name != "onednn":
        raise ValueError(f"float32 matmul precision 'medium' (bfloat16) needs the onednn GEMM backend, but the "
                         f"backend is {_STATE.name!r}; {BF16_INSTALL}, then select('onednn') or set "
                         "CHAINRULE_GEMM=onednn")
    if precision == "medium":
        problem = _STATE.onednn.bf16_problem()
        if problem:
            raise ValueError(f"float32 matmul precision 'medium' (bfloat16) is not available: {problem}; use "
                             "'highest' (float32) on this machine")
    _STATE.precision = precision


def get_float32_matmul_precision() -> str:
    """The current float32 matmul precision, ``"highest"`` or ``"medium"``."""
    return _STATE.precision


BF16_INSTALL = "pip install 'chainrule[bf16]' (the onednn-cpu-gomp wheel, x86-64 Linux)"


def bf16_unavailable() -> str:
    """Why float32 products cannot run in bfloat16 here ("" when they can: oneDNN loads and has a bfloat16 matmul
    for this CPU)."""
    lib, why = (_STATE.onednn, "") if _STATE.onednn is not None else _onednn_library()
    return why if lib is None else lib.bf16_problem()


@contextlib.contextmanager
def float32_matmul_precision(precision: str) -> Iterator[None]:
    """Run the float32 products of the block at ``precision``, then restore the backend and precision in use.

        with backend.float32_matmul_precision("medium"):   # bfloat16 products on oneDNN inside the block
            model(x)

    ``"medium"`` selects the ``onednn`` backend for the block when another one is in use (RuntimeError naming the
    package to install when oneDNN is missing); ``"highest"`` keeps the backend and computes in float32. Like
    ``set_float32_matmul_precision`` this is process-wide state: do not run two differently-set blocks at once.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"float32 matmul precision must be one of {PRECISIONS}, got {precision!r}")
    saved = (_STATE.requested, _STATE.name, _STATE.precision)
    if precision == "medium" and _STATE.name != "onednn":
        why = bf16_unavailable()
        if why:
            raise RuntimeError(f"bfloat16 products are unavailable here: {why}; {BF16_INSTALL} on a CPU with "
                               "AVX-512, or use 'highest' (float32)")
        _STATE.precision = "highest"
        select("onednn")
    set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        _STATE.precision = "highest"
        if _STATE.name != saved[1]:
            select(saved[0])
        _STATE.precision = saved[2]


_LOADED: tuple[Any, str] | None = None
_ONEDNN_LOADED: tuple[Any, str] | None = None


def _onednn_library() -> tuple[Any, str]:
    global _ONEDNN_LOADED
    if _ONEDNN_LOADED is None:
        _ONEDNN_LOADED = _onednn.load()
    return _ONEDNN_LOADED


def _mkl_library() -> tuple[Any, str]:
    global _LOADED
    if _LOADED is None:
        _LOADED = _mkl.load()
    return _LOADED


def info() -> dict[str, Any]:
    """What ``gemm`` runs on: implementation, why, library path and version, and the BLAS thread count."""
    d: dict[str, Any] = {"gemm": _STATE.name, "requested": _STATE.requested,
                         "float32_matmul_precision": _STATE.precision}
    if _STATE.onednn is not None:
        d.update(library=_STATE.onednn.path, version=_STATE.onednn.version, isa=_STATE.onednn.isa(),
                 threads=_STATE.onednn.num_threads(), bfloat16=_STATE.onednn.bf16_problem() or "available")
    elif _STATE.mkl is not None:
        d.update(library=_STATE.mkl.path, version=_STATE.mkl.version, threads=_STATE.mkl.num_threads(),
                 threading_layer=_STATE.mkl.threading_layer(), int_bits=_STATE.mkl.int_bits)
    else:
        d.update(library="numpy.matmul", version=np.__version__, threads=_numpy_blas_threads())
        if _STATE.mkl_error:
            d["mkl_unavailable"] = _STATE.mkl_error
    return d


def _numpy_blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for pool in threadpool_info():
        if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
            return int(pool["num_threads"])
    return None


def set_num_threads(n: int) -> None:
    """Set the thread count of the library in use (MKL, or oneDNN's OpenMP pool; for NumPy's OpenBLAS use
    threadpoolctl or the env vars)."""
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    if _STATE.onednn is not None:
        _STATE.onednn.set_num_threads(n)
        return
    if _STATE.mkl is None:
        raise RuntimeError("set_num_threads: the numpy GEMM's threads are set by OPENBLAS_NUM_THREADS or threadpoolctl")
    _STATE.mkl.set_num_threads(n)


select(os.environ.get("CHAINRULE_GEMM", "numpy").strip().lower() or "numpy")
set_float32_matmul_precision(os.environ.get("CHAINRULE_FLOAT32_MATMUL_PRECISION", "highest").strip().lower()
                             or "highest")
