"""oneDNN's batch normalization primitive on float32 NumPy arrays (N, C, H, W): the training forward (batch mean and
variance out), the evaluation forward (running statistics in) and the backward (gx, and the sums that are the
gradients of gamma and beta), each one JIT-vectorised kernel on oneDNN's OpenMP pool.

With xhat = (x - mean) / sqrt(var + eps) per channel over the n = N H W values of the channel::

    training forward     x, gamma, beta            -> out = gamma xhat + beta, mean, var (biased: / n)
    evaluation forward   x, mean, var, gamma, beta -> out = gamma xhat + beta
    backward             x, mean, var, gamma, gy   -> gx, sum(gy xhat) (d gamma), sum(gy) (d beta)

gamma (``weight``) and beta (``bias``) may each be absent (flags ``use_scale`` / ``use_shift``); the sums come out
only for the ones given. The backward takes x and the statistics, not xhat: the training forward saves nothing
but what it returns.

Why: NumPy needs several passes and two reductions over the activations for each direction (the reductions over
the batch and spatial axes of a channels-last array are not its fast case); in the airbench conv net's training
step batch norm cost about as much as all the convolutions. oneDNN's kernels read x two or three times per
direction. Its mean and variance are two passes (the variance sums squared deviations from the mean, not
E[x^2] - E[x]^2), so a large mean costs no precision (tested).

Layout: channels-last, ``x.transpose(0, 2, 3, 1)`` C-contiguous (the activations of chainrule's conv nets), which
oneDNN runs with its JIT kernel (``bnorm_jit:avx512_core`` here); out and gx are channels-last, gy must be too
(``chainrule.backend.fused`` copies it when not). NCHW stays on NumPy: oneDNN 3.2 runs it with its generic
``ncsp_bnorm`` kernel, measured only 1.1-1.6x the NumPy formula on one thread, and its sequential float32 sums
are ~10x less accurate there than NumPy's pairwise ones along the contiguous axis (xhat off by 5e-4 instead of
3e-5 for values 100 +- 1, n = 16384).

One plan per (direction, shape, flags, eps) is cached as in ``chainrule.backend._onednn_eltwise``.
``chainrule.backend.fused.batch_norm_forward`` / ``batch_norm_inference`` / ``batch_norm_backward`` decide when this
runs, and otherwise leave the NumPy formula to the op.
"""

from __future__ import annotations

import ctypes
from typing import Any, NamedTuple

import numpy as np

from chainrule.backend import _onednn, _onednn_conv
from chainrule.backend._onednn import _args, _check

_F32 = _onednn._F32
_FORWARD_TRAINING, _FORWARD_INFERENCE, _BACKWARD = 64, 96, 128  # dnnl_prop_kind_t
_USE_GLOBAL_STATS, _USE_SCALE, _USE_SHIFT = 0x1, 0x2, 0x4  # dnnl_normalization_flags_t
_ARG = {"src": 1, "dst": 17, "mean": 49, "variance": 50, "scale": 51, "shift": 52, "diff_src": 129,
        "diff_dst": 145, "diff_scale": 255, "diff_shift": 256}
_QUERY_IMPL_INFO_STR = 8  # dnnl_query_t
_CACHE_SIZE = 64  # plans kept: a conv net's training step has 2 per batch norm layer, evaluation adds 1


class _Plan(NamedTuple):
    prim: Any  # the primitive (ctypes.c_void_p)
    mems: dict  # argument name -> memory object, whose data handle is set from the caller's array at every call
    args: Any  # the execute arguments (a ctypes array)
    impl: str  # oneDNN's implementation name, e.g. "bnorm_jit:avx512_core"


