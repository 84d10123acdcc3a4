"""Find and load oneDNN (``libdnnl``) and run its matmul primitive on NumPy arrays, in float32 or bfloat16.

oneDNN comes from the optional ``onednn-cpu-gomp`` wheel (``pip install onednn-cpu-gomp``: oneDNN 3.2 built with
GNU OpenMP, CPU only), which puts ``libdnnl.so.3`` in ``<prefix>/lib``; ``CHAINRULE_ONEDNN_LIB=/path/to/libdnnl.so``
names the file to use instead (a path that does not exist hides oneDNN, e.g. to test the fallback). The newer
``onednn`` wheel (2026.x) is built on the SYCL runtime and cannot create a CPU engine without a SYCL CPU device, so
it does not work here. Nothing is loaded until the GEMM backend asks for it, and a failure to load is reported as
a reason string, never raised.

Why oneDNN: it picks its kernels from the CPU's feature flags, not its vendor, so on an AMD Zen 4 it runs the
AVX-512 BF16 dot-product instructions (``vdpbf16ps``, ISA ``avx512_core_bf16``); MKL's ``cblas_gemm_bf16bf16f32``
does not there (measured no faster than its float32 ``sgemm``), and NumPy's bundled OpenBLAS is built without its
``sbgemm``. A bfloat16 product here is two reorders (float32 -> bfloat16, round to nearest even, into scratch
buffers this module owns) and a bfloat16 x bfloat16 -> float32 matmul: the caller keeps float32 arrays (fp32 master
weights), the conversion is part of every call. (oneDNN's fp-math mode attribute would fold the conversion into
the matmul, but oneDNN 3.2 does not apply it on ``avx512_core_bf16``: measured, the products stayed float32.)

One plan -- the primitives (JIT-compiled when created) and memory objects of one problem: shapes, strides,
precision -- is created per distinct problem and cached (least recently used first out); a training step has a
handful of distinct products, so after the first step every call is a cache hit: a data-handle swap per operand
and two or three ``execute`` calls.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

# dnnl_common_types.h / dnnl_types.h (oneDNN 3.x)
_SUCCESS = 0
_BF16 = 2
_F32 = 3
_CPU_ENGINE = 1
_STREAM_IN_ORDER = 0x1
_ARG_SRC, _ARG_DST, _ARG_WEIGHTS = 1, 17, 33
_MAX_NDIMS = 12
_CACHE_SIZE = 64  # plans kept (a training step has ~10 distinct products; evaluation adds a few)

_Dims = ctypes.c_int64 * _MAX_NDIMS


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", ctypes.c_void_p)]


_UNIMPLEMENTED = 3  # dnnl_unimplemented: no kernel for this problem on this CPU


class PlanCache(OrderedDict):
    """Plans (a primitive's JIT-compiled kernels and memory objects for one problem) by problem key, the least
    recently used dropped past ``size``: every primitive module of this backend (matmul here; convolution, pooling,
    batch norm, GELU) keeps its plans in one. A plan may be None ("no plan for this problem", cached like the
    others). ``created`` counts the plans made (a training step makes none after its first run). The caller holds
    the library's lock."""

    def __init__(self, size: int):
        super().__init__()
        self.size, self.created = size, 0

    def get_or_make(self, key: Any, make: Callable[[], Any], destroy: Callable[[Any], None]) -> Any:
        """The plan of ``key``, made by ``make()`` on first use; ``destroy(plan)`` frees one dropped for room."""
        if key in self:
            self.move_to_end(key)
            return self[key]
        plan = self[key] = make()
        self.created += 1
        if len(self) > self.size:
            old = self.popitem(last=False)[1]
            if old is not None:
                destroy(old)
        return plan


_SHARED: dict[type, Any] = {}


def shared(cls: type) -> Any:
    """The one ``cls(lib)`` of this process (a module's primitives: ``GeluPrimitives``, ``PoolPrimitives``, ...) on
    the oneDNN the GEMM and convolution backends load, or None where it does not load."""
    if cls not in _SHARED:
        from chainrule.backend import blas

        lib, _ = blas._onednn_library()
        if lib is None:
            return None
        _SHARED[cls] = cls(lib)
    return _SHARED[cls]


class OneDNNError(RuntimeError):
    """A oneDNN call returned an error status (the message names the call and the status code, ``.status``)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _check(status: int, what: str) -> None:
    if status != _SUCCESS:
        raise OneDNNError(f"oneDNN {what} failed with status {status}", status)


@dataclass
class _Plan:
    """The primitives of one problem (shapes, strides, precision) and the memory objects they run on.

    float32: one matmul on the caller's arrays. bfloat16: two reorders (float32 -> bfloat16, into the two shared
    scratch buffers, laid out like the operands) and a bfloat16 x bfloat16 -> float32 matmul.
    """

    steps: list  # [(primitive, args array)] in execution order
    handles: list  # [(memory object, which: 0 a, 1 b, 2 out, 3 / 4 scratch for a / b)], set before every run


@dataclass
class OneDNN:
    path: str
    version: str
    lib: ctypes.CDLL
    engine: ctypes.c_void_p
    stream: ctypes.c_void_p
    omp: Any = None  # GNU OpenMP (libgomp), oneDNN's thread pool in the onednn-cpu-gomp wheel, or None
    cache: PlanCache = field(default_factory=lambda: PlanCache(_CACHE_SIZE))
    # bfloat16 copies of the two operands, shared by all plans (they run one at a time, under the lock) and grown to
    # the largest operand seen: one step's scratch is two buffers, not two per distinct product
    scratch: list = field(default_factory=lambda: [np.empty(0, np.uint16), np.empty(0, np.uint16)])
    lock: threading.Lock = field(default_factory=threading.Lock)
    _bf16_problem: str | None = None  # bf16_problem()'s answer, once asked

    def bf16_problem(self) -> str:
        """Why this oneDNN cannot run bfloat16 products on this CPU ("" when it can), found by creating one.

        oneDNN 3.2 has bfloat16 matmul kernels from AVX-512 (``avx512_core``) up; on a CPU (or a virtual machine)
        that shows only AVX2 it reports the problem unimplemented, while float32 products still work."""
        if self._bf16_problem is None:
            try:
                with self.lock:
                    self._destroy(self._plan((((2, 2), (2, 1)),) * 3, "bfloat16"))
                self._bf16_problem = ""
            except OneDNNError as e:
                if e.status != _UNIMPLEMENTED:
                    raise
                self._bf16_problem = (f"oneDNN {self.version} has no bfloat16 matmul for this CPU (its instruction "
                                      f"set here is {self.isa()}; bfloat16 needs AVX-512, avx512_core, or newer)")
        return self._bf16_problem

    def matmul(self, a: np.ndarray, shape_a: tuple[int, int], strides_a: tuple[int, int], b: np.ndarray,
               shape_b: tuple[int, int], strides_b: tuple[int, int], out: np.ndarray, strides_out: tuple[int, int],
               precision: str) -> None:
        """``out = A @ B`` for float32 matrices A (M, K), B (K, N), out (M, N) laid out in the memory of the arrays
        ``a``, ``b``, ``out`` with the given shapes and strides (in elements; e.g. (ld, 1) row-major, (1, ld) the
        transpose of a row-major array). ``out`` must not overlap the operands. ``precision``: "float32", or
        "bfloat16" (operands rounded to bfloat16, products accumulated in float32)."""
        key = (shape_a, strides_a, shape_b, strides_b, strides_out, precision)
        with self.lock:  # a plan's memory objects and scratch buffers are shared state: one caller at a time
            plan = self.cache.get_or_make(key, lambda: self._plan(((shape_a, strides_a), (shape_b, strides_b),
                                                                   ((shape_a[0], shape_b[1]), strides_out)),
                                                                  precision), self._destroy)
            self.execute(plan, (a, b, out, *self.scratch))

    def execute(self, plan: Any, arrays: Any) -> None:
        """Run a plan with ``handles`` [(memory object, index of its array in ``arrays``)] and ``steps``
        [(primitive, args)]: point each memory object at its array, run the steps in order, wait for the stream.
        The caller holds the lock."""
        for mem, which in plan.handles:
            _check(self.lib.dnnl_memory_set_data_handle(mem, ctypes.c_void_p(arrays[which].ctypes.data)),
                   "set_data_handle")
        for prim, args in plan.steps:
            _check(self.lib.dnnl_primitive_execute(prim, self.stream, len(args), args), "execute")
        _check(self.lib.dnnl_stream_wait(self.stream), "stream wait")

    def num_threads(self) -> int | None:
        """Threads of oneDNN's OpenMP pool (``omp_get_max_threads``), or None if its runtime is not GNU OpenMP."""
        return int(self.omp.omp_get_max_threads()) if self.omp is not None else None

    def set_num_threads(self, n: int) -> None:
        if self.omp is None:
            raise RuntimeError("set_num_threads: oneDNN's OpenMP runtime (libgomp) was not found; set "
                               "OMP_NUM_THREADS before starting Python")
        self.omp.omp_set_num_threads(ctypes.c_int(n))

    def _desc(self, shape: tuple[int, int], strides_elems: tuple[int, int], dtype: int) -> ctypes.c_void_p:
        md = ctypes.c_void_p()
        _check(self.lib.dnnl_memory_desc_create_with_strides(ctypes.byref(md), 2, _Dims(*shape),
                                                             dtype, _Dims(*strides_elems)), "memory desc")
        return md

    def release(self, prims: Any = (), mems: Any = (), pds: Any = (), mds: Any = ()) -> None:
        """Destroy the given primitives, memory objects, primitive descriptors and memory descriptors, skipping
        null handles (the ones a failed plan never created)."""
        for handles, destroy in ((prims, self.lib.dnnl_primitive_destroy), (mems, self.lib.dnnl_memory_destroy),
                                 (pds, self.lib.dnnl_primitive_desc_destroy),
                                 (mds, self.lib.dnnl_memory_desc_destroy)):
            for h in handles:
                if h:
                    destroy(h)

    def _memory(self, md: ctypes.c_void_p, handle: int | None) -> ctypes.c_void_p:
        mem = ctypes.c_void_p()
        _check(self.lib.dnnl_memory_create(ctypes.byref(mem), md, self.engine, handle), "memory create")
        return mem

    def _primitive(self, create, *args) -> ctypes.c_void_p:
        """Create a primitive from a primitive-descriptor constructor and its arguments."""
        pd, prim = ctypes.c_void_p(), ctypes.c_void_p()
        try:
            _check(create(ctypes.byref(pd), *args), create.__name__)
            _check(self.lib.dnnl_primitive_create(ctypes.byref(prim), pd), "primitive create")
        finally:
            if pd:
                self.lib.dnnl_primitive_desc_destroy(pd)
        return prim

    def _plan(self, layouts, precision: str) -> _Plan:
        """Primitives for ``layouts`` = ((shape, strides) of A, of B, of out)."""
        lib = self.lib
        f32 = [self._desc(shape, strides, _F32) for shape, strides in layouts]
        mds = list(f32)
        plan = _Plan([], [])
        try:
            f32_mems = [self._memory(md, None) for md in f32]
            plan.handles += [(m, i) for i, m in enumerate(f32_mems)]
            operands, operand_mds = f32_mems[:2], f32[:2]
            if precision == "bfloat16":
                operands, operand_mds = [], []
                for i, (shape, strides) in enumerate(layouts[:2]):
                    # dense scratch in the operand's own memory order, so the reorder reads and writes in sequence
                    col_major = strides[0] < strides[1]
                    if self.scratch[i].size < shape[0] * shape[1]:
                        self.scratch[i] = np.empty(shape[0] * shape[1], dtype=np.uint16)
                    md = self._desc(shape, (1, shape[0]) if col_major else (shape[1], 1), _BF16)
                    mds.append(md)
                    mem = self._memory(md, None)
                    plan.handles.append((mem, 3 + i))
                    prim = self._primitive(lib.dnnl_reorder_primitive_desc_create, f32[i], self.engine, md,
                                           self.engine, None)
                    plan.steps.append((prim, _args((_ARG_SRC, f32_mems[i]), (_ARG_DST, mem))))
                    operands.append(mem)
                    operand_mds.append(md)
            prim = self._primitive(lib.dnnl_matmul_primitive_desc_create, self.engine, operand_mds[0],
                                   operand_mds[1], None, f32[2], None)
            plan.steps.append((prim, _args((_ARG_SRC, operands[0]), (_ARG_WEIGHTS, operands[1]),
                                           (_ARG_DST, f32_mems[2]))))
        except Exception:
            self._destroy(plan)
            raise
        finally:
            for md in mds:
                lib.dnnl_memory_desc_destroy(md)
        return plan

    def _destroy(self, plan: _Plan) -> None:
        for prim, _ in plan.steps:
            self.lib.dnnl_primitive_destroy(prim)
        for mem, _ in plan.handles:
            self.lib.dnnl_memory_destroy(mem)

    def isa(self) -> str:
        """The instruction set oneDNN dispatches to (``dnnl_get_effective_cpu_isa``), as a name."""
        code = int(self.lib.dnnl_get_effective_cpu_isa())
        return _ISA_NAMES.get(code, hex(code))


