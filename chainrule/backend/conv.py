"""Convolution, the kernel a conv net spends its time in: three functions, one implementation chosen once.

Shapes (N, C, H, W); weight (O, C/groups, kh, kw); ``geom`` is a ``chainrule.backend.conv_geometry.ConvGeometry``
(stride, padding per side, dilation, groups)::

    conv2d_forward(x, w, b, geom) -> y                       x (N, C, H, W), b (O,) or None -> y (N, O, Ho, Wo)
    conv2d_backward_data(gy, w, in_hw, geom) -> gx           in_hw = (H, W) of the forward input -> gx (N, C, H, W)
    conv2d_backward_weight(x, gy, kernel_hw, geom, bias)     -> (gw (O, C/groups, kh, kw), gb (O,) or None)

Everything spatial and linear is built from these three (``chainrule.ops.conv``): conv2d and its two gradients,
conv_transpose2d (its forward is ``conv2d_backward_data``), unfold/fold (im2col/col2im: a convolution with one-hot
kernels and its transpose), and the gradients of those. So an implementation is these three functions, and the ops
never ask which one runs.

Arrays are logically NCHW; their memory may be channels-last (``x.transpose(0, 2, 3, 1)`` C-contiguous, PyTorch's
``channels_last``). Implementations accept any strides and say in their docstrings which layout they return;
the NumPy one returns activations channels-last (what its GEMMs produce) and weight gradients C-contiguous.

Implementations, chosen once at import from ``CHAINRULE_CONV`` (or ``select_conv`` between runs, never in a hot
loop), like ``CHAINRULE_GEMM`` for ``chainrule.backend.gemm``:

    numpy   (default) im2col + GEMM on NumPy (``chainrule.backend._im2col``): always available
    onednn  oneDNN's convolution primitives (``chainrule.backend._onednn_conv``); importing chainrule fails if
            they cannot be loaded
    auto    onednn when it loads, else numpy

An implementation module provides the three functions above and ``load() -> (implementation or None, why not)``,
the contract of ``chainrule.backend._onednn`` and ``_mkl``.
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


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geom: ConvGeometry) -> np.ndarray:
    """y (N, O, Ho, Wo): x (N, C, H, W) cross-correlated with w (O, C/groups, kh, kw), plus b (O,) if given."""
    return _STATE.impl.conv2d_forward(x, w, b, geom)


def conv2d_backward_data(gy: np.ndarray, w: np.ndarray, in_hw: Pair, geom: ConvGeometry) -> np.ndarray:
    """gx (N, C, H, W) with (H, W) = ``in_hw``: the gradient of the input of ``conv2d_forward`` from gy."""
    return _STATE.impl.conv2d_backward_data(gy, w, in_hw, geom)


def conv2d_backward_weight(x: np.ndarray, gy: np.ndarray, kernel_hw: Pair, geom: ConvGeometry,
                           bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(gw (O, C/groups, kh, kw), gb (O,) when ``bias`` else None): the parameters' gradients from x and gy."""
    return _STATE.impl.conv2d_backward_weight(x, gy, kernel_hw, geom, bias)


class _State:
    name: str = "numpy"  # the implementation in use
    requested: str = "numpy"
    impl: Any = _im2col
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
    return name


def info() -> dict[str, Any]:
    """The convolution in use: ``conv`` ("numpy" or "onednn"), what was requested, and why others are not used."""
    d: dict[str, Any] = {"conv": _STATE.name, "conv_requested": _STATE.requested}
    if _STATE.name == "numpy":
        d["conv_im2col_chunk_bytes"] = _im2col.CHUNK_BYTES
    for name, why in _STATE.why_not.items():
        if name != _STATE.name:
            d[f"conv_{name}_unavailable"] = why
    return d


select_conv(os.environ.get("CHAINRULE_CONV", "numpy").strip().lower() or "numpy")
