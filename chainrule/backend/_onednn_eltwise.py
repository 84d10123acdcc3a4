"""oneDNN's elementwise GELU (erf form) on float32 NumPy arrays: forward ``x Phi(x)`` and backward
``grad (Phi(x) + x phi(x))``, each one JIT-vectorised pass on oneDNN's OpenMP pool.

Why: in a conv net's training step the GELUs are a large share of the elementwise work, and NumPy has no erf
(``scipy.special.erf`` on float32 casts to float64 and back, ~50 ns per element here), so the exact GELU cost
chainrule 5-7x PyTorch's time per GELU layer (``bench/bench_conv.py --layers``); oneDNN's ``eltwise_gelu_erf`` ran
one such layer ~20x faster than the NumPy formula on one thread. Its float32 error against a float64 reference is
~4e-7 absolute (the NumPy formula's is of the same order).

The arrays are processed as flat buffers, so any dense layout works (C-contiguous, or channels-last); the output
has the input's layout. One plan per (direction, size) is cached as in ``chainrule.backend._onednn_conv``.
``chainrule.backend.fused.gelu_erf`` / ``gelu_erf_backward`` decide when this runs (float32, dense, the oneDNN
convolution backend selected) and otherwise leave the NumPy formula to the op.
"""

from __future__ import annotations

import ctypes

import numpy as np

from chainrule.backend import _onednn
from chainrule.backend._onednn import _args, _check

_F32, _FORWARD_TRAINING = _onednn._F32, 64
_GELU_ERF = 0x31  # dnnl_eltwise_gelu_erf (dnnl_alg_kind_t: eltwise_relu = 0x20, ..., pow, gelu_erf)
_ARG_SRC, _ARG_DST, _ARG_DIFF_SRC, _ARG_DIFF_DST = 1, 17, 129, 145
_CACHE_SIZE = 64


def dense(x: np.ndarray) -> bool:
    """Whether ``x``'s elements fill its memory without gaps, in some order of its axes (so it is a flat buffer)."""
    if x.flags.c_contiguous or x.flags.f_contiguous:
        return True
    order = np.argsort([-abs(s) for s in x.strides], kind="stable")
    return bool(x.transpose(order).flags.c_contiguous)


class GeluPrimitives:
    """The cached forward / backward eltwise plans of one loaded oneDNN."""

    def __init__(self, lib: _onednn.OneDNN):
        self.dnnl, self.cache = lib, _onednn.PlanCache(_CACHE_SIZE)
        c = ctypes
        lib.lib.dnnl_eltwise_forward_primitive_desc_create.argtypes = [
            c.POINTER(c.c_void_p), c.c_void_p, c.c_int, c.c_int, c.c_void_p, c.c_void_p, c.c_float, c.c_float,
            c.c_void_p]
        lib.lib.dnnl_eltwise_backward_primitive_desc_create.argtypes = [
            c.POINTER(c.c_void_p), c.c_void_p, c.c_int, c.c_void_p, c.c_void_p, c.c_void_p, c.c_float, c.c_float,
            c.c_void_p, c.c_void_p]
        for name in ("dnnl_eltwise_forward_primitive_desc_create", "dnnl_eltwise_backward_primitive_desc_create"):
            getattr(lib.lib, name).restype = c.c_int

    def forward(self, x: np.ndarray) -> np.ndarray:
        """GELU(x) for a dense float32 ``x``, in x's layout."""
        y = np.empty_like(x)
        self._run(("forward", x.size), (x, y))
        return y

    def backward(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """grad * GELU'(x) for dense float32 ``x`` and ``grad`` of one layout."""
        gx = np.empty_like(x)
        self._run(("backward", x.size), (x, grad, gx))
        return gx

    def _run(self, key, arrays) -> None:
        lib = self.dnnl
        with lib.lock:
            plan = self.cache.get_or_make(key, lambda: self._plan(*key), self._destroy)
            prim, mems, args = plan
            for mem, a in zip(mems, arrays):
                _check(lib.lib.dnnl_memory_set_data_handle(mem, ctypes.c_void_p(a.ctypes.data)), "set_data_handle")
            _check(lib.lib.dnnl_primitive_execute(prim, lib.stream, len(args), args), "execute")
            _check(lib.lib.dnnl_stream_wait(lib.stream), "stream wait")

    def _plan(self, direction: str, n: int):
        lib, d = self.dnnl.lib, self.dnnl
        md, fwd, pd, prim = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        mems: list = []
        try:
            _check(lib.dnnl_memory_desc_create_with_strides(ctypes.byref(md), 1, _onednn._Dims(n), _F32,
                                                            _onednn._Dims(1)), "memory desc")
            _check(lib.dnnl_eltwise_forward_primitive_desc_create(ctypes.byref(fwd), d.engine, _FORWARD_TRAINING,
                                                                  _GELU_ERF, md, md, 0.0, 0.0, None),
                   "dnnl_eltwise_forward_primitive_desc_create")
            if direction == "forward":
                names = (_ARG_SRC, _ARG_DST)
                pd, fwd = fwd, ctypes.c_void_p()
            else:
                names = (_ARG_SRC, _ARG_DIFF_DST, _ARG_DIFF_SRC)
                _check(lib.dnnl_eltwise_backward_primitive_desc_create(ctypes.byref(pd), d.engine, _GELU_ERF, md, md,
                                                                       md, 0.0, 0.0, fwd, None),
                       "dnnl_eltwise_backward_primitive_desc_create")
            _check(lib.dnnl_primitive_create(ctypes.byref(prim), pd), "primitive create")
            mems = [d._memory(md, None) for _ in names]
            return prim, mems, _args(*zip(names, mems))
        except Exception:
            d.release(prims=[prim], mems=mems)
            raise
        finally:
            d.release(pds=[fwd, pd], mds=[md])

    def _destroy(self, plan) -> None:
        prim, mems, _ = plan
        self.dnnl.release(prims=[prim], mems=mems)


def primitives() -> GeluPrimitives | None:
    """The GELU primitives on the oneDNN the GEMM and convolution backends load, or None where it does not load."""
    return _onednn.shared(GeluPrimitives)
