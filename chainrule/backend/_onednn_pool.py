"""oneDNN's max-pooling primitive on float32 NumPy arrays (N, C, H, W): forward (with the winning taps) and
backward (each gradient routed to its window's winning tap), each one JIT-vectorised pass on oneDNN's OpenMP pool.

Why: max pooling's NumPy path (``chainrule.nn._functions.pooling``) is a few ufunc passes per kernel tap; in the conv
net's bf16 training step its forward and backward cost ~80% of the convolutions' time. oneDNN's kernels read the
input once and write the output and the winners once.

The winners are chainrule's own ``arg``: in ``forward_training`` oneDNN writes a workspace laid out as the output
(same dims and strides) of one byte per output (int32 past 255 taps), holding the number of the winning tap
row-major over the kernel window, padded taps counted (tap (i, j) is i * kw + j, as ``Window.taps``), and the first
maximum wins a tie (a later tap must be strictly greater). Its backward reads that workspace and adds each
gradient at its winner (overlapping windows add up). So the workspace IS ``max_taps``'s ``arg``: the forward here
returns (out, arg), the backward takes any ``arg`` (from here or from the NumPy path), and ``MaxPool2d``'s saved
state, ``return_indices``, ``gather_taps`` and double backward do not change.

Where oneDNN's rule differs from the NumPy path's (``pooling.max_taps``'s docstring): a NaN never wins in oneDNN
(NumPy's max and PyTorch's propagate it), and a window's running maximum starts at the lowest finite float, so a
window whose in-bounds values are all -inf outputs -3.4e38 with winner tap 0 (possibly a padded one), and a window
holding -3.4e38 after a -inf credits the wrong tap. ``chainrule.backend.fused.max_pool2d`` therefore keeps this only
for inputs with no NaN, no -inf and no -3.4e38 (one min-reduction of x), where the two rules agree. (One more
difference, of no consequence: oneDNN's output is the winning tap's value, so a window of -0.0 then +0.0 outputs
-0.0, where NumPy's maximum may give +0.0: equal values, the same winner.) The backward gives the losing taps 0
even for an inf or NaN gradient, as PyTorch and now the NumPy path.

oneDNN 3.2 runs some problems in its reference implementation ("ref:any", a scalar loop 3-10x slower than the
NumPy taps): dilated windows, and the channels-last backward of a window as large as the input. Those are left to
NumPy (``PoolPrimitives._run`` says so by returning False, and remembers it per problem).

Layouts: x as it lies, C-contiguous (NCHW) or channels-last (``x.transpose(0, 2, 3, 1)`` C-contiguous, the conv
net's activations, the layout oneDNN's kernels are fastest in); out, arg and the input gradient are allocated in
the same layout. One plan per problem (direction, shapes, layout, window) is cached as in
``chainrule.backend._onednn_conv``, whose plan builder this module uses.
"""

from __future__ import annotations

import ctypes

import numpy as np

from chainrule.backend import _onednn, _onednn_conv
from chainrule.backend._onednn_conv import _Builder, _ConvPlan, _destroy, _impl, build_plan

_S32, _U8 = 4, 6  # dnnl_data_type_t
_FORWARD_TRAINING, _FORWARD_INFERENCE = 64, 96  # dnnl_prop_kind_t
_POOLING_MAX = 0x1FF  # dnnl_alg_kind_t
_QUERY_WORKSPACE_MD = 135  # dnnl_query_workspace_md
_ARG = {"src": 1, "dst": 17, "workspace": 64, "diff_src": 129, "diff_dst": 145}
_CACHE_SIZE = 64  # plans kept: a conv net's step has two per pooling layer

_Dims = _onednn._Dims


def layout(x: np.ndarray) -> str | None:
    """"nchw" (C-contiguous), "nhwc" (channels-last) or None (another layout: not run here) for a 4-D array."""
    if x.ndim != 4:
        return None
    if x.flags.c_contiguous:
        return "nchw"
    return "nhwc" if x.transpose(0, 2, 3, 1).flags.c_contiguous else None


def empty(shape: tuple[int, ...], dtype, kind: str) -> np.ndarray:
    """An uninitialised (N, C, H, W) array laid out as ``kind`` ("nchw" or "nhwc")."""
    if kind == "nhwc":
        n, c, h, w = shape
        return np.empty((n, h, w, c), dtype=dtype).transpose(0, 3, 1, 2)
    return np.empty(shape, dtype=dtype)


