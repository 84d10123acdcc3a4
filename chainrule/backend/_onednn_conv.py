"""oneDNN's convolution primitives on NumPy arrays: forward, backward data, backward weights (+ bias), float32 or
bfloat16 products.

Shapes (N, C, H, W) throughout; weights (O, C / groups, kh, kw); the geometry is one
:class:`~chainrule.backend.conv_geometry.ConvGeometry`. The three functions have the signatures of the NumPy im2col
path in ``chainrule.backend.conv``, which selects between them (``CHAINRULE_CONV``); the library itself (``libdnnl``
from the ``onednn-cpu-gomp`` wheel, its engine, stream, lock and error checking) is the one the GEMM backend loads
(``chainrule.backend._onednn``).

Layout: channels-last. An activation or gradient is a logical (N, C, H, W) array whose memory is (N, H, W, C)
C-contiguous (``x.transpose(0, 2, 3, 1)`` is C-contiguous: PyTorch's ``channels_last``), the layout oneDNN's direct
convolution kernels read and write without a reorder, and one that NumPy's elementwise ops keep (their output
follows the input's memory order), so GELU, batch norm and the additions of backward stay channels-last between
two convolutions and no op pays a reorder. Every output here (y, gx) is allocated channels-last; an input (x, gy)
is used as it lies if it is channels-last, and copied to channels-last otherwise (a batch of NCHW images, once, at
the first layer: oneDNN 3.2 runs its reference kernel, ~10x slower, for an NCHW input with a channels-last output).
Weights and weight gradients are plain (O, C / groups, kh, kw) arrays; the primitive is asked for the weights layout
it prefers (``format_tag any``: a blocked one) and the weights are reordered into it at every call (at most a few
hundred KiB here), as is the weight gradient out of it.

``ACTIVATIONS = "any"`` lets the primitive pick the activations' layout too (a blocked one, e.g. ``nChw8c`` on
AVX2), with a reorder in and out of every call (NumPy's ops cannot read a blocked layout, so it cannot stay between
layers): measured ~1.3x the channels-last time over the airbench net's convolutions on an AVX2 VM, slower on every
layer (``bench/bench_conv.py --layers --layouts``, ``bench/RESULTS_conv.md``); kept so that comparison can be rerun.

Precision: float32 products, or with ``precision="bfloat16"`` (``backend.set_float32_matmul_precision("medium")``)
the operands (x, w, gy) rounded to bfloat16 by a reorder and accumulated in float32, outputs float32, on CPUs whose
oneDNN has bfloat16 convolutions (AVX-512 BF16 or AMX; ``bf16_problem`` says why not elsewhere).

One plan (primitive descriptors JIT-compiled into primitives, memory objects, reorders) is created per distinct
problem -- direction, shapes, geometry, bias, precision, activation layout -- and cached, least recently used
first out: a training step of a conv net has a few dozen distinct convolutions, so after the first step every call is a
cache hit (a data-handle swap per operand and one to three ``execute`` calls) and no primitive is created.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.backend import _onednn
from chainrule.backend._onednn import OneDNNError, _args, _check
from chainrule.backend.conv_geometry import ConvGeometry

_F32, _BF16 = _onednn._F32, _onednn._BF16
_FORMAT_ANY = 1  # dnnl_format_tag_any
_FORWARD_TRAINING, _CONVOLUTION_DIRECT = 64, 0x1  # dnnl_prop_kind_t, dnnl_alg_kind_t
_QUERY_IMPL_INFO_STR = 8  # dnnl_query_t
_QUERY_MD = {"src": 129, "diff_src": 130, "weights": 131, "diff_weights": 132, "dst": 133, "diff_dst": 134}
_ARG = {"src": 1, "dst": 17, "weights": 33, "bias": 41, "diff_src": 129, "diff_dst": 145, "diff_weights": 161,
        "diff_bias": 169}
_MEMORY_ALLOCATE = ctypes.c_void_p(-1).value  # DNNL_MEMORY_ALLOCATE: the memory object owns a buffer
_CACHE_SIZE = 128  # plans kept: a training step of a 7-conv net has 21 (3 per conv), evaluation adds a few
_DTYPE = {"float32": _F32, "bfloat16": _BF16}

DTYPES = (np.dtype(np.float32),)  # what these kernels compute; backend.conv runs other dtypes on NumPy
ACTIVATIONS = "nhwc"  # the activations' layout inside the primitive: "nhwc" (as they lie) or "any" (its choice)

_Dims = _onednn._Dims


def channels_last(shape: tuple[int, int, int, int]) -> np.ndarray:
    """An uninitialised float32 array of logical shape (N, C, H, W) laid out channels-last in memory."""
    n, c, h, w = shape
    return np.empty((n, h, w, c), dtype=np.float32).transpose(0, 3, 1, 2)


def is_channels_last(x: np.ndarray) -> bool:
    return x.transpose(0, 2, 3, 1).flags.c_contiguous


def _channels_last(x: np.ndarray) -> np.ndarray:
    """``x`` as float32 channels-last: itself if it is, else a channels-last copy."""
    x = np.asarray(x, dtype=np.float32)
    if is_channels_last(x):
        return x
    out = channels_last(x.shape)
    out[...] = x
    return out


@dataclass
class _ConvPlan:
    """The primitives of one convolution problem in execution order (reorders around the convolution) and the
    memory objects whose data handles are set from the call's arrays before every run."""

    steps: list = field(default_factory=list)  # [(primitive, args array)]
    handles: list = field(default_factory=list)  # [(memory object, name of the caller's array)]
    owned: list = field(default_factory=list)  # memory objects with their own buffers (reordered operands)
    impl: str = ""  # the convolution's implementation name (e.g. "jit:avx2"), for the benchmark and the tests


