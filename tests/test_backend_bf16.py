"""bfloat16 products on the oneDNN GEMM backend (``set_float32_matmul_precision("medium")``): what is computed is
exactly "round both operands to bfloat16, multiply, accumulate in float32", on every layout; float64 stays exact;
the precision cannot be set where no backend can honour it; a small net trains the same in bf16 as in float32.

The oneDNN tests run where the optional ``onednn-cpu-gomp`` wheel is installed (the test extras install it on
x86-64 Linux) and the CPU has bfloat16 instructions or oneDNN emulates them; the errors are always tested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule import backend, nn, optim
from chainrule.backend import _onednn, blas, gemm
from chainrule.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
LIB, WHY = _onednn.load()
needs_onednn = pytest.mark.skipif(LIB is None, reason=f"oneDNN: {WHY}")
BF16_WHY = WHY if LIB is None else LIB.bf16_problem()  # e.g. a CPU (or VM) that shows only AVX2
needs_bf16 = pytest.mark.skipif(bool(BF16_WHY), reason=f"bfloat16 products: {BF16_WHY}")


def to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> the nearest bfloat16 (ties to even), returned as float64: the reference rounding."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
    return u.astype(np.uint32).view(np.float32).reshape(x.shape).astype(np.float64)


@pytest.fixture
def bf16():
    before, precision = backend.info()["requested"], backend.get_float32_matmul_precision()
    backend.select("onednn")
    backend.set_float32_matmul_precision("medium")
    yield
    backend.set_float32_matmul_precision(precision)
    backend.select(before)


def _layout(x: np.ndarray, order: str) -> np.ndarray:
    if order == "F":
        return np.asfortranarray(x)
    if order == "slice":
        wide = np.zeros((x.shape[0], x.shape[1] + 5), dtype=x.dtype)
        wide[:, 2:2 + x.shape[1]] = x
        return wide[:, 2:2 + x.shape[1]]
    return np.ascontiguousarray(x)


@needs_bf16
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("order_a", ["C", "F", "slice"])
@pytest.mark.parametrize("out_order", ["C", "F"])
def test_bf16_gemm_is_rounded_operands_accumulated_in_float32(bf16, trans_a, trans_b, order_a, out_order):
    rng = np.random.default_rng(0)
    m, k, n = 37, 300, 29
    a = _layout(rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32), order_a)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    opa, opb = (a.T if trans_a else a), (b.T if trans_b else b)
    out = np.empty((m, n), dtype=np.float32, order=out_order)
    got = gemm(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
    assert got is out
    exact = opa.astype(np.float64) @ opb.astype(np.float64)
    rounded = to_bf16(opa) @ to_bf16(opb)
    scale = np.abs(opa).astype(np.float64) @ np.abs(opb).astype(np.float64)  # bounds float32 accumulation error
    assert np.max(np.abs(got - rounded) / scale) < 1e-5  # exactly the rounded product, up to float32 sums
    rel = np.max(np.abs(got - exact)) / np.max(np.abs(exact))
    assert 1e-4 < rel < 2e-2  # and measurably not float32 (~1e-7): bfloat16 really was used


@needs_bf16
def test_bf16_alpha_beta_float64_and_precision_switch(bf16):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((16, 64)).astype(np.float32), rng.standard_normal((64, 8)).astype(np.float32)
    c0 = rng.standard_normal((16, 8)).astype(np.float32)
    out = c0.copy()
    gemm(a, b, out=out, alpha=0.5, beta=2.0)
    np.testing.assert_allclose(out, 0.5 * (to_bf16(a) @ to_bf16(b)) + 2.0 * c0, rtol=1e-5, atol=1e-5)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    np.testing.assert_allclose(gemm(a64, b64), a64 @ b64, rtol=1e-12)  # float64 is never rounded
    backend.set_float32_matmul_precision("highest")  # the same cached problem, now in float32
    np.testing.assert_allclose(gemm(a, b), a64 @ b64, rtol=1e-5, atol=1e-5)
    assert backend.info()["float32_matmul_precision"] == "highest"


def test_precision_needs_a_backend_that_can_do_it():
    before = backend.info()["requested"]
    try:
        backend.select("numpy")
        with pytest.raises(ValueError, match=r"'medium' \(bfloat16\) needs the onednn GEMM backend.*pip install"):
            backend.set_float32_matmul_precision("medium")
        with pytest.raises(ValueError, match=r"must be one of \('highest', 'medium'\), got 'low'"):
            backend.set_float32_matmul_precision("low")
        assert backend.get_float32_matmul_precision() == "highest"
    finally:
        backend.select(before)


@needs_bf16
def test_switching_away_from_onednn_in_bf16_is_refused(bf16):
    with pytest.raises(ValueError, match="cannot run float32 products in bfloat16"):
        backend.select("numpy")
    assert backend.info()["gemm"] == "onednn"


@needs_bf16
def test_small_mlp_trains_the_same_in_bf16(bf16):
    """Forward, backward and SGD of nn.MLP with bf16 products follow the float32 run closely (same data, seed)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((256, 48)).astype(np.float32)
    y = (x[:, :3].sum(1) > 0).astype(np.int64) + (x[:, 3] > 0.5)
    curves = {}
    for precision in ("highest", "medium"):
        backend.set_float32_matmul_precision(precision)
        model = nn.MLP([48, 64, 64, 3], norm="batch", seed=0)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses = []
        for _ in range(60):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.data))
        curves[precision] = np.array(losses)
    f32, b16 = curves["highest"], curves["medium"]
    assert f32[-1] < 0.5 * f32[0] and b16[-1] < 0.5 * b16[0]  # both learn
    assert np.max(np.abs(f32[:10] - b16[:10])) < 0.02  # early steps nearly identical
    assert abs(f32[-1] - b16[-1]) < 0.1 * f32[0]
    assert not np.array_equal(f32, b16)  # and bf16 was really in use