def arg_dtype(taps: int) -> np.dtype:
    """oneDNN's workspace type for a window of ``taps`` taps: uint8 up to 255, int32 beyond."""
    return np.dtype(np.uint8 if taps <= 255 else np.int32)


class PoolPrimitives:
    """The cached max-pooling plans (forward, backward) of one loaded oneDNN."""

    def __init__(self, lib: _onednn.OneDNN):
        self.dnnl, self.cache = lib, _onednn.PlanCache(_CACHE_SIZE)
        _declare(lib.lib)

    def max_forward(self, x: np.ndarray, window, want_arg: bool) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(out, arg) of max pooling x (N, C, H, W), float32 "nchw" or "nhwc", over ``window``
        (``chainrule.nn._functions.pooling.Window``); arg (the winning taps) only if ``want_arg``. Both in x's
        layout. None where oneDNN has only its reference loop for this problem (see ``_run``)."""
        kind = layout(x)
        out_shape = x.shape[:2] + tuple(window.out_hw)
        out = empty(out_shape, np.float32, kind)
        arrays = {"x": x, "out": out}
        if want_arg:
            arrays["arg"] = empty(out_shape, arg_dtype(window.kernel[0] * window.kernel[1]), kind)
        key = ("forward", want_arg, x.shape, kind, *_window_key(window))
        if not self._run(key, arrays, lambda: self._forward_plan(x.shape, kind, window, want_arg)):
            return None
        return out, arrays.get("arg")

    def max_backward(self, grad: np.ndarray, arg: np.ndarray, window, gx_kind: str) -> np.ndarray | None:
        """The input gradient (N, C, H, W) of max pooling, laid out as ``gx_kind``, from grad and arg (N, C, Ho, Wo),
        float32 and ``arg_dtype``, both of one layout ("nchw" or "nhwc"); None as ``max_forward``."""
        kind = layout(arg)
        x_shape = grad.shape[:2] + tuple(window.in_hw)
        gx = empty(x_shape, np.float32, gx_kind)
        key = ("backward", x_shape, gx_kind, kind, *_window_key(window))
        if not self._run(key, {"grad": grad, "arg": arg, "gx": gx},
                         lambda: self._backward_plan(x_shape, gx_kind, kind, window)):
            return None
        return gx

    def impl(self, direction: str) -> list[str]:
        """The implementation names of the cached plans of one direction ("forward", "backward"), e.g.
        ["jit:avx512_core"] (problems oneDNN would run in its reference loop are left to NumPy: not listed)."""
        return [plan.impl for key, plan in self.cache.items() if key[0] == direction and plan is not None]

    # ---- plans ---------------------------------------------------------------------------------------------------

    def _run(self, key, arrays: dict, make) -> bool:
        """Run the plan of ``key`` (created by ``make`` on first use) on ``arrays``; False (nothing run) where
        oneDNN picked its reference implementation ("ref:any"): a scalar loop, measured 3-10x slower than the NumPy
        taps (dilated windows; the channels-last backward of a window as large as the input). That answer is cached
        too, so the check costs one dictionary lookup."""
        lib = self.dnnl
        with lib.lock:  # plans' memory objects and the stream are shared state: one caller at a time
            plan = self.cache.get_or_make(key, lambda: self._unless_reference(make()), lambda old: _destroy(lib, old))
            if plan is None:
                return False
            lib.execute(plan, arrays)
        return True

    def _unless_reference(self, plan: _ConvPlan) -> _ConvPlan | None:
        """``plan``, or None (it destroyed) where oneDNN picked its reference loop for the problem."""
        if plan.impl.startswith("ref"):
            _destroy(self.dnnl, plan)
            return None
        return plan

    def _fwd_pd(self, b: _Builder, prop_kind: int, src, dst, window) -> ctypes.c_void_p:
        return b.pd(b.lib.dnnl_pooling_forward_primitive_desc_create, self.dnnl.engine, prop_kind, _POOLING_MAX,
                    src, dst, *_window_dims(window), None)

    def _workspace(self, b: _Builder, pd, out_shape, kind: str, window) -> ctypes.c_void_p:
        """The memory desc of ``arg`` (out's layout, ``arg_dtype``), checked to be the workspace oneDNN asks for."""
        taps = window.kernel[0] * window.kernel[1]
        ws = b.md(out_shape, _strides(out_shape, kind), _U8 if arg_dtype(taps) == np.uint8 else _S32)
        if not b.lib.dnnl_memory_desc_equal(ws, b.lib.dnnl_primitive_desc_query_md(pd, _QUERY_WORKSPACE_MD, 0)):
            raise RuntimeError(f"oneDNN {self.dnnl.version}'s max-pooling workspace is not laid out as its output "
                               f"({out_shape}, {kind}); chainrule's winners (arg) cannot be read from it: use "
                               "CHAINRULE_CONV=numpy")
        return ws

    def _forward_plan(self, x_shape, kind: str, window, want_arg: bool):
        def body(b: _Builder):
            out_shape = x_shape[:2] + tuple(window.out_hw)
            src = b.md(x_shape, _strides(x_shape, kind))
            dst = b.md(out_shape, _strides(out_shape, kind))
            pd = self._fwd_pd(b, _FORWARD_TRAINING if want_arg else _FORWARD_INFERENCE, src, dst, window)
            pairs = [(_ARG["src"], b.user(src, "x")), (_ARG["dst"], b.user(dst, "out"))]
            if want_arg:
                pairs.append((_ARG["workspace"], b.user(self._workspace(b, pd, out_shape, kind, window), "arg")))
            b.step(pd, *pairs)
            b.plan.impl = _impl(b.lib, pd)
        return build_plan(self.dnnl, body)

    def _backward_plan(self, x_shape, gx_kind: str, kind: str, window):
        def body(b: _Builder):
            out_shape = x_shape[:2] + tuple(window.out_hw)
            diff_src = b.md(x_shape, _strides(x_shape, gx_kind))
            diff_dst = b.md(out_shape, _strides(out_shape, kind))
            hint = self._fwd_pd(b, _FORWARD_TRAINING, diff_src, diff_dst, window)
            ws = self._workspace(b, hint, out_shape, kind, window)
            pd = b.pd(b.lib.dnnl_pooling_backward_primitive_desc_create, self.dnnl.engine, _POOLING_MAX, diff_src,
                      diff_dst, *_window_dims(window), hint, None)
            b.step(pd, (_ARG["diff_dst"], b.user(diff_dst, "grad")), (_ARG["workspace"], b.user(ws, "arg")),
                   (_ARG["diff_src"], b.user(diff_src, "gx")))
            b.plan.impl = _impl(b.lib, pd)
        return build_plan(self.dnnl, body)


def _strides(shape, kind: str) -> tuple[int, int, int, int]:
    """Strides in elements of a dense (N, C, H, W) array laid out as ``kind``."""
    n, c, h, w = shape
    return (h * w * c, 1, w * c, c) if kind == "nhwc" else (c * h * w, h * w, w, 1)


def _window_key(window) -> tuple:
    g = window.geometry
    return tuple(window.kernel), g.stride, g.dilation, g.padding


def _window_dims(window) -> tuple:
    """(strides, kernel, dilation, padding_l, padding_r) as oneDNN takes them (dilation counted from 0)."""
    g = window.geometry
    (top, bottom), (left, right) = g.padding
    return (_Dims(*g.stride), _Dims(*window.kernel), _Dims(*(d - 1 for d in g.dilation)), _Dims(top, left),
            _Dims(bottom, right))


def _declare(lib: ctypes.CDLL) -> None:
    p, pp, i, dims = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, _Dims
    sigs = {
        "dnnl_pooling_forward_primitive_desc_create": [pp, p, i, i, p, p, dims, dims, dims, dims, dims, p],
        "dnnl_pooling_backward_primitive_desc_create": [pp, p, i, p, p, dims, dims, dims, dims, dims, p, p],
    }
    for name, argtypes in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, ctypes.c_int


def primitives() -> PoolPrimitives | None:
    """The pooling primitives on the oneDNN the convolution backend loads, or None where it does not load."""
    conv, _ = _onednn_conv.primitives()  # declares the descriptor and query functions this module uses too
    return None if conv is None else _onednn.shared(PoolPrimitives)