class _Builder:
    """Creates the memory descriptors, memory objects and primitives of one plan, and frees the descriptors."""

    def __init__(self, lib: _onednn.OneDNN):
        self.dnnl, self.lib, self.mds, self.pds = lib, lib.lib, [], []
        self.plan = _ConvPlan()

    def md(self, dims, strides=None, dtype=_F32) -> ctypes.c_void_p:
        md = ctypes.c_void_p()
        if strides is None:
            _check(self.lib.dnnl_memory_desc_create_with_tag(ctypes.byref(md), len(dims), _Dims(*dims), dtype,
                                                             _FORMAT_ANY), "memory desc (any)")
        else:
            _check(self.lib.dnnl_memory_desc_create_with_strides(ctypes.byref(md), len(dims), _Dims(*dims), dtype,
                                                                 _Dims(*strides)), "memory desc")
        self.mds.append(md)
        return md

    def user(self, md, name: str) -> ctypes.c_void_p:
        """A memory object over the caller's array ``name`` (its data handle is set at every call)."""
        mem = self.dnnl._memory(md, None)
        self.plan.handles.append((mem, name))
        return mem

    def owned(self, md) -> ctypes.c_void_p:
        mem = self.dnnl._memory(md, _MEMORY_ALLOCATE)
        self.plan.owned.append(mem)
        return mem

    def pd(self, create, *args) -> ctypes.c_void_p:
        pd = ctypes.c_void_p()
        _check(create(ctypes.byref(pd), *args), create.__name__)
        self.pds.append(pd)
        return pd

    def queried(self, pd, what: str) -> ctypes.c_void_p:
        return self.lib.dnnl_primitive_desc_query_md(pd, _QUERY_MD[what], 0)

    def step(self, pd, *pairs) -> None:
        prim = ctypes.c_void_p()
        _check(self.lib.dnnl_primitive_create(ctypes.byref(prim), pd), "primitive create")
        self.plan.steps.append((prim, _args(*pairs)))

    def reorder(self, src_md, src_mem, dst_md, dst_mem) -> None:
        pd = self.pd(self.lib.dnnl_reorder_primitive_desc_create, src_md, self.dnnl.engine, dst_md,
                     self.dnnl.engine, None)
        self.step(pd, (_ARG["src"], src_mem), (_ARG["dst"], dst_mem))

    def operand_in(self, user_md, name: str, want_md) -> ctypes.c_void_p:
        """The memory the primitive reads for the caller's array ``name``: the array itself if the primitive wants
        its layout and dtype, else a buffer it is reordered into first."""
        mem = self.user(user_md, name)
        if self.lib.dnnl_memory_desc_equal(user_md, want_md):
            return mem
        inner = self.owned(want_md)
        self.reorder(user_md, mem, want_md, inner)
        return inner

    def operand_out(self, user_md, name: str, want_md, after: list) -> ctypes.c_void_p:
        """The memory the primitive writes for the caller's array ``name``; a reorder into the array is queued in
        ``after`` when the primitive wants another layout."""
        mem = self.user(user_md, name)
        if self.lib.dnnl_memory_desc_equal(user_md, want_md):
            return mem
        inner = self.owned(want_md)
        after.append((want_md, inner, user_md, mem))
        return inner

    def finish(self) -> None:
        for md in self.mds:
            self.lib.dnnl_memory_desc_destroy(md)
        for pd in self.pds:
            self.lib.dnnl_primitive_desc_destroy(pd)
        self.mds, self.pds = [], []