class BatchNormPrimitives:
    """The cached batch normalization plans of one loaded oneDNN."""

    def __init__(self, lib: _onednn.OneDNN):
        self.dnnl, self.cache = lib, _onednn.PlanCache(_CACHE_SIZE)
        c, p, pp = ctypes, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
        sigs = {"dnnl_batch_normalization_forward_primitive_desc_create": [pp, p, c.c_int, p, p, c.c_float,
                                                                           c.c_uint, p],
                "dnnl_batch_normalization_backward_primitive_desc_create": [pp, p, c.c_int, p, p, p, c.c_float,
                                                                            c.c_uint, p, p],
                "dnnl_primitive_desc_query": [p, c.c_int, c.c_int, p]}
        for name, argtypes in sigs.items():
            fn = getattr(lib.lib, name)
            fn.argtypes, fn.restype = argtypes, c.c_int

    def forward_training(self, x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
                         eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(out channels-last, mean (C,), biased variance (C,)) of the batch x."""
        c = x.shape[1]
        arrays = {"src": x, "dst": _onednn_conv.channels_last(x.shape), "mean": np.empty(c, np.float32),
                  "variance": np.empty(c, np.float32)}
        self._run("training", x, eps, _affine(arrays, weight, bias), arrays)
        return arrays["dst"], arrays["mean"], arrays["variance"]

    def forward_inference(self, x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray | None,
                          bias: np.ndarray | None, eps: float) -> np.ndarray:
        """out channels-last, normalised with the given mean and variance (C,)."""
        arrays = {"src": x, "dst": _onednn_conv.channels_last(x.shape), "mean": np.ascontiguousarray(mean),
                  "variance": np.ascontiguousarray(var)}
        self._run("inference", x, eps, _affine(arrays, weight, bias), arrays)
        return arrays["dst"]

    def backward(self, x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray | None,
                 with_bias: bool, grad: np.ndarray,
                 eps: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(gx channels-last, sum(grad xhat) (C,) if ``weight`` is given, sum(grad) (C,) if ``with_bias``) of the
        training forward that returned ``mean`` and ``var``; ``grad`` channels-last."""
        c = x.shape[1]
        arrays = {"src": x, "mean": np.ascontiguousarray(mean), "variance": np.ascontiguousarray(var),
                  "diff_dst": grad, "diff_src": _onednn_conv.channels_last(x.shape)}
        flags = _affine(arrays, weight, None)
        if weight is not None:
            arrays["diff_scale"] = np.empty(c, np.float32)
        if with_bias:
            flags |= _USE_SHIFT
            arrays["diff_shift"] = np.empty(c, np.float32)
        self._run("backward", x, eps, flags, arrays)
        return arrays["diff_src"], arrays.get("diff_scale"), arrays.get("diff_shift")

    def impl(self, direction: str, shape: tuple[int, int, int, int]) -> list[str]:
        """The implementation names of the cached plans of one direction ("training", "inference", "backward") and
        input shape, e.g. ["bnorm_jit:avx512_core"]."""
        return [plan.impl for key, plan in self.cache.items() if key[:2] == (direction, shape)]

    def _run(self, direction: str, x: np.ndarray, eps: float, flags: int, arrays: dict) -> None:
        key = (direction, x.shape, flags, float(eps))
        lib = self.dnnl
        with lib.lock:
            # the arrays given follow from direction and flags
            plan = self.cache.get_or_make(key, lambda: self._plan(*key, tuple(arrays)), self._destroy)
            for name, mem in plan.mems.items():
                _check(lib.lib.dnnl_memory_set_data_handle(mem, ctypes.c_void_p(arrays[name].ctypes.data)),
                       "set_data_handle")
            _check(lib.lib.dnnl_primitive_execute(plan.prim, lib.stream, len(plan.args), plan.args), "execute")
            _check(lib.lib.dnnl_stream_wait(lib.stream), "stream wait")

    def _plan(self, direction: str, shape: tuple, flags: int, eps: float,
              names: tuple[str, ...]) -> _Plan:
        """The primitive of one problem and a memory object per argument in ``names`` (keys of ``_ARG``)."""
        lib, d = self.dnnl.lib, self.dnnl
        n, c, h, w = shape
        strides = (h * w * c, 1, w * c, c)  # channels-last
        md, vec = ctypes.c_void_p(), ctypes.c_void_p()
        fwd, pd, prim = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        mems: dict = {}
        try:
            _check(lib.dnnl_memory_desc_create_with_strides(ctypes.byref(md), 4, _onednn._Dims(*shape), _F32,
                                                            _onednn._Dims(*strides)), "memory desc")
            _check(lib.dnnl_memory_desc_create_with_strides(ctypes.byref(vec), 1, _onednn._Dims(c), _F32,
                                                            _onednn._Dims(1)), "memory desc")
            create_fwd = lib.dnnl_batch_normalization_forward_primitive_desc_create
            if direction == "inference":
                _check(create_fwd(ctypes.byref(pd), d.engine, _FORWARD_INFERENCE, md, md, eps,
                                  flags | _USE_GLOBAL_STATS, None), create_fwd.__name__)
            else:
                _check(create_fwd(ctypes.byref(fwd), d.engine, _FORWARD_TRAINING, md, md, eps, flags, None),
                       create_fwd.__name__)
                if direction == "training":
                    pd, fwd = fwd, ctypes.c_void_p()
                else:  # the forward's descriptor is the backward's hint
                    create_bwd = lib.dnnl_batch_normalization_backward_primitive_desc_create
                    _check(create_bwd(ctypes.byref(pd), d.engine, _BACKWARD, md, md, md, eps, flags, fwd, None),
                           create_bwd.__name__)
            _check(lib.dnnl_primitive_create(ctypes.byref(prim), pd), "primitive create")
            for name in names:
                mems[name] = d._memory(md if name in ("src", "dst", "diff_src", "diff_dst") else vec, None)
            return _Plan(prim, mems, _args(*((_ARG[name], mem) for name, mem in mems.items())), _impl(lib, pd))
        except Exception:
            d.release(prims=[prim], mems=mems.values())
            raise
        finally:
            d.release(pds=[fwd, pd], mds=[md, vec])

    def _destroy(self, plan: _Plan) -> None:
        self.dnnl.release(prims=[plan.prim], mems=plan.mems.values())


def _affine(arrays: dict, weight: np.ndarray | None, bias: np.ndarray | None) -> int:
    """The flags for the given gamma / beta, which are added to ``arrays`` as "scale" / "shift"."""
    flags = 0
    if weight is not None:
        flags |= _USE_SCALE
        arrays["scale"] = np.ascontiguousarray(weight)
    if bias is not None:
        flags |= _USE_SHIFT
        arrays["shift"] = np.ascontiguousarray(bias)
    return flags


def _impl(lib: ctypes.CDLL, pd) -> str:
    name = ctypes.c_char_p()
    if lib.dnnl_primitive_desc_query(pd, _QUERY_IMPL_INFO_STR, 0, ctypes.byref(name)) != 0 or not name.value:
        return "?"
    return name.value.decode()


def primitives() -> BatchNormPrimitives | None:
    """The batch normalization primitives on the oneDNN the GEMM and convolution backends load, or None where it
    does not load."""
    return _onednn.shared(BatchNormPrimitives)