def _args(*pairs) -> Any:
    return (_ExecArg * len(pairs))(*(_ExecArg(k, m.value) for k, m in pairs))


# dnnl_cpu_isa_t values (oneDNN 3.2's dnnl_types.h; later releases name 0x1EF, 0xFEF and 0x1FEF avx10_1_512*),
# the ones a current x86 CPU reports (an Intel Xeon VM with AMX reports 0xFEF).
_ISA_NAMES = {0x0: "default", 0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0xF: "avx2_vnni", 0x1F: "avx2_vnni_2",
              0x27: "avx512_core", 0x67: "avx512_core_vnni", 0xE7: "avx512_core_bf16", 0x1EF: "avx512_core_fp16",
              0xFEF: "avx512_core_amx", 0x1FEF: "avx512_core_amx_fp16"}


def candidate_paths() -> list[str]:
    forced = os.environ.get("CHAINRULE_ONEDNN_LIB")
    if forced:
        return [forced]
    found: list[str] = []
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix, os.environ.get("CONDA_PREFIX", "")]):
        if prefix:
            found += sorted(glob.glob(os.path.join(prefix, "lib", "libdnnl.so*")), reverse=True)
    return list(dict.fromkeys(os.path.realpath(p) for p in found))


def load() -> tuple[OneDNN | None, str]:
    """(the library with a CPU engine and stream, "") on success, else (None, why not)."""
    paths = candidate_paths()
    if not paths:
        return None, "libdnnl not found"
    errors = []
    for path in paths:
        try:
            return _declare(ctypes.CDLL(path), path), ""
        except (OSError, AttributeError, OneDNNError) as e:
            errors.append(f"{path}: {e}")
    return None, "could not load libdnnl: " + "; ".join(errors)