def build_plan(dnnl: _onednn.OneDNN, body) -> _ConvPlan:
    """The plan ``body(builder)`` assembles with a ``_Builder``; on an error what it had created is destroyed."""
    b = _Builder(dnnl)
    try:
        body(b)
    except Exception:
        _destroy(dnnl, b.plan)
        raise
    finally:
        b.finish()
    return b.plan


def _destroy(lib: _onednn.OneDNN, plan: _ConvPlan) -> None:
    for prim, _ in plan.steps:
        lib.lib.dnnl_primitive_destroy(prim)
    for mem, _ in plan.handles:
        lib.lib.dnnl_memory_destroy(mem)
    for mem in plan.owned:
        lib.lib.dnnl_memory_destroy(mem)


def _nhwc(shape) -> tuple[tuple, tuple]:
    """(dims, strides in elements) of a channels-last (N, C, H, W) array."""
    n, c, h, w = shape
    return (n, c, h, w), (h * w * c, 1, w * c, c)


def _weight_dims_strides(w_shape, groups: int) -> tuple[tuple, tuple]:
    o, cg, kh, kw = w_shape
    if groups == 1:
        return (o, cg, kh, kw), (cg * kh * kw, kh * kw, kw, 1)
    og = o // groups
    return (groups, og, cg, kh, kw), (og * cg * kh * kw, cg * kh * kw, kh * kw, kw, 1)


def _geometry_dims(geom: ConvGeometry) -> tuple:
    (top, bottom), (left, right) = geom.padding
    return (_Dims(*geom.stride), _Dims(*(d - 1 for d in geom.dilation)),  # oneDNN counts dilation from 0
            _Dims(top, left), _Dims(bottom, right))


