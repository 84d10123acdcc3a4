"""MLPClassifier's prediction and product settings: ``test_time_flip`` (mirror averaging at prediction),
``matmul_precision`` ("bf16" products on oneDNN, the backend restored afterwards, a clear error where oneDNN is
missing, also from ``chainrule train``), and the compiled SGD / batch kernels (``chainrule.backend.fused``) changing
no result."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import backend
from chainrule.backend import _onednn, blas, fused
from chainrule.classifiers.mlp import MLPClassifier

pytestmark = pytest.mark.usefixtures("one_blas_thread")  # tests/conftest.py
_LIB, _WHY = _onednn.load()
BF16_WHY = _WHY if _LIB is None else _LIB.bf16_problem()  # e.g. a CPU (or VM) that shows only AVX2
needs_bf16 = pytest.mark.skipif(bool(BF16_WHY), reason=f"bfloat16 products: {BF16_WHY}")


def tiny_images(n=120, size=8, seed=0):
    """uint8 images (n, size, size, 3) whose class is the brightest colour channel, plus a left-right asymmetric
    stripe (so that an image and its mirror give the network different inputs)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.integers(0, 150, (n, size, size, 3))
    X[np.arange(n), :, :, y] += 100
    X[:, :, : size // 3] //= 2
    return X.astype(np.uint8), y


def mirror(X):
    return np.ascontiguousarray(X[:, :, ::-1])


def softmax(s):
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


SMALL = dict(hidden_sizes=(16,), epochs=3, batch_size=32, lr=1e-2, random_state=0)


# ---- test_time_flip ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preprocessing, augment", [("standardize", False), ("zca", True), (None, "flip")])
def test_time_flip_averages_the_scores_of_each_image_and_its_mirror(preprocessing, augment):
    X, y = tiny_images()
    m = MLPClassifier(**SMALL, preprocessing=preprocessing, augment=augment).fit(X, y)
    # log-probabilities are the scores up to a constant per row, which the softmax of their mean cancels
    expected = softmax((m.predict_log_proba(X) + m.predict_log_proba(mirror(X))) / 2)
    plain = m.predict_proba(X)
    m.set_params(test_time_flip=True)
    got = m.predict_proba(X)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(plain - got).max() > 1e-3  # the mirror changes the inputs: averaging is not a no-op
    np.testing.assert_allclose(m.predict_proba(mirror(X)), got, rtol=1e-5, atol=1e-6)  # mirror-invariant now
    np.testing.assert_array_equal(m.predict(X), m.classes_[np.argmax(expected, axis=1)])
    assert m.score(X, y) == np.mean(m.predict(X) == y)


def test_time_flip_is_saved_with_the_model(tmp_path):
    X, y = tiny_images()
    m = MLPClassifier(**SMALL, test_time_flip=True).fit(X, y)
    m.save(tmp_path / "m.npz")
    loaded = MLPClassifier.load(tmp_path / "m.npz")
    assert loaded.test_time_flip is True
    np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))


def test_time_flip_needs_images():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 5)), np.arange(60) % 2
    with pytest.raises(ValueError, match=r"test_time_flip=True needs images \(N, H, W\[, C\]\).*test_time_flip=False"):
        MLPClassifier(**SMALL, test_time_flip=True).fit(X, y)
    m = MLPClassifier(**SMALL).fit(X, y).set_params(test_time_flip=True)
    with pytest.raises(ValueError, match="test_time_flip=True needs images"):
        m.predict(X)
    with pytest.raises(ValueError, match="test_time_flip must be True or False, got 'yes'"):
        MLPClassifier(**SMALL, test_time_flip="yes").fit(X, y)


# ---- matmul_precision -------------------------------------------------------------------------------------------


class _Spy:
    """Trainer callback recording the GEMM backend and precision at every step."""

    def __init__(self):
        self.seen = set()

    def on_step_end(self, trainer):
        self.seen.add((backend.info()["gemm"], backend.get_float32_matmul_precision()))


@needs_bf16
def test_bf16_trains_in_bfloat16_and_restores_the_backend():
    X, y = tiny_images()
    before = (backend.info()["gemm"], backend.get_float32_matmul_precision())
    spy = _Spy()
    m = MLPClassifier(**SMALL, matmul_precision="bf16").fit(X, y, callbacks=[spy])
    assert spy.seen == {("onednn", "medium")}
    assert (backend.info()["gemm"], backend.get_float32_matmul_precision()) == before
    assert m.score(X, y) > 0.9
    bf16 = m.predict_proba(X)
    f32 = m.set_params(matmul_precision="float32").predict_proba(X)
    assert (backend.info()["gemm"], backend.get_float32_matmul_precision()) == before
    assert 0 < np.abs(bf16 - f32).max() < 0.05  # the same weights, the products rounded: close, not equal
    # float32 on a process whose default precision is bfloat16: float32 inside fit, bfloat16 again afterwards
    with backend.float32_matmul_precision("medium"):
        spy = _Spy()
        MLPClassifier(**SMALL).fit(X, y, callbacks=[spy])
        assert spy.seen == {("onednn", "highest")}
        assert backend.get_float32_matmul_precision() == "medium"
    assert (backend.info()["gemm"], backend.get_float32_matmul_precision()) == before


