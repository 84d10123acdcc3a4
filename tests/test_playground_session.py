"""The playground's session logic as plain Python (no server, no browser): data, features, the estimators it
drives through partial_fit, live parameter changes, divergence, and the views."""

import base64
import json

import numpy as np
import pytest

from chainrule.classifiers import KNearestNeighbor, LinearSVM, MLPClassifier, SoftmaxClassifier
from chainrule.data import make_2d
from chainrule.playground import Session, views
from chainrule.playground.features import input_features
from chainrule.playground.protocol import ProtocolError


def probs(frame):
    s = frame["surface"]
    q = np.frombuffer(base64.b64decode(s["probs"]), dtype=np.uint8)
    return q.reshape(s["classes"], s["size"], s["size"]) / 255.0


def roughness(frame):
    """Mean absolute difference of neighbouring cells of the class-probability map (the page's surfaceRoughness)."""
    p = probs(frame)
    return float(np.concatenate([np.abs(np.diff(p, axis=1)).ravel(), np.abs(np.diff(p, axis=2)).ravel()]).mean())


def test_defaults_data_split_and_features():
    s = Session()
    assert s.model == "mlp" and isinstance(s.est, MLPClassifier)
    assert s.est.get_params()["hidden_sizes"] == (8, 8) and s.est.preprocessing is None
    assert (len(s.y_train), len(s.y_test)) == (210, 90)
    X, y = make_2d("spiral", 300, 3, 0.2, 0)  # the session's points are the dataset's, split stratified
    both = np.concatenate([s.X_train, s.X_test])
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, X.tolist()))
    assert np.bincount(s.y_test).tolist() == [30, 30, 30]
    s.apply({"type": "set", "features": ["x", "y", "x2", "sinx"], "model": "knn"})
    f = input_features(s.X_train[:2], ["x", "y", "x2", "sinx"])
    np.testing.assert_allclose(f[:, 2], s.X_train[:2, 0] ** 2, rtol=1e-6)
    np.testing.assert_allclose(f[:, 3], np.sin(np.pi * s.X_train[:2, 0]), rtol=1e-5)
    assert s.est.n_features_in_ == 4


def test_knn_fits_at_once_and_its_regions_follow_k():
    s = Session()
    assert s.apply('{"type": "set", "model": "knn", "params": {"k": 1, "metric": "l1"}}') == "model"
    assert isinstance(s.est, KNearestNeighbor) and s.est.metric == "l1"
    f1 = s.frame()
    # 1-NN classifies its own training points (all but the spiral's centre, where every arm starts at (0, 0))
    assert f1["train_accuracy"] > 0.99 and f1["network"] is None and f1["graph"] is None
    assert s.step() is False  # nothing to train
    s.apply('{"type": "set", "params": {"k": 25}}')
    f25 = s.frame()
    assert f25["train_accuracy"] < 1.0 and roughness(f25) < roughness(f1)
    s.apply('{"type": "set", "data": {"n_points": 80}}')
    with pytest.raises(ProtocolError, match=r"params.k: must be at most the number of training points \(56\)"):
        s.apply('{"type": "set", "params": {"k": 57}}')
    assert s.params["knn"]["k"] == 25  # a rejected message changes nothing


def test_clear_then_add_points_of_chosen_classes():
    s = Session()
    assert s.apply('{"type": "clear"}') == "data"
    s.apply('{"type": "set", "model": "knn"}')  # its k = 5 is capped (with a notice) while there are fewer points
    assert len(s.y_train) == len(s.y_test) == 0 and s.frame()["surface"] is None
    s.apply({"type": "add_point", "x": -0.5, "y": 0.0, "label": 0})
    assert s.notice == "k-nearest neighbour needs training points of at least two classes" and s.frame()["surface"] is None
    s.apply({"type": "add_point", "x": 0.5, "y": 0.0, "label": 1})
    frame = s.frame()
    assert s.notice == "k = 5 is more than the 2 training points: using k = 2"
    p = probs(frame)
    assert p.shape == (3, 100, 100)
    assert p[2].max() == 0  # class 2 has no points: probability 0 everywhere
    with pytest.raises(ProtocolError, match="label: must be below the number of classes"):
        s.apply({"type": "add_point", "x": 0.0, "y": 0.0, "label": 3})