def _in_subprocess(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = ("import json, numpy as np; from chainrule import backend;"
            "a = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4);"
            "print(json.dumps(dict(backend.info(), prod=backend.gemm(a, a, trans_b=True).tolist())))")
    full = {k: v for k, v in os.environ.items() if not k.startswith("CHAINRULE_")}
    full.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60)


@needs_bf16
def test_env_vars_select_onednn_and_bf16():
    r = _in_subprocess({"CHAINRULE_GEMM": "onednn", "CHAINRULE_FLOAT32_MATMUL_PRECISION": "medium",
                        "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["gemm"] == "onednn" and info["float32_matmul_precision"] == "medium" and info["threads"] == 1
    a = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(info["prod"], to_bf16(a) @ to_bf16(a).T, rtol=1e-6, atol=1e-6)


def test_env_var_errors_name_the_fix():
    r = _in_subprocess({"CHAINRULE_GEMM": "onednn", "CHAINRULE_ONEDNN_LIB": "/nonexistent/libdnnl.so"})
    assert r.returncode != 0
    assert "CHAINRULE_GEMM=onednn but oneDNN is unavailable" in r.stderr and "onednn-cpu-gomp" in r.stderr
    r = _in_subprocess({"CHAINRULE_FLOAT32_MATMUL_PRECISION": "medium"})  # numpy backend: cannot
    assert r.returncode != 0 and "needs the onednn GEMM backend" in r.stderr


@needs_onednn
def test_bf16_is_available_exactly_where_onednn_has_an_avx512_kernel():
    """The probe answers from the instruction set oneDNN dispatches to: bfloat16 matmul kernels exist from
    avx512_core up, so an AVX2-only CPU (or a virtual machine that hides AVX-512) gets the reason, not a crash."""
    isa = LIB.isa()
    assert (BF16_WHY == "") == (isa.startswith(("avx512", "avx10"))), (isa, BF16_WHY)
    if BF16_WHY:
        assert f"no bfloat16 matmul for this CPU (its instruction set here is {isa}" in BF16_WHY
    assert backend.bf16_unavailable() == BF16_WHY


@needs_onednn
def test_without_a_bf16_kernel_medium_is_refused_and_float32_still_runs(monkeypatch):
    """Where oneDNN loads but has no bfloat16 kernel for the CPU: 'medium' is refused with the reason, the
    backend stays usable in float32 (simulated here by the probe's answer, so the rule is tested on every CPU)."""
    before = backend.info()["requested"]
    try:
        backend.select("onednn")
        lib = blas._STATE.onednn
        monkeypatch.setattr(lib, "_bf16_problem", "oneDNN 3.2.0 has no bfloat16 matmul for this CPU (test)")
        with pytest.raises(ValueError, match=r"'medium' \(bfloat16\) is not available: oneDNN 3.2.0 has no "
                                             r"bfloat16 matmul for this CPU \(test\); use 'highest'"):
            backend.set_float32_matmul_precision("medium")
        assert backend.get_float32_matmul_precision() == "highest"
        assert backend.info()["bfloat16"] == "oneDNN 3.2.0 has no bfloat16 matmul for this CPU (test)"
        with pytest.raises(RuntimeError, match="bfloat16 products are unavailable here: oneDNN 3.2.0 has no"):
            backend.select("numpy")
            with backend.float32_matmul_precision("medium"):
                pass
        assert backend.info()["gemm"] == "numpy"
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        backend.select("onednn")
        np.testing.assert_allclose(gemm(a, a, trans_b=True), a @ a.T)
    finally:
        backend.select(before)
