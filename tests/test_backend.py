"""chainrule.backend: gemm equals np.matmul on every layout, dtype and option, on NumPy and (when installed) MKL.

The MKL tests run only where the optional ``mkl`` wheel is installed; the NumPy fallback is always tested, including
how the backend is chosen from ``CHAINRULE_GEMM`` at import (in subprocesses, so this process keeps its choice).
"""

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
from chainrule.backend import _mkl, _onednn, gemm

ROOT = Path(__file__).resolve().parents[1]
MKL_LIB, MKL_WHY = _mkl.load()
ONEDNN_LIB, ONEDNN_WHY = _onednn.load()
IMPLS = ["numpy", pytest.param("mkl", marks=pytest.mark.skipif(MKL_LIB is None, reason=f"MKL: {MKL_WHY}")),
         pytest.param("onednn", marks=pytest.mark.skipif(ONEDNN_LIB is None, reason=f"oneDNN: {ONEDNN_WHY}"))]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture(params=IMPLS)
def impl(request):
    before = backend.info()["requested"]
    assert backend.select(request.param) == request.param
    yield request.param
    backend.select(before)


def _layout(x: np.ndarray, order: str) -> np.ndarray:
    """The same matrix stored C-ordered, F-ordered, or as a row slice of a wider array (leading dim > cols)."""
    if order == "C":
        return np.ascontiguousarray(x)
    if order == "F":
        return np.asfortranarray(x)
    wide = np.zeros((x.shape[0], x.shape[1] + 3), dtype=x.dtype)
    wide[:, 1 : 1 + x.shape[1]] = x
    return wide[:, 1 : 1 + x.shape[1]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("order_a", ["C", "F", "slice"])
@pytest.mark.parametrize("order_b", ["C", "F"])
def test_gemm_matches_matmul(impl, dtype, trans_a, trans_b, order_a, order_b):
    rng = np.random.default_rng(0)
    m, k, n = 7, 5, 3
    a = _layout(rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype), order_a)
    b = _layout(rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype), order_b)
    expected = np.matmul(a.T if trans_a else a, b.T if trans_b else b)
    got = gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    assert got.dtype == dtype and got.shape == (m, n)
    np.testing.assert_allclose(got, expected, **TOL[dtype])


@pytest.mark.parametrize("out_order", ["C", "F"])
def test_out_alpha_beta_accumulate_in_place(impl, out_order):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 5))
    c0 = rng.standard_normal((6, 5))
    out = np.array(c0, order=out_order)
    res = gemm(a, b, out=out, alpha=0.5, beta=2.0)
    assert res is out
    np.testing.assert_allclose(out, 0.5 * a @ b + 2.0 * c0, rtol=1e-12)
    out[...] = np.nan  # beta = 0 overwrites, whatever out held (even NaN)
    gemm(a, b, out=out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)


def test_bias_folded_into_gemm(impl):
    """The linear-layer pattern: out starts as the broadcast bias and the product is accumulated onto it."""
    rng = np.random.default_rng(2)
    x, w, bias = (rng.standard_normal(s).astype(np.float32) for s in [(8, 6), (6, 4), (4,)])
    out = np.empty((8, 4), dtype=np.float32)
    out[...] = bias
    gemm(x, w, out=out, beta=1.0)
    np.testing.assert_allclose(out, x @ w + bias, rtol=1e-5, atol=1e-5)


def test_strided_and_odd_operands_are_handled(impl):
    rng = np.random.default_rng(3)
    big = rng.standard_normal((10, 12))
    a = big[::2, ::3]  # no unit stride: copied first
    b = rng.standard_normal((4, 3)).astype(">f8")  # byte-swapped: copied first
    np.testing.assert_allclose(gemm(a, b), a @ b, rtol=1e-12)
    row = rng.standard_normal((1, 4))[:, :]  # a single row has an arbitrary row stride
    col = np.asfortranarray(rng.standard_normal((4, 1)))
    np.testing.assert_allclose(gemm(row, col), row @ col, rtol=1e-12)
    np.testing.assert_allclose(gemm(col, row), col @ row, rtol=1e-12)


def test_empty_and_integer_operands(impl):
    z = gemm(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32))  # K = 0: a sum over nothing
    np.testing.assert_array_equal(z, np.zeros((3, 4), np.float32))
    out = np.full((3, 4), 5.0, np.float32)
    gemm(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32), out=out, beta=2.0)
    np.testing.assert_array_equal(out, np.full((3, 4), 10.0, np.float32))
    assert gemm(np.ones((0, 2)), np.ones((2, 3))).shape == (0, 3)
    ints = gemm(np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2))  # not BLAS: np.matmul
    np.testing.assert_array_equal(ints, np.arange(6).reshape(2, 3) @ np.arange(6).reshape(3, 2))
    mixed = gemm(np.ones((2, 3), np.float32), np.ones((3, 2), np.float64))
    assert mixed.dtype == np.float64 and np.all(mixed == 3)


def test_out_overlapping_an_input(impl):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((5, 5))
    expected = a @ a.T
    gemm(a, a, trans_b=True, out=a)
    np.testing.assert_allclose(a, expected, rtol=1e-12)