@needs_bf16
def test_the_backend_is_restored_when_fit_fails():
    X, y = tiny_images()
    before = (backend.info()["gemm"], backend.get_float32_matmul_precision())

    class Boom:
        def on_step_end(self, trainer):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        MLPClassifier(**SMALL, matmul_precision="bf16").fit(X, y, callbacks=[Boom()])
    assert (backend.info()["gemm"], backend.get_float32_matmul_precision()) == before


def test_bf16_without_onednn_names_the_extra(monkeypatch):
    monkeypatch.setattr(blas, "_ONEDNN_LOADED", (None, "libdnnl not found"))
    if blas._STATE.onednn is not None:
        pytest.skip("the process runs on the onednn backend (CHAINRULE_GEMM=onednn)")
    X, y = tiny_images(30)
    with pytest.raises(ValueError, match=r"matmul_precision='bf16' runs the network's products in bfloat16 on "
                                         r"oneDNN, which cannot here \(libdnnl not found\); pip install "
                                         r"'chainrule\[bf16\]'.*or use matmul_precision='float32'"):
        MLPClassifier(**SMALL, matmul_precision="bf16").fit(X, y)
    with pytest.raises(RuntimeError, match=r"bfloat16 products are unavailable here: libdnnl not found.*chainrule\[bf16\]"):
        with backend.float32_matmul_precision("medium"):
            pass
    with pytest.raises(ValueError, match=r"matmul_precision must be one of \['float32', 'bf16', 'auto'\], got 'fp16'"):
        MLPClassifier(**SMALL, matmul_precision="fp16").fit(X, y)


def test_auto_is_bf16_exactly_where_it_is_available(monkeypatch):
    X, y = tiny_images(30)
    for why, expected in (("", ("onednn", "medium")), ("no bfloat16 matmul for this CPU (test)", None)):
        monkeypatch.setattr(backend, "bf16_unavailable", lambda why=why: why)
        if expected is None:  # float32: whatever backend the process uses, at full precision
            expected = (backend.info()["gemm"], "highest")
        elif BF16_WHY:
            continue  # a real bf16 fit needs the kernels
        spy = _Spy()
        MLPClassifier(**SMALL, matmul_precision="auto").fit(X, y, callbacks=[spy])
        assert spy.seen == {expected}
    with pytest.raises(ValueError, match=r"matmul_precision='bf16'.*cannot here \(no bfloat16 matmul for this CPU "
                                         r"\(test\)\).*or 'auto'"):
        MLPClassifier(**SMALL, matmul_precision="bf16").fit(X, y)


def test_cli_says_how_to_get_bf16(tmp_path, chainrule_process, monkeypatch):
    monkeypatch.setenv("CHAINRULE_ONEDNN_LIB", str(tmp_path / "missing" / "libdnnl.so"))
    r = chainrule_process(["train", "--model", "mlp", "--matmul-precision", "bf16", "--epochs", "1", "-q",
                           "--out", str(tmp_path / "run")], cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "matmul_precision='bf16'" in r.stderr and "pip install 'chainrule[bf16]'" in r.stderr
    assert not (tmp_path / "run").exists()  # refused before the run folder was written


# ---- the compiled kernels change nothing ------------------------------------------------------------------------


def test_fused_kernels_give_the_same_fit(monkeypatch):
    """ZCA + flips and crops + Nesterov SGD: the path where FlipCrop.take and the SGD kernel run (float32 whitened
    images, float32 parameters) trains bit for bit the model the NumPy code trains."""
    X, y = tiny_images()
    params = dict(SMALL, hidden_sizes=(16, 16), norm="batch", optimizer="sgd", lr=0.05, weight_decay=1e-3,
                  preprocessing="zca", augment=True)
    fast = MLPClassifier(**params).fit(X, y)
    monkeypatch.setattr(fused, "AVAILABLE", False)
    slow = MLPClassifier(**params).fit(X, y)
    assert fast.loss_curve_ == slow.loss_curve_
    for (name, a), b in zip(fast.model_.state_dict().items(), slow.model_.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
