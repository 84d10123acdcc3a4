"""Convolution, the kernel a conv net spends its time in: three functions, one implementation chosen once.

Shapes (N, C, H, W); weight (O, C/groups, kh, kw); ``geom`` is a ``chainrule.backend.conv_geometry.ConvGeometry``
(stride, padding per side, dilation, groups)::

    conv2d_forward(x, w, b, geom) -> y                       x (N, C, H, W), b (O,) or None -> y (N, O, Ho, Wo)
    conv2d_backward_data(gy, w, in_hw, geom) -> gx           in_hw = (H, W) of the forward input -> gx (N, C, H, W)
    conv2d_backward_weight(x, gy, kernel_hw, geom, bias)     -> (gw (O, C/groups, kh, kw), gb (O,) or None)

gy always has the geometry's full output size (``ConvGeometry.output_size``) when it reaches an implementation.
Everything spatial and linear is built from these three (``chainrule.ops.conv``): conv2d and its two gradients,
conv_transpose2d (its forward is ``conv2d_backward_data``), unfold/fold (im2col/col2im: a convolution with one-hot
kernels and its transpose), and the gradients of those. So an implementation is these three functions, and the ops
never ask which one runs.

Arrays are logically NCHW; their memory may be channels-last (``x.transpose(0, 2, 3, 1)`` C-contiguous, PyTorch's
``channels_last``). Implementations accept any strides and say in their docstrings which layout they return;
the NumPy one returns activations channels-last (what its GEMMs produce) and weight gradients C-contiguous.

Implementations, chosen once at import from ``CHAINRULE_CONV`` (or ``select_conv`` between runs, never in a hot
loop), like ``CHAINRULE_GEMM`` for ``chainrule.backend.gemm``:

    auto    (default) onednn when it loads, else numpy
    numpy   im2col + GEMM on NumPy (``chainrule.backend._im2col``): always available
    onednn  oneDNN's convolution primitives (``chainrule.backend._onednn_conv``); importing chainrule fails if
            they cannot be loaded

``auto`` is the default because oneDNN's kernels measured 4-5x faster than the im2col path on a conv net's
training step (``bench/bench_conv.py``, ``bench/RESULTS_conv.md``); they come with the ``onednn-cpu-gomp`` wheel
(the ``cli``, ``bf16`` and ``test`` extras on x86-64 Linux).

An implementation module provides the three functions above and ``load() -> (implementation or None, why not)``,
the contract of ``chainrule.backend._onednn`` and ``_mkl``, and may list the dtypes it computes in ``DTYPES``
(float32 only if it does not). Arrays of other dtypes go to the NumPy implementation, which computes float32 and
float64: so float64 (gradient checks, the tests against PyTorch) is exact whichever implementation is selected, as
``gemm`` sends float64 products to NumPy when oneDNN is selected.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np

from chainrule.backend import _im2col
from chainrule.backend.conv_geometry import ConvGeometry

CONV_CHOICES = ("auto", "numpy", "onednn")

Pair = tuple[int, int]


def _impl(dtype: np.dtype) -> Any:
    """The selected implementation if it computes ``dtype``, else the NumPy one."""
    return _STATE.impl if dtype in _STATE.dtypes else _im2col


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geom: ConvGeometry) -> np.ndarray:
    """y (N, O, Ho, Wo): x (N, C, H, W) cross-correlated with w (O, C/groups, kh, kw), plus b (O,) if given."""
    return _impl(x.dtype).conv2d_forward(x, w, b, geom)


def conv2d_backward_data(gy: np.ndarray, w: np.ndarray, in_hw: Pair, geom: ConvGeometry) -> np.ndarray:
    """gx (N, C, H, W) with (H, W) = ``in_hw``: the gradient of the input of ``conv2d_forward`` from gy."""
    return _impl(gy.dtype).conv2d_backward_data(_full(gy, in_hw, w.shape[2:], geom), w, in_hw, geom)


def conv2d_backward_weight(x: np.ndarray, gy: np.ndarray, kernel_hw: Pair, geom: ConvGeometry,
                           bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(gw (O, C/groups, kh, kw), gb (O,) when ``bias`` else None): the parameters' gradients from x and gy."""
    return _impl(x.dtype).conv2d_backward_weight(x, _full(gy, x.shape[2:], kernel_hw, geom), kernel_hw, geom, bias)