def test_mlp_trains_with_partial_fit_and_reports_the_estimators_numbers():
    s = Session()
    assert s.step() is True
    est = s.est
    assert est.n_iter_ == 1 and est.n_steps_ == 21  # one epoch of 210 points in batches of 10
    for _ in range(4):
        s.step()
    assert s.est is est and est.n_iter_ == 5 and est.n_steps_ == 105
    frame = s.frame()
    assert frame["step"] == 105 and frame["epoch"] == 5
    assert frame["loss"] == pytest.approx(est.loss_curve_[-1])
    assert frame["train_accuracy"] == pytest.approx(est.score(s._F_train, s.y_train))
    assert frame["test_accuracy"] == pytest.approx(est.score(s._F_test, s.y_test))
    np.testing.assert_allclose(probs(frame).reshape(3, -1).T, est.predict_proba(s._grid), atol=0.5 / 255 + 1e-9)
    assert [r["epoch"] for r in s.history] == [1, 2, 3, 4, 5]
    json.dumps(frame, allow_nan=False)


def test_live_parameters_keep_the_model_and_the_rest_reset_it():
    s = Session()
    s.step()
    est, W = s.est, s.est.model_[0].weight.data.copy()
    assert s.apply({"type": "set", "params": {"weight_decay": 0.1, "lr": 0.003, "batch_size": 30}}) == "live"
    assert s.est is est and est.weight_decay == 0.1 and est.lr == 0.003 and est.batch_size == 30
    np.testing.assert_array_equal(est.model_[0].weight.data, W)
    s.step()
    assert est.n_iter_ == 2 and est.n_steps_ == 21 + 7  # the next epoch in batches of 30
    assert s.apply({"type": "set", "params": {"optimizer": "sgd", "momentum": 0.9, "nesterov": True}}) == "live"
    s.step()
    assert est.n_iter_ == 3
    assert s.apply({"type": "set", "params": {"hidden_sizes": [4]}}) == "model"
    assert s.est is not est and s.n_steps == 0 and s.history == []
    assert s.apply({"type": "set", "params": {"activation": "tanh"}}) == "model"
    assert s.apply({"type": "set", "data": {"noise": 0.3}}) == "data"
    assert s.apply({"type": "set", "params": {"activation": "tanh"}}) == "none"


def test_added_points_join_the_running_model():
    s = Session()
    s.step()
    est = s.est
    s.apply({"type": "add_point", "x": 1.0, "y": 1.0, "label": 2})
    assert s.est is est and len(s.y_train) == 211
    s.step()
    assert est.n_steps_ == 21 + 22  # 211 points in batches of 10


@pytest.mark.parametrize("model, cls", [("svm", LinearSVM), ("softmax", SoftmaxClassifier)])
def test_linear_models_step_and_draw_score_lines(model, cls):
    s = Session()
    s.apply({"type": "set", "data": {"dataset": "blobs", "classes": 3, "noise": 0.0}, "model": model})
    assert isinstance(s.est, cls)
    for _ in range(10):
        s.step()
    frame = s.frame()
    assert frame["train_accuracy"] > 0.9  # three separated blobs are linearly separable
    lines = frame["lines"]
    assert len(lines) == 3
    np.testing.assert_allclose([ln[:2] for ln in lines], s.est.W_.T, rtol=1e-6)
    assert frame["network"]["activation"] == "linear" and len(frame["network"]["layers"]) == 2
    s.apply({"type": "set", "features": ["x", "y", "xy"]})
    s.step()
    assert s.frame()["lines"] is None  # not lines any more in the plane


