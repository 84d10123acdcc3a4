"""chainrule.backend.conv: the NumPy im2col path against the naive references (float64 and float32), its memory
cap, the layouts it accepts and returns, and how the implementation is chosen (CHAINRULE_CONV, select_conv, info)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from chainrule import backend
from chainrule.backend import _im2col, conv
from chainrule.backend.conv_geometry import ConvGeometry
from chainrule.nn.reference_conv import conv2d_backward_naive, conv2d_naive

ROOT = Path(__file__).resolve().parents[1]

# (x shape, weight shape, stride, padding ((t, b), (l, r)), dilation, groups)
SHAPES = [
    ((2, 4, 7, 6), (6, 2, 3, 3), (2, 2), ((1, 2), (0, 1)), (1, 2), 2),   # strides that do not divide, asymmetric pad
    ((1, 3, 5, 5), (3, 3, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),   # 1x1
    ((2, 6, 9, 8), (6, 1, 3, 3), (3, 2), ((1, 1), (2, 2)), (2, 1), 6),   # depthwise, dilation with stride
    ((1, 2, 3, 3), (4, 2, 5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1),   # kernel larger than the input, padded
    ((3, 5, 6, 7), (4, 5, 2, 4), (1, 3), ((0, 1), (1, 2)), (1, 1), 1),   # even kernels, odd sizes
    ((2, 4, 6, 5), (6, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (2, 1), 2),   # stride 1: gx as a convolution
    ((2, 3, 4, 5), (4, 3, 1, 2), (1, 1), ((1, 2), (2, 0)), (1, 1), 1),   # stride 1, padding past the span (crop)
    ((2, 4, 6, 7), (12, 1, 3, 2), (1, 1), ((1, 1), (0, 1)), (1, 2), 4),  # depthwise x3, stride 1 (per-tap path)
    ((1, 3, 5, 5), (15, 1, 2, 2), (2, 1), ((0, 0), (0, 0)), (1, 1), 3),  # 5 outputs per channel: im2col's GEMMs
]
IDS = [f"x{s[0]}-w{s[1]}-s{s[2]}-d{s[4]}-g{s[5]}" for s in SHAPES]


def _case(shape, dtype=np.float64, seed=0):
    xs, ws, stride, padding, dilation, groups = shape
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, (ws[0],)))
    return x, w, b, ConvGeometry(stride, padding, dilation, groups)


def _naive_args(geom):
    return dict(stride=geom.stride, padding=geom.padding, dilation=geom.dilation, groups=geom.groups)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_im2col_matches_the_naive_loops_in_float64(shape):
    x, w, b, geom = _case(shape)
    y = _im2col.conv2d_forward(x, w, b, geom)
    np.testing.assert_allclose(y, conv2d_naive(x, w, b, **_naive_args(geom)), rtol=1e-12, atol=1e-12)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    dx, dw, db = conv2d_backward_naive(gy, x, w, **_naive_args(geom))
    np.testing.assert_allclose(_im2col.conv2d_backward_data(gy, w, x.shape[2:], geom), dx, rtol=1e-12, atol=1e-12)
    gw, gb = _im2col.conv2d_backward_weight(x, gy, w.shape[2:], geom, True)
    np.testing.assert_allclose(gw, dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb, db, rtol=1e-12, atol=1e-12)
    assert _im2col.conv2d_backward_weight(x, gy, w.shape[2:], geom, False)[1] is None


@pytest.mark.parametrize("shape", SHAPES[:3], ids=IDS[:3])
def test_float32_in_float32_out(shape):
    x, w, b, geom = _case(shape, np.float32)
    y = _im2col.conv2d_forward(x, w, b, geom)
    ref = conv2d_naive(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **_naive_args(geom))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    gy = np.ones(y.shape, np.float32)
    assert _im2col.conv2d_backward_data(gy, w, x.shape[2:], geom).dtype == np.float32
    gw, gb = _im2col.conv2d_backward_weight(x, gy, w.shape[2:], geom, True)
    assert gw.dtype == gb.dtype == np.float32


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_a_tiny_cap_gives_the_same_results(shape, monkeypatch):
    x, w, b, geom = _case(shape)
    y = _im2col.conv2d_forward(x, w, b, geom)
    gy = np.random.default_rng(2).standard_normal(y.shape)
    gx = _im2col.conv2d_backward_data(gy, w, x.shape[2:], geom)
    gw, _ = _im2col.conv2d_backward_weight(x, gy, w.shape[2:], geom, False)
    monkeypatch.setattr(_im2col, "CHUNK_BYTES", 1)  # one output row per block
    np.testing.assert_allclose(_im2col.conv2d_forward(x, w, b, geom), y, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(_im2col.conv2d_backward_data(gy, w, x.shape[2:], geom), gx, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(_im2col.conv2d_backward_weight(x, gy, w.shape[2:], geom, False)[0], gw,
                               rtol=1e-13, atol=1e-13)


def test_blocks_cover_every_output_row_once_within_the_cap():
    for n, ho, row_bytes, cap in ((10, 7, 100, 2100), (3, 5, 100, 250), (2, 4, 1000, 10), (4, 3, 8, 10**9)):
        seen = np.zeros((n, ho), int)
        for n0, n1, h0, h1 in _im2col.blocks(n, ho, row_bytes, cap):
            seen[n0:n1, h0:h1] += 1
            assert (n1 - n0) * (h1 - h0) * row_bytes <= max(cap, row_bytes)  # never under one row per block
        assert (seen == 1).all()
    assert _im2col.CHUNK_BYTES == 64 * 2**20


def test_im2col_memory_stays_bounded_by_the_cap(monkeypatch):
    """Convolutions whose whole im2col matrix would be 36 MiB run in 1 MiB blocks: each call's peak of NumPy
    allocations (tracemalloc) is its output and padded buffer (4-4.5 MiB each) plus one block, not the matrix."""
    monkeypatch.setattr(_im2col, "CHUNK_BYTES", 2**20)
    x = np.random.default_rng(0).standard_normal((128, 8, 32, 32)).astype(np.float32)  # 4 MiB
    w = np.ones((8, 8, 3, 3), np.float32)
    geom = ConvGeometry(padding=((1, 1), (1, 1)))
    assert 128 * 32 * 32 * (8 * 3 * 3) * 4 == 36 * 2**20  # rows x K x 4 bytes, unchunked
    peaks = []
    tracemalloc.start()
    try:
        for call in (lambda: _im2col.conv2d_forward(x, w, None, geom),
                     lambda: _im2col.conv2d_backward_data(y, w, x.shape[2:], geom),
                     lambda: _im2col.conv2d_backward_weight(x, y, (3, 3), geom, True)):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            result = call()
            peaks.append((tracemalloc.get_traced_memory()[1] - before) / 2**20)
            if len(peaks) == 1:
                y = result
    finally:
        tracemalloc.stop()
    assert max(peaks) < 12, f"peaks {peaks} MiB (the unchunked im2col alone is 36 MiB)"


def test_channels_last_in_and_out():
    x, w, b, _ = _case(SHAPES[0])
    geom = ConvGeometry((2, 1), ((0, 0), (0, 0)), (1, 1), 2)
    y = _im2col.conv2d_forward(x, w, b, geom)
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous  # channels-last, as the GEMMs produce it
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # PyTorch's channels_last
    assert _im2col._channels_last(x_cl, geom).base is not None  # read in place, no copy
    np.testing.assert_allclose(_im2col.conv2d_forward(x_cl, w, b, geom), y, rtol=1e-13, atol=1e-13)
    gy_nchw = np.ascontiguousarray(y)
    gx = _im2col.conv2d_backward_data(y, w, x.shape[2:], geom)
    np.testing.assert_allclose(_im2col.conv2d_backward_data(gy_nchw, w, x.shape[2:], geom), gx, rtol=1e-13)
    assert gx.transpose(0, 2, 3, 1).flags.c_contiguous
    gw, _ = _im2col.conv2d_backward_weight(x_cl, y, w.shape[2:], geom, False)
    assert gw.flags.c_contiguous and gw.shape == w.shape


def test_a_1x1_channels_last_convolution_reads_the_input_without_a_copy():
    x = np.ascontiguousarray(np.random.default_rng(0).standard_normal((2, 5, 4, 3)).transpose(0, 2, 3, 1))
    x = x.transpose(0, 3, 1, 2)
    windows = _im2col._grouped(_im2col._windows(_im2col._channels_last(x, ConvGeometry()), (1, 1), (5, 4),
                                                ConvGeometry()), 1)
    assert np.shares_memory(_im2col._im2col(windows, 0, 2, 0, 5, []), x)


@pytest.fixture
def numpy_conv():
    """The NumPy implementation selected for the test (whatever CHAINRULE_CONV says), the previous one after."""
    before = backend.info()["conv_requested"]
    assert backend.select_conv("numpy") == "numpy"
    yield
    backend.select_conv(before)


def test_the_seam_dispatches_to_the_selected_implementation(numpy_conv):
    x, w, b, geom = _case(SHAPES[0])
    assert backend.info()["conv"] == "numpy" and backend.info()["conv_dtypes"] == ["float32", "float64"]
    np.testing.assert_array_equal(conv.conv2d_forward(x, w, b, geom), _im2col.conv2d_forward(x, w, b, geom))
    with pytest.raises(ValueError, match=r"must be one of \('auto', 'numpy', 'onednn'\)"):
        backend.select_conv("cudnn")


def test_gy_short_of_the_full_output_is_zero_padded_at_the_seam(numpy_conv, monkeypatch):
    """conv_transpose2d with output_padding >= stride (below the dilation) gives gy fewer positions than the
    geometry's output; implementations get it zero-padded to the full size (the missing positions have no
    gradient)."""
    x, w, _, _ = _case(SHAPES[1])
    geom = ConvGeometry(dilation=(2, 2))
    w = np.ones((3, 3, 2, 2))
    full = conv.conv2d_forward(x, w, None, geom)  # (1, 3, 3, 3)
    seen = []
    monkeypatch.setattr(_im2col, "conv2d_backward_data", lambda gy, *a: seen.append(gy.shape) or gy)
    monkeypatch.setattr(_im2col, "conv2d_backward_weight", lambda x, gy, *a: seen.append(gy.shape) or (gy, None))
    short = np.ones((1, 3, 2, 3))
    padded = conv.conv2d_backward_data(short, w, x.shape[2:], geom)
    conv.conv2d_backward_weight(x, short, (2, 2), geom, False)
    assert seen == [full.shape, full.shape]
    np.testing.assert_array_equal(padded[:, :, 2], 0)
    np.testing.assert_array_equal(padded[:, :, :2], short)


def test_dtypes_an_implementation_lacks_run_on_numpy(monkeypatch):
    """An implementation computes the dtypes it lists in DTYPES (float32 when it lists none); float64 then runs on
    the NumPy path, so gradient checks stay exact whichever implementation is selected."""
    calls = []

    class Float32Only:  # an implementation module's shape: the three functions and no DTYPES
        @staticmethod
        def conv2d_forward(x, w, b, geom):
            calls.append(x.dtype)
            return _im2col.conv2d_forward(x, w, b, geom)

        conv2d_backward_data = staticmethod(_im2col.conv2d_backward_data)
        conv2d_backward_weight = staticmethod(_im2col.conv2d_backward_weight)

    monkeypatch.setattr(conv, "_load", lambda name: (Float32Only, "") if name == "onednn" else (_im2col, ""))
    before = backend.info()["conv_requested"]
    try:
        assert backend.select_conv("onednn") == "onednn"
        assert backend.info()["conv_dtypes"] == ["float32"]
        x, w, b, geom = _case(SHAPES[0])
        y64 = conv.conv2d_forward(x, w, b, geom)
        y32 = conv.conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), geom)
        assert calls == [np.float32] and y64.dtype == np.float64 and y32.dtype == np.float32
    finally:
        monkeypatch.undo()
        backend.select_conv(before)


def _in_subprocess(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import json; from chainrule import backend; print(json.dumps(backend.info()))"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINRULE_")}
    full_env.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=60)


def test_env_var_chooses_the_implementation():
    r = _in_subprocess({})
    assert r.returncode == 0, r.stderr
    default = json.loads(r.stdout)  # unset: auto
    assert default["conv_requested"] == "auto" and default["conv"] in ("numpy", "onednn")
    assert default["conv_im2col_chunk_bytes"] == 64 * 2**20
    r = _in_subprocess({"CHAINRULE_CONV": "numpy"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["conv"] == "numpy"
    r = _in_subprocess({"CHAINRULE_CONV": "auto"})
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["conv"] == default["conv"] and info["conv_requested"] == "auto"
    if info["conv"] == "numpy":
        assert info["conv_onednn_unavailable"]  # says why
        r = _in_subprocess({"CHAINRULE_CONV": "onednn"})
        assert r.returncode != 0 and "CHAINRULE_CONV=onednn but oneDNN's convolutions are unavailable" in r.stderr
    r = _in_subprocess({"CHAINRULE_CONV": "cudnn"})
    assert r.returncode != 0 and "set CHAINRULE_CONV to one of them" in r.stderr