class ConvPrimitives:
    """The plan cache of one loaded oneDNN, and the three convolution directions run through it."""

    def __init__(self, lib: _onednn.OneDNN):
        self.dnnl = lib
        self.cache = _onednn.PlanCache(_CACHE_SIZE)  # its ``created`` counts the plans made so far
        self._bf16_problem: str | None = None
        _declare(lib.lib)

    # ---- the three directions ------------------------------------------------------------------------------------


    @property
    def created(self) -> int:
        """Plans created so far (a training step creates none after its first run)."""
        return self.cache.created

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geom: ConvGeometry,
                precision: str = "float32") -> np.ndarray:
        x, w = _channels_last(x), np.ascontiguousarray(w, dtype=np.float32)
        n, _, h, wd = x.shape
        ho, wo = geom.output_size((h, wd), w.shape[2:])
        y = channels_last((n, w.shape[0], ho, wo))
        arrays = {"x": x, "w": w, "y": y}
        if b is not None:
            arrays["b"] = np.ascontiguousarray(b, dtype=np.float32)
        key = ("forward", x.shape, w.shape, b is not None, geom, precision)
        self._run(key, arrays, lambda: self._forward_plan(x.shape, w.shape, b is not None, geom,
                                                          precision))
        return y

    def backward_data(self, gy: np.ndarray, w: np.ndarray, in_hw: tuple[int, int], geom: ConvGeometry,
                      precision: str = "float32") -> np.ndarray:
        gy, w = _channels_last(gy), np.ascontiguousarray(w, dtype=np.float32)
        x_shape = (gy.shape[0], w.shape[1] * geom.groups, *in_hw)
        gx = channels_last(x_shape)
        key = ("backward_data", x_shape, gy.shape, w.shape, geom, precision)
        self._run(key, {"gy": gy, "w": w, "gx": gx},
                  lambda: self._backward_data_plan(x_shape, gy.shape, w.shape, geom, precision))
        return gx

    def backward_weight(self, x: np.ndarray, gy: np.ndarray, kernel_hw: tuple[int, int], geom: ConvGeometry,
                        bias: bool, precision: str = "float32") -> tuple[np.ndarray, np.ndarray | None]:
        x, gy = _channels_last(x), _channels_last(gy)
        w_shape = (gy.shape[1], x.shape[1] // geom.groups, *kernel_hw)
        gw = np.empty(w_shape, dtype=np.float32)
        arrays = {"x": x, "gy": gy, "gw": gw}
        if bias:
            arrays["gb"] = np.empty(gy.shape[1], dtype=np.float32)
        key = ("backward_weight", x.shape, gy.shape, w_shape, bias, geom, precision)
        self._run(key, arrays, lambda: self._backward_weight_plan(x.shape, gy.shape,
                                                                  w_shape, bias, geom, precision))
        return gw, arrays.get("gb")

    def impl(self, key_prefix: str) -> list[str]:
        """The implementation names of the cached plans of one direction ("forward", "backward_data",
        "backward_weight"), e.g. ["jit:avx2"]."""
        return [plan.impl for key, plan in self.cache.items() if key[0] == key_prefix]

    def bf16_problem(self) -> str:
        """Why this oneDNN has no bfloat16 convolution on this CPU ("" when it has), found by creating one."""
        if self._bf16_problem is None:
            try:
                geom = ConvGeometry()
                for make in (lambda: self._forward_plan((1, 8, 4, 4), (8, 8, 3, 3), True, geom, "bfloat16"),
                             lambda: self._backward_data_plan((1, 8, 4, 4), (1, 8, 2, 2), (8, 8, 3, 3), geom,
                                                              "bfloat16"),
                             lambda: self._backward_weight_plan((1, 8, 4, 4), (1, 8, 2, 2), (8, 8, 3, 3), True,
                                                                geom, "bfloat16")):
                    with self.dnnl.lock:
                        _destroy(self.dnnl, make())
                self._bf16_problem = ""
            except OneDNNError as e:
                if e.status != _onednn._UNIMPLEMENTED:
                    raise
                self._bf16_problem = (f"oneDNN {self.dnnl.version} has no bfloat16 convolution for this CPU (its "
                                      f"instruction set here is {self.dnnl.isa()}; bfloat16 convolutions need "
                                      "AVX-512 BF16, avx512_core_bf16, or AMX)")
        return self._bf16_problem

    # ---- plans ---------------------------------------------------------------------------------------------------

    def _run(self, key, arrays: dict, make) -> None:
        lib = self.dnnl
        key = key + (ACTIVATIONS,)
        with lib.lock:  # plans' memory objects and the stream are shared state: one caller at a time
            lib.execute(self.cache.get_or_make(key, make, lambda old: _destroy(lib, old)), arrays)

    def _mds(self, b: _Builder, shape, precision: str):
        """(the caller's memory desc, channels-last float32, and the one the primitive is created with) of an
        activation operand."""
        dims, strides = _nhwc(shape)
        user = b.md(dims, strides)
        if ACTIVATIONS == "any":
            return user, b.md(dims, None, _DTYPE[precision])
        return user, (user if precision == "float32" else b.md(dims, strides, _BF16))

    def _fwd_pd(self, b: _Builder, src, wei, bias, dst, geom) -> ctypes.c_void_p:
        return b.pd(b.lib.dnnl_convolution_forward_primitive_desc_create, self.dnnl.engine, _FORWARD_TRAINING,
                    _CONVOLUTION_DIRECT, src, wei, bias, dst, *_geometry_dims(geom), None)

    def _forward_plan(self, x_shape, w_shape, bias, geom, precision) -> _ConvPlan:
        def body(b: _Builder):
            n, _, h, wd = x_shape
            y_shape = (n, w_shape[0], *geom.output_size((h, wd), w_shape[2:]))
            x_user, x_want = self._mds(b, x_shape, precision)
            y_user, y_want = self._mds(b, y_shape, "float32")
            w_user = b.md(*_weight_dims_strides(w_shape, geom.groups))
            w_any = b.md(_weight_dims_strides(w_shape, geom.groups)[0], None, _DTYPE[precision])
            b_md = b.md((w_shape[0],), (1,)) if bias else None
            pd = self._fwd_pd(b, x_want, w_any, b_md, y_want, geom)
            src = b.operand_in(x_user, "x", b.queried(pd, "src"))
            wei = b.operand_in(w_user, "w", b.queried(pd, "weights"))
            after: list = []
            dst = b.operand_out(y_user, "y", b.queried(pd, "dst"), after)
            pairs = [(_ARG["src"], src), (_ARG["weights"], wei), (_ARG["dst"], dst)]
            if bias:
                pairs.append((_ARG["bias"], b.user(b_md, "b")))
            b.step(pd, *pairs)
            b.plan.impl = _impl(b.lib, pd)
            for args in after:
                b.reorder(*args)
        return build_plan(self.dnnl, body)

    def _backward_data_plan(self, x_shape, gy_shape, w_shape, geom, precision) -> _ConvPlan:
        def body(b: _Builder):
            gx_user, gx_want = self._mds(b, x_shape, "float32")
            gy_user, gy_want = self._mds(b, gy_shape, precision)
            w_user = b.md(*_weight_dims_strides(w_shape, geom.groups))
            w_any = b.md(_weight_dims_strides(w_shape, geom.groups)[0], None, _DTYPE[precision])
            x_want = gx_want if precision == "float32" else self._mds(b, x_shape, precision)[1]
            hint = self._fwd_pd(b, x_want, w_any, None, gy_want, geom)
            pd = b.pd(b.lib.dnnl_convolution_backward_data_primitive_desc_create, self.dnnl.engine,
                      _CONVOLUTION_DIRECT, gx_want, w_any, gy_want, *_geometry_dims(geom), hint, None)
            diff_dst = b.operand_in(gy_user, "gy", b.queried(pd, "diff_dst"))
            wei = b.operand_in(w_user, "w", b.queried(pd, "weights"))
            after: list = []
            diff_src = b.operand_out(gx_user, "gx", b.queried(pd, "diff_src"), after)
            b.step(pd, (_ARG["diff_dst"], diff_dst), (_ARG["weights"], wei), (_ARG["diff_src"], diff_src))
            b.plan.impl = _impl(b.lib, pd)
            for args in after:
                b.reorder(*args)
        return build_plan(self.dnnl, body)

    def _backward_weight_plan(self, x_shape, gy_shape, w_shape, bias, geom,
                              precision) -> _ConvPlan:
        def body(b: _Builder):
            x_user, x_want = self._mds(b, x_shape, precision)
            gy_user, gy_want = self._mds(b, gy_shape, precision)
            gw_user = b.md(*_weight_dims_strides(w_shape, geom.groups))
            gw_any = b.md(_weight_dims_strides(w_shape, geom.groups)[0], None, _F32)
            w_any = b.md(_weight_dims_strides(w_shape, geom.groups)[0], None, _DTYPE[precision])
            gb_md = b.md((w_shape[0],), (1,)) if bias else None
            hint = self._fwd_pd(b, x_want, w_any, gb_md, gy_want, geom)
            pd = b.pd(b.lib.dnnl_convolution_backward_weights_primitive_desc_create, self.dnnl.engine,
                      _CONVOLUTION_DIRECT, x_want, gw_any, gb_md, gy_want, *_geometry_dims(geom), hint, None)
            src = b.operand_in(x_user, "x", b.queried(pd, "src"))
            diff_dst = b.operand_in(gy_user, "gy", b.queried(pd, "diff_dst"))
            after: list = []
            diff_wei = b.operand_out(gw_user, "gw", b.queried(pd, "diff_weights"), after)
            pairs = [(_ARG["src"], src), (_ARG["diff_dst"], diff_dst), (_ARG["diff_weights"], diff_wei)]
            if bias:
                pairs.append((_ARG["diff_bias"], b.user(gb_md, "gb")))
            b.step(pd, *pairs)
            b.plan.impl = _impl(b.lib, pd)
            for args in after:
                b.reorder(*args)
        return build_plan(self.dnnl, body)


def _impl(lib: ctypes.CDLL, pd) -> str:
    name = ctypes.c_char_p()
    if lib.dnnl_primitive_desc_query(pd, _QUERY_IMPL_INFO_STR, 0, ctypes.byref(name)) != 0 or not name.value:
        return "?"
    return name.value.decode()


def _declare(lib: ctypes.CDLL) -> None:
    p, pp, i, dims = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, _Dims
    sigs = {
        "dnnl_memory_desc_create_with_tag": ([pp, i, dims, i, i], ctypes.c_int),
        "dnnl_memory_desc_equal": ([p, p], ctypes.c_int),
        "dnnl_primitive_desc_query_md": ([p, i, i], p),
        "dnnl_primitive_desc_query": ([p, i, i, p], ctypes.c_int),
        "dnnl_convolution_forward_primitive_desc_create": ([pp, p, i, i, p, p, p, p, dims, dims, dims, dims, p],
                                                           ctypes.c_int),
        "dnnl_convolution_backward_data_primitive_desc_create": ([pp, p, i, p, p, p, dims, dims, dims, dims, p, p],
                                                                 ctypes.c_int),
        "dnnl_convolution_backward_weights_primitive_desc_create": (
            [pp, p, i, p, p, p, p, dims, dims, dims, dims, p, p], ctypes.c_int),
    }
    for name, (argtypes, restype) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype


_PRIMITIVES: ConvPrimitives | None = None
_WHY = ""


def primitives() -> tuple[ConvPrimitives | None, str]:
    """(the convolution primitives on the oneDNN the GEMM backend loads, "") or (None, why not); loads once."""
    global _PRIMITIVES, _WHY
    if _PRIMITIVES is None and not _WHY:
        from chainrule.backend import blas  # the one loaded library, shared with the GEMM backend
        lib, why = blas._onednn_library()
        if lib is None:
            _WHY = why
        else:
            try:
                _PRIMITIVES = ConvPrimitives(lib)
            except AttributeError as e:  # a libdnnl without the convolution API (not oneDNN 3.x)
                _WHY = f"{lib.path} lacks oneDNN 3's convolution API: {e}"
    return _PRIMITIVES, _WHY


def load() -> tuple[Any, str]:
    """(this module, "") when oneDNN's convolutions can run here, else (None, why not): the contract of an
    implementation of ``chainrule.backend.conv``."""
    prims, why = primitives()
    return (sys.modules[__name__] if prims is not None else None), why


def _precision(prims: ConvPrimitives) -> str:
    """"bfloat16" under ``set_float32_matmul_precision("medium")`` where this CPU has bfloat16 convolutions, else
    "float32" ("medium" allows bfloat16 products, as in PyTorch; it does not demand them)."""
    from chainrule.backend import blas

    medium = blas.get_float32_matmul_precision() == "medium"
    return "bfloat16" if medium and not prims.bf16_problem() else "float32"


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geom: ConvGeometry) -> np.ndarray:
    """y (N, O, Ho, Wo), channels-last, from x (N, C, H, W), w (O, C / groups, kh, kw) and b (O,) or None."""
    prims = _loaded()
    return prims.forward(x, w, b, geom, _precision(prims))


