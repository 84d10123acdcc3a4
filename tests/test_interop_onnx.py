"""ONNX export: the traced graph, built by onnx, checked by onnx.checker, run by onnxruntime against chainrule."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.classifiers import KNearestNeighbor, LinearSVM, MLPClassifier, SoftmaxClassifier
from chainrule.nn import functional as F
from chainrule.nn.activations import ACTIVATION_NAMES

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
import chainrule.onnx as cro  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def ours(model, x):
    with cr.no_grad():
        return model(cr.Tensor(x)).data


def with_running_stats(model, d):
    rng = np.random.default_rng(3)
    model.train()
    for _ in range(3):
        model(cr.Tensor((rng.standard_normal((32, d)) * 3 + 1).astype(np.float32)))
    return model.eval()


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_mlp_with_every_activation_runs_in_onnxruntime_with_equal_outputs(tmp_path, activation, norm):
    model = with_running_stats(nn.MLP([6, 10, 8, 4], activation=activation, norm=norm, dropout=0.2, seed=0), 6)
    rng = np.random.default_rng(0)
    path = tmp_path / "mlp.onnx"
    proto = cro.export(model, rng.standard_normal((3, 6)).astype(np.float32), path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert model.training is False  # export restores the mode it found (eval after with_running_stats)
    for n in (1, 17):  # a dynamic batch axis: other batch sizes than the example's
        x = (rng.standard_normal((n, 6)) * 2).astype(np.float32)
        np.testing.assert_allclose(run_onnx(path, x), ours(model, x), rtol=1e-5, atol=1e-5)


def test_export_writes_the_nodes_backward_walks_with_parameters_named(tmp_path):
    model = nn.MLP([4, 5, 3], seed=0)
    proto = cro.export(model, np.zeros((2, 4), np.float32))
    assert [n.op_type for n in proto.graph.node] == ["Gemm", "Relu", "Gemm", "Identity"]
    assert {i.name for i in proto.graph.initializer} == {"0.weight", "0.bias", "2.weight", "2.bias"}
    out = model(cr.Tensor(np.zeros((2, 4), np.float32), requires_grad=True))
    assert [type(n).__name__ for n in cr.engine.topological_order(out.grad_fn)] == ["Linear", "Relu", "Linear"]
    model.train()
    cro.export(model, np.zeros((2, 4), np.float32))
    assert model.training  # restored


def test_ops_written_with_tensor_methods_export_too(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 4, seed=0)

        def forward(self, x):
            h = self.fc(x.reshape((x.shape[0], -1)) * 0.5 - 1.0)
            h = cr.maximum(h, h.tanh()) + h.sigmoid() ** 2 / (h.exp() + 1.0)
            z = cr.concatenate([h, h.abs().sqrt()], axis=1).transpose().transpose()
            return F.log_softmax(z, dim=1) + z.mean(axis=1, keepdims=True) - z.sum(axis=1, keepdims=True) * 0.1

    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    path = tmp_path / "net.onnx"
    cro.export(Net(), x, path)
    np.testing.assert_allclose(run_onnx(path, x), ours(Net(), x), rtol=1e-5, atol=1e-5)


def test_linear_model_exports():
    model = nn.Linear(7, 3, seed=1)
    x = np.random.default_rng(0).standard_normal((4, 7)).astype(np.float32)
    proto = cro.export(model, x)
    out = ort.InferenceSession(proto.SerializeToString()).run(None, {"input": x})[0]
    np.testing.assert_allclose(out, ours(model, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: LinearSVM(iterations=40, preprocessing="zca", random_state=0),
    lambda: SoftmaxClassifier(iterations=40, preprocessing="standardize", random_state=0),
    lambda: SoftmaxClassifier(iterations=40, preprocessing=None, random_state=0),
    lambda: MLPClassifier(hidden_sizes=(16,), epochs=2, preprocessing="center", norm="batch", activation="gelu",
                          random_state=0),
])
def test_estimators_export_with_their_preprocessing_in_the_graph(tmp_path, digits_split, make):
    X = digits_split.X_train.reshape(len(digits_split.X_train), -1).astype(np.float32)
    X_train, y_train, X_test = X[:400], digits_split.y_train[:400], X[400:450]
    est = make().fit(X_train, y_train)
    path = tmp_path / "est.onnx"
    proto = cro.export(est, X_test[:1], path)
    scores = run_onnx(path, X_test)
    reference = est.decision_function(X_test) if hasattr(est, "W_") else est._scores(X_test)
    np.testing.assert_allclose(scores, reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(est.classes_[scores.argmax(axis=1)], est.predict(X_test))
    if est.preprocessing is not None:  # the fitted statistics travel as initializers of the graph
        assert any(i.name.startswith("const") or "mean" in i.name for i in proto.graph.initializer)
        assert proto.graph.node[0].op_type == "Sub"


def test_estimators_whose_prediction_is_not_one_graph_are_refused(blobs):
    X, y = blobs(n_per_class=10, d=12)
    with pytest.raises(cro.OnnxExportError, match="KNearestNeighbor.*compares with its stored training set"):
        cro.export(KNearestNeighbor().fit(X, y), X[:1])
    images = np.random.default_rng(0).integers(0, 255, (30, 8, 8, 3)).astype(np.float32)
    hog = SoftmaxClassifier(iterations=5, features="hog_color", hog_cell=4).fit(images, np.arange(30) % 3)
    with pytest.raises(ValueError, match="features='hog_color' computes HOG .* outside the computational graph"):
        cro.export(hog, images[:1])
    flip = MLPClassifier(hidden_sizes=(4,), epochs=1, test_time_flip=True).fit(images, np.arange(30) % 3)
    with pytest.raises(ValueError, match="test_time_flip=True .* set test_time_flip=False"):
        cro.export(flip, images[:1].reshape(1, -1))


def test_an_op_without_onnx_form_is_named():
    with pytest.raises(cro.OnnxExportError, match=r"op Var \(output shape \(3,\)\) has no ONNX form"):
        cro.export(lambda_module(lambda x: x.var(axis=1) * 2.0), np.zeros((3, 4), np.float32))
    with pytest.raises(cro.OnnxExportError, match=r"GetItem with the index .* has no ONNX form"):
        cro.export(lambda_module(lambda x: x[:, np.array([0, 2])]), np.zeros((3, 4), np.float32))

    class Custom(cr.Function):
        @staticmethod
        def forward(ctx, x):
            return np.sin(x)

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(cro.OnnxExportError, match="op Custom .* has no ONNX form.*exportable ops: .*Linear"):
        cro.export(lambda_module(Custom.apply), np.zeros((3, 4), np.float32))


def lambda_module(fn):
    class Wrap(nn.Module):
        def forward(self, x):
            return fn(x)
    return Wrap()


def test_outputs_that_are_not_a_graph_of_the_input_are_refused():
    with pytest.raises(cro.OnnxExportError, match="does not depend on the input"):
        cro.export(lambda_module(lambda x: cr.Tensor(np.ones(3, np.float32))), np.zeros((2, 3), np.float32))
    with pytest.raises(cro.OnnxExportError, match="batch statistics"):
        cro.export(nn.BatchNorm1d(3, track_running_stats=False), np.zeros((2, 3), np.float32))
    with pytest.raises(cro.OnnxExportError, match="must be floating point"):
        cro.export(nn.Linear(3, 2), np.zeros((2, 3), np.uint8))


def conv_net():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 6, 3, stride=2, padding=1, groups=2), nn.GELU(), nn.Dropout2d(0.1),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), nn.MaxPool2d(3, stride=2, ceil_mode=True),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 5),
    )


def test_conv_net_runs_in_onnxruntime_with_equal_outputs(tmp_path):
    cr.manual_seed(0)
    model = conv_net()
    rng = np.random.default_rng(0)
    model(cr.Tensor(rng.standard_normal((8, 3, 16, 16)).astype(np.float32)))  # training: running statistics move
    model.eval()
    path = tmp_path / "cnn.onnx"
    proto = cro.export(model, rng.standard_normal((2, 3, 16, 16)).astype(np.float32), path)
    assert [n.op_type for n in proto.graph.node if n.op_type in ("Conv", "MaxPool", "AveragePool",
                                                                 "BatchNormalization")] == \
        ["Conv", "BatchNormalization", "MaxPool", "Conv", "AveragePool", "MaxPool"]
    x = rng.standard_normal((5, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(path, x), ours(model, x), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def fitted_convnet():
    from chainrule.classifiers import ConvNetClassifier
    from chainrule.data import load_digits

    digits = load_digits()
    X, y = digits.X_train[:240].astype(np.float32), digits.y_train[:240]
    # float32 products: ONNX Runtime computes in float32 ("auto" would run bfloat16 on CPUs that have it)
    return ConvNetClassifier(channels=(8, 16), epochs=1, batch_size=60, matmul_precision="float32",
                             random_state=0).fit(X, y), X


def test_conv_net_estimator_exports_with_its_test_time_augmentation(tmp_path, fitted_convnet):
    est, X = fitted_convnet
    assert est.test_time_flip and est.test_time_shift == 1  # the defaults: mirror + translate views, in the graph
    path = tmp_path / "cnn.onnx"
    proto = cro.export(est, X[:1], path)
    assert {"Pad", "Slice", "Conv", "BatchNormalization", "ReduceMax"} <= {n.op_type for n in proto.graph.node}
    scores = run_onnx(path, X[:40])
    np.testing.assert_allclose(scores, est._scores(X[:40]), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(est.classes_[scores.argmax(axis=1)], est.predict(X[:40]))
    plain = cro.export(est.set_params(test_time_flip=False, test_time_shift=0), X[:1])
    assert "Pad" not in {n.op_type for n in plain.graph.node}
    scores = ort.InferenceSession(plain.SerializeToString()).run(None, {"input": X[:40]})[0]
    np.testing.assert_allclose(scores, est._scores(X[:40]), rtol=1e-5, atol=1e-5)
    est.set_params(test_time_flip=True, test_time_shift=1)


def test_test_time_augment_module_equals_predict_tta():
    from chainrule.data.augment import predict_tta

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 6, 3)).eval()
    x = np.random.default_rng(0).standard_normal((4, 3, 7, 8)).astype(np.float32)
    for flip, shift, mode in [(True, 1, "reflect"), (False, 2, "edge"), (True, 0, "reflect"), (True, 1, "constant")]:
        expected = predict_tta(lambda v: ours(model, np.ascontiguousarray(v)), x, flip=flip, shift=shift,
                               padding_mode=mode, data_format="NCHW")
        np.testing.assert_allclose(ours(nn.TestTimeAugment(model, flip, shift, mode), x), expected, rtol=1e-5,
                                   atol=1e-6)
    # images given as NHWC rows: the views are made in that layout, each passed on as NHWC images
    rows = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(4, -1)
    nhwc_model = nn.Sequential(lambda_module(lambda t: t.transpose(0, 3, 1, 2)), model)
    expected = predict_tta(lambda v: ours(nhwc_model, np.ascontiguousarray(v)), rows.reshape(4, 7, 8, 3),
                           data_format="NHWC")
    tta = nn.TestTimeAugment(nhwc_model, data_format="NHWC", image_shape=(7, 8, 3))
    np.testing.assert_allclose(ours(tta, rows), expected, rtol=1e-5, atol=1e-6)


def test_slicing_and_padding_export():
    class Net(nn.Module):
        def forward(self, x):
            a = x[..., ::-1] + F.pad(x, (1, 1, 1, 1), mode="reflect")[:, :, 2:, 2:][:, :, :5, :6]
            c = F.pad(x, (2, 0, 0, 1), mode="replicate")[:, 1, :-1, 2:]
            d = F.pad(x, (1, 1, 1, 1), value=0.5)[:, :, 1:-1, 1:-1]
            return a + cr.unsqueeze(c, 1) + d + x[:, :, ::-2].sum(axis=2, keepdims=True)

    x = np.random.default_rng(0).standard_normal((3, 2, 5, 6)).astype(np.float32)
    proto = cro.export(Net(), x[:1])
    out = ort.InferenceSession(proto.SerializeToString()).run(None, {"input": x})[0]
    np.testing.assert_allclose(out, ours(Net(), x), rtol=1e-6, atol=1e-6)
    with pytest.raises(cro.OnnxExportError, match="circular"):
        cro.export(lambda_module(lambda t: F.pad(t, (1, 1, 1, 1), mode="circular")), x[:1])