def test_lambda_smooths_the_decision_surface():
    """The lectures' point (ConvNetJS, λ = 0.001 / 0.01 / 0.1): stronger L2 gives a smoother boundary."""
    rough = {}
    for lam in (0.001, 0.1):
        s = Session()
        s.apply({"type": "set", "params": {"hidden_sizes": [16, 16], "weight_decay": lam, "lr": 0.03}})
        for _ in range(150):
            s.step()
        rough[lam] = roughness(s.frame())
    assert rough[0.1] < 0.8 * rough[0.001], rough


def test_a_diverging_run_stops_says_so_and_resets():
    s = Session()
    s.apply({"type": "set", "params": {"activation": "leaky_relu", "optimizer": "sgd", "momentum": 0.9, "lr": 10.0}})
    s.running = True
    for _ in range(50):
        if not s.step():
            break
    assert s.error is not None and s.error["rule"] == "diverged" and not s.running
    assert "lower the learning rate and press reset" in s.error["message"]
    frame = s.frame()
    assert frame["error"] == s.error
    json.dumps(frame, allow_nan=False)
    assert s.step() is False  # stays stopped until reset
    s.apply({"type": "set", "params": {"lr": 0.1}})
    s.apply({"type": "reset"})
    assert s.error is None and s.step() is True


def test_network_view_reads_model_and_graph_has_values_and_gradients():
    s = Session()
    for _ in range(3):
        s.step()
    s.apply({"type": "inspect", "index": 7})
    grad_before = s.est.model_[0].weight.grad.copy()
    frame = s.frame()
    net = frame["network"]
    assert [layer["kind"] for layer in net["layers"]] == ["input", "hidden", "hidden", "output"]
    assert [layer["n"] for layer in net["layers"]] == [2, 8, 8, 3]
    W1 = s.est.model_[0].weight.data
    np.testing.assert_allclose(np.reshape(net["weights"][0]["data"], (2, 8)), W1, atol=1e-4)
    hidden = np.frombuffer(base64.b64decode(net["layers"][1]["maps"]), np.int8).reshape(8, 24, 24)
    grid = views.grid_features(s.features, 24)
    relu1 = np.maximum(grid @ W1 + s.est.model_[0].bias.data, 0)  # hidden layer 1 by hand
    scale = np.where(relu1.max(axis=0) > 0, relu1.max(axis=0), 1)
    np.testing.assert_allclose(hidden.reshape(8, -1).T, np.rint(127 * relu1 / scale), atol=1)

    g = frame["graph"]
    assert g["label"] == int(s.y_train[7]) and g["has_grads"]
    names = [n["name"] for n in g["nodes"] if n["kind"] == "input"]
    assert names == ["x", "W1", "b1", "W2", "b2", "W3", "b3"]
    x_wire = next(w for w in g["wires"] if w["source"] == "n0")
    np.testing.assert_allclose(x_wire["value"]["data"], s._F_train[7], rtol=1e-6)
    loss_wire = next(w for w in g["wires"] if w["target"] is None)
    # the data loss on the graph is this point's cross-entropy under the estimator
    p = s.est.predict_proba(s._F_train[7:8])[0, s.y_train[7]]
    data_wire = next(w for w in g["wires"] if w["value_text"].startswith("data loss"))
    assert data_wire["value"]["data"][0] == pytest.approx(-np.log(p), rel=1e-4)
    assert loss_wire["value"]["data"][0] > data_wire["value"]["data"][0]  # + weight_decay/2 ΣW²
    # the graph used copies: the model's parameters and gradients are untouched
    np.testing.assert_array_equal(s.est.model_[0].weight.grad, grad_before)


def test_no_grad_in_one_thread_leaves_training_in_another_alone():
    """Sessions train on worker threads while others predict under no_grad: grad mode is per thread."""
    import threading

    from chainrule import Tensor, is_grad_enabled, no_grad

    inside, seen = threading.Event(), []

    def predictor():
        with no_grad():
            inside.set()
            done.wait(10)

    done = threading.Event()
    t = threading.Thread(target=predictor)
    t.start()
    inside.wait(10)
    seen.append(is_grad_enabled())
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (x * 2).sum().backward()
    done.set()
    t.join()
    assert seen == [True] and x.grad.tolist() == [2.0, 2.0, 2.0]