def test_transposed_views_are_not_copied(impl):
    """Backward's products (x.T @ g, g @ w.T) read the arrays in place: no allocation the size of an operand."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((256, 512), dtype=np.float32)
    g = rng.standard_normal((256, 128), dtype=np.float32)
    w = rng.standard_normal((512, 128), dtype=np.float32)
    dw = np.empty((512, 128), np.float32)
    dx = np.empty((256, 512), np.float32)
    gemm(x, g, trans_a=True, out=dw)  # warm up any lazily allocated state
    gemm(g, w, trans_b=True, out=dx)
    tracemalloc.start()
    gemm(x, g, trans_a=True, out=dw)
    gemm(g, w.T, out=dx)
    gemm(x.T, g, out=dw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 16 * 1024, f"gemm allocated {peak} bytes for transposed views; expected no copy"
    np.testing.assert_allclose(dw, x.T @ g, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(dx, g @ w.T, rtol=1e-4, atol=1e-3)


def test_errors_say_what_is_wrong():
    a, b = np.ones((2, 3)), np.ones((4, 5))
    with pytest.raises(ValueError, match=r"inner dimensions 3 and 4 differ"):
        gemm(a, b)
    with pytest.raises(ValueError, match="expected 2-D operands"):
        gemm(np.ones(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="out= must be given"):
        gemm(a, a, trans_b=True, beta=1.0)
    with pytest.raises(ValueError, match=r"out has shape \(3, 3\), expected \(2, 2\)"):
        gemm(a, a, trans_b=True, out=np.empty((3, 3)))
    ro = np.empty((2, 2))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        gemm(a, a, trans_b=True, out=ro)
    with pytest.raises(ValueError, match="must be one of"):
        backend.select("blis")


def test_info_describes_the_choice(impl):
    info = backend.info()
    assert info["gemm"] == impl
    assert isinstance(info["threads"], (int, type(None)))
    if impl == "mkl":
        assert "Math Kernel Library" in info["version"] and os.path.exists(info["library"])
        assert info["threads"] >= 1
    if impl == "onednn":
        assert info["version"].startswith("3.") and os.path.exists(info["library"]) and info["isa"]


def _in_subprocess(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAINRULE_", "MKL_"))}
    full_env.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=60)


REPORT = (
    "import json, numpy as np; from chainrule import backend;"
    "a = np.arange(6, dtype=np.float32).reshape(2, 3);"
    "ok = bool(np.array_equal(backend.gemm(a, a, trans_b=True), a @ a.T));"
    "print(json.dumps(dict(backend.info(), ok=ok)))"
)


def test_default_and_env_var_numpy_select_numpy():
    for env in ({}, {"CHAINRULE_GEMM": "numpy"}):
        r = _in_subprocess(env, REPORT)
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["gemm"] == "numpy" and info["library"] == "numpy.matmul" and info["ok"]


def test_auto_falls_back_to_numpy_when_mkl_is_absent():
    r = _in_subprocess({"CHAINRULE_GEMM": "auto", "CHAINRULE_MKL_LIB": "/nonexistent/libmkl_rt.so"}, REPORT)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["gemm"] == "numpy" and info["ok"]
    assert "/nonexistent/libmkl_rt.so" in info["mkl_unavailable"]


def test_mkl_requested_but_absent_fails_at_import_with_the_fix():
    r = _in_subprocess({"CHAINRULE_GEMM": "mkl", "CHAINRULE_MKL_LIB": "/nonexistent/libmkl_rt.so"}, REPORT)
    assert r.returncode != 0
    assert "CHAINRULE_GEMM=mkl but MKL is unavailable" in r.stderr and "pip install mkl" in r.stderr


def test_bad_env_value_fails_at_import():
    r = _in_subprocess({"CHAINRULE_GEMM": "openblas"}, REPORT)
    assert r.returncode != 0 and "must be one of ('auto', 'mkl', 'numpy', 'onednn')" in r.stderr


@pytest.mark.skipif(MKL_LIB is None, reason=f"MKL: {MKL_WHY}")
def test_mkl_selected_by_env_honours_thread_count():
    for choice, threads in (("mkl", "MKL_NUM_THREADS"), ("auto", "OMP_NUM_THREADS")):
        r = _in_subprocess({"CHAINRULE_GEMM": choice, threads: "1"}, REPORT)
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["gemm"] == "mkl" and info["threads"] == 1 and info["ok"]


STEP = """
import json
import numpy as np
from chainrule import Tensor, backend, nn, optim
import chainrule.nn.functional as F

rng = np.random.default_rng(0)
x = rng.standard_normal((32, 20), dtype=np.float32)
y = rng.integers(0, 5, 32)
model = nn.MLP([20, 16, 5], seed=0)
opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
losses = []
for _ in range(3):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
w = Tensor(rng.standard_normal((20, 3), dtype=np.float32), requires_grad=True)
(Tensor(x) @ w).sum().backward()
print(json.dumps(dict(gemm=backend.info()["gemm"], losses=losses, w=model[0].weight.data.ravel().tolist(),
                      gw=w.grad.ravel().tolist())))
"""


@pytest.mark.skipif(MKL_LIB is None, reason=f"MKL: {MKL_WHY}")
def test_training_steps_agree_between_numpy_and_mkl():
    """Linear layers, the loss, matmul and the optimizer give the same numbers on either GEMM backend."""
    results = {}
    for choice in ("numpy", "mkl"):
        r = _in_subprocess({"CHAINRULE_GEMM": choice}, STEP)
        assert r.returncode == 0, r.stderr
        results[choice] = json.loads(r.stdout)
        assert results[choice]["gemm"] == choice
    for key in ("losses", "w", "gw"):
        np.testing.assert_allclose(results["mkl"][key], results["numpy"][key], rtol=1e-4, atol=1e-5)