def _full(gy: np.ndarray, in_hw: Pair, kernel_hw: Pair, geom: ConvGeometry) -> np.ndarray:
    """gy zero-padded at the bottom/right to the geometry's full output size. gy covers fewer positions than that
    only for conv_transpose2d with an output_padding of at least the stride (allowed when it is below the
    dilation); the missing positions have zero gradient, and implementations always get the full size."""
    ho, wo = geom.output_size(in_hw, kernel_hw)
    if gy.shape[2:] == (ho, wo):
        return gy
    n, o, h, w = gy.shape
    full = np.zeros((n, ho, wo, o), dtype=gy.dtype).transpose(0, 3, 1, 2)  # channels-last, like the forward's
    full[:, :, :h, :w] = gy
    return full


class _State:
    name: str = "numpy"  # the implementation in use
    requested: str = "numpy"
    impl: Any = _im2col
    dtypes: tuple = _im2col.DTYPES  # the dtypes ``impl`` computes (others go to _im2col)
    why_not: dict[str, str] = {}  # implementation -> why it is not in use (when it was tried)


_STATE = _State()


def _load(name: str) -> tuple[Any, str]:
    """An implementation module by name, or (None, why it cannot be used)."""
    if name == "numpy":
        return _im2col, ""
    try:
        module = importlib.import_module(f"chainrule.backend._{name}_conv")
    except ImportError as e:
        return None, f"chainrule.backend._{name}_conv is not available ({e})"
    return module.load()


def select_conv(choice: str) -> str:
    """Switch the convolution implementation (``"auto"``, ``"numpy"`` or ``"onednn"``) and return the one in use.

    Chainrule calls this once at import with ``CHAINRULE_CONV``; ``"onednn"`` raises RuntimeError saying why if
    oneDNN's convolutions cannot be loaded, ``"auto"`` then falls back to numpy (``info()`` says why)."""
    if choice not in CONV_CHOICES:
        raise ValueError(f"convolution backend must be one of {CONV_CHOICES}, got {choice!r} (set CHAINRULE_CONV to "
                         "one of them)")
    impl, name = _im2col, "numpy"
    if choice in ("auto", "onednn"):
        lib, why = _load("onednn")
        if lib is not None:
            impl, name = lib, "onednn"
        else:
            _STATE.why_not["onednn"] = why
            if choice == "onednn":
                raise RuntimeError(f"CHAINRULE_CONV=onednn but oneDNN's convolutions are unavailable: {why}; "
                                   "install chainrule[bf16] (onednn-cpu-gomp) or use auto/numpy")
    _STATE.impl, _STATE.name, _STATE.requested = impl, name, choice
    _STATE.dtypes = tuple(np.dtype(d) for d in getattr(impl, "DTYPES", (np.float32,)))
    return name


def info() -> dict[str, Any]:
    """The convolution in use: ``conv`` ("numpy" or "onednn"), what was requested, the dtypes it computes (others
    run on NumPy), the im2col block cap, and why other implementations are not used."""
    d: dict[str, Any] = {"conv": _STATE.name, "conv_requested": _STATE.requested,
                         "conv_dtypes": [t.name for t in _STATE.dtypes],
                         "conv_im2col_chunk_bytes": _im2col.CHUNK_BYTES}
    for name, why in _STATE.why_not.items():
        if name != _STATE.name:
            d[f"conv_{name}_unavailable"] = why
    return d


select_conv(os.environ.get("CHAINRULE_CONV", "auto").strip().lower() or "auto")