def _declare(lib: ctypes.CDLL, path: str) -> OneDNN:
    p, pp, i = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int
    sigs = {
        "dnnl_engine_create": [pp, i, ctypes.c_size_t],
        "dnnl_stream_create": [pp, p, ctypes.c_uint],
        "dnnl_stream_wait": [p],
        "dnnl_memory_desc_create_with_strides": [pp, i, _Dims, i, _Dims],
        "dnnl_memory_desc_destroy": [p],
        "dnnl_primitive_attr_create": [pp],
        "dnnl_primitive_attr_destroy": [p],
        "dnnl_reorder_primitive_desc_create": [pp, p, p, p, p, p],
        "dnnl_primitive_destroy": [p],
        "dnnl_memory_destroy": [p],
        "dnnl_matmul_primitive_desc_create": [pp, p, p, p, p, p, p],
        "dnnl_primitive_desc_destroy": [p],
        "dnnl_primitive_create": [pp, p],
        "dnnl_memory_create": [pp, p, p, p],
        "dnnl_memory_set_data_handle": [p, p],
        "dnnl_primitive_execute": [p, p, i, ctypes.c_void_p],
    }
    for name, argtypes in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, ctypes.c_int
    lib.dnnl_get_effective_cpu_isa.restype = ctypes.c_int
    lib.dnnl_version.restype = ctypes.POINTER(ctypes.c_int * 3)
    major, minor, patch = lib.dnnl_version().contents
    engine, stream = ctypes.c_void_p(), ctypes.c_void_p()
    _check(lib.dnnl_engine_create(ctypes.byref(engine), _CPU_ENGINE, 0), "engine create")
    _check(lib.dnnl_stream_create(ctypes.byref(stream), engine, _STREAM_IN_ORDER), "stream create")
    try:
        omp = ctypes.CDLL("libgomp.so.1")  # the same instance libdnnl is linked against (one soname, one copy)
        omp.omp_get_max_threads.restype = ctypes.c_int
    except OSError:
        omp = None
    return OneDNN(path, f"{major}.{minor}.{patch}", lib, engine, stream, omp)