def conv2d_backward_data(gy: np.ndarray, w: np.ndarray, in_hw: tuple[int, int], geom: ConvGeometry) -> np.ndarray:
    """gx (N, C, H, W), channels-last, from gy (N, O, Ho, Wo), w (O, C / groups, kh, kw) and (H, W)."""
    prims = _loaded()
    return prims.backward_data(gy, w, in_hw, geom, _precision(prims))


def conv2d_backward_weight(x: np.ndarray, gy: np.ndarray, kernel_hw: tuple[int, int], geom: ConvGeometry,
                           bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(gw (O, C / groups, kh, kw), gb (O,) if ``bias`` else None) from x (N, C, H, W) and gy (N, O, Ho, Wo)."""
    prims = _loaded()
    return prims.backward_weight(x, gy, kernel_hw, geom, bias, _precision(prims))


def _loaded() -> ConvPrimitives:
    prims, why = primitives()
    if prims is None:
        raise RuntimeError(f"oneDNN convolutions are unavailable: {why}; pip install onednn-cpu-gomp, or use "
                           "CHAINRULE_CONV=numpy")
    return prims


__all__ = ["ACTIVATIONS", "DTYPES", "ConvPrimitives", "channels_last", "conv2d_backward_data",
           "conv2d_backward_weight", "conv2d_forward", "is_channels_last", "load", "primitives"]
