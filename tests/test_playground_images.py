"""The images mode's session (plain Python) and protocol: training in small batches, held-out scoring, the views
computed from the estimator (templates, first-layer units, activations and their gradients, the held-out strip),
all-or-nothing settings, divergence, and bounded frames."""

import base64
import io
import json

import numpy as np
import pytest

from chainrule.classifiers import LinearSVM, MLPClassifier, SoftmaxClassifier
from chainrule.playground.image_data import ImageDatasets, make_image_data
from chainrule.playground.image_protocol import parse_image_message
from chainrule.playground.images import ImageSession
from chainrule.playground.protocol import ProtocolError

pytest.importorskip("sklearn", reason="the digits come with scikit-learn")
Image = pytest.importorskip("PIL.Image", reason="the views are PNG images (Pillow)")

DATASETS = ImageDatasets()


def png(sprite):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(sprite["png"]))))


@pytest.fixture
def session():
    return ImageSession(DATASETS)


def test_the_digits_are_split_and_centred_for_the_model():
    data = DATASETS.get("digits")
    assert data.sample_shape == (8, 8, 1) and len(data.test) == 300 and len(data.train) == 1497
    assert len(np.intersect1d(data.train, data.test)) == 0
    X = data.batch(data.train)
    assert X.dtype == np.float32 and abs(float(X.mean())) < 1e-5  # minus the training images' mean
    assert data.pixels(data.test[:2]).dtype == np.uint8 and data.pixels(data.test).max() == 255
    with pytest.raises(ValueError, match="at most 64 x 64 pixels, got 96 x 96"):
        make_image_data("big", np.zeros((10, 96, 96, 3), np.uint8), np.arange(10) % 2, ("a", "b"), 1 / 255, 2)


def test_steps_train_the_estimator_in_small_batches_and_score_held_out_images(session):
    assert isinstance(session.est, MLPClassifier) and session.frame()["step"] == 0
    assert session.step()
    assert session.est.n_steps_ == 5  # a step: 5 minibatches of 20 training images
    for _ in range(60):
        session.step()
    f = session.frame()
    assert f["mode"] == "images" and f["step"] == 305 and f["epoch"] == 5
    assert f["test_accuracy"] > 0.9 and f["train_accuracy"] > 0.9 and f["loss"] < 1.0
    held = session.images.test
    assert f["test_accuracy"] == pytest.approx(session.est.score(session.images.batch(held), session.images.y[held]))
    t = f["throughput"]
    assert t["images_per_s"] > 0 and t["forward_ms"] > 0 and t["backward_ms"] >= 0


def test_views_come_from_the_estimator(session):
    for _ in range(10):
        session.step()
    f = session.frame()
    W = session.est.model_[0].weight.data  # (64, 64): pixels x hidden units
    filters = f["filters"]
    assert (filters["kind"], filters["total"], filters["n"], filters["h"], filters["w"]) == ("units", 64, 32, 8, 8)
    sheet = png(filters)
    first = sheet[:8, :8].astype(float)  # unit 0: its 64 weights as an 8x8 image, 0 -> grey
    w0 = W[:, 0].reshape(8, 8)
    assert np.corrcoef(first.ravel(), w0.ravel())[0, 1] > 0.99
    acts = f["activations"]
    assert [layer["name"] for layer in acts["layers"]] == ["input image", "Linear", "ReLU", "Linear"]
    x = session.images.batch(session.images.test[:1])
    assert acts["probs"] == pytest.approx(session.est.predict_proba(x)[0], abs=1e-3)
    assert acts["label"] == session.images.y[session.images.test[0]]
    strip = f["strip"]
    wrong = [i for i, top in zip(strip["index"], strip["top"]) if top[0] != session.images.y[session.images.test[i]]]
    assert strip["index"][:len(wrong)] == wrong and len(strip["index"]) == 40  # mistakes first
    assert all(p[0] >= p[1] >= p[2] for p in strip["p"])
    session.apply({"type": "set", "view": {"gradients": True}})
    grads = session.frame()["activations"]
    assert grads["gradients"] and grads["layers"][1]["png"] != acts["layers"][1]["png"]
    session.apply({"type": "inspect", "index": 7})
    assert session.frame()["activations"]["label"] == session.images.y[session.images.test[7]]


@pytest.mark.parametrize("model, cls", [("softmax", SoftmaxClassifier), ("svm", LinearSVM)])
def test_linear_models_show_one_template_per_class(session, model, cls):
    assert session.apply({"type": "set", "model": model}) == "model"
    assert isinstance(session.est, cls)
    for _ in range(40):
        session.step()
    f = session.frame()
    assert f["test_accuracy"] > 0.85
    assert (f["filters"]["kind"], f["filters"]["n"]) == ("templates", 10)
    assert [layer["name"] for layer in f["activations"]["layers"]] == ["input image", "scores"]


def test_settings_are_checked_whole_and_a_refused_one_changes_nothing(session):
    before = json.dumps(session.state())
    bad = [({"type": "set", "params": {"hidden_sizes": [64, 0]}}, "params.hidden_sizes[1]"),
           ({"type": "set", "params": {"batch_size": 0}}, "params.batch_size"),
           ({"type": "set", "data": {"dataset": "cifar10"}}, "data.dataset"),  # not offered by this server
           ({"type": "set", "model": "knn"}, "model"),
           ({"type": "inspect", "index": 300}, "index")]
    for msg, field in bad:
        with pytest.raises(ProtocolError) as info:
            session.apply(json.dumps(msg))
        assert info.value.field == field
    assert json.dumps(session.state()) == before
    assert session.apply('{"type": "set", "params": {"lr": 0.01}}') == "live" and session.est.lr == 0.01


def test_a_learning_rate_that_diverges_stops_with_a_message_until_reset(session):
    for _ in range(5):
        session.step()
    session.apply({"type": "set", "params": {"optimizer": "sgd", "lr": 10}})
    assert session.advance(30) < 200
    f = session.frame()
    assert f["error"]["rule"] == "diverged" and "lower the learning rate and press reset" in f["error"]["message"]
    assert f["filters"] is None and not session.step()
    session.apply({"type": "set", "params": {"lr": 0.003, "optimizer": "adam"}})
    session.apply({"type": "reset"})
    assert session.step() and session.frame()["error"] is None


def test_frames_are_bounded():
    data = make_image_data("noise", np.random.default_rng(0).integers(0, 256, (600, 32, 32, 3), dtype=np.uint8),
                           np.arange(600) % 10, tuple("abcdefghij"), 1 / 255, 100)

    class One:
        names = ("noise",)

        def get(self, name):
            return data

    s = ImageSession(One(), "noise")
    s.apply({"type": "set", "params": {"hidden_sizes": [512, 512, 512, 512]}})
    s.step()
    full = json.dumps(s.frame())
    light = json.dumps(s.frame(False))
    assert len(light) < 2_000 and len(full) < 200_000
    assert s.frame()["filters"]["n"] == 32  # of 512 units


def test_the_images_protocol():
    names = ("digits",)
    assert parse_image_message('{"type": "mode", "mode": "points"}', "mlp", names) == {"type": "mode",
                                                                                       "mode": "points"}
    with pytest.raises(ProtocolError, match="mode: required"):
        parse_image_message('{"type": "mode"}', "mlp", names)
    with pytest.raises(ProtocolError, match=r"params.hidden_sizes: at most 4 hidden layers"):
        parse_image_message('{"type": "set", "params": {"hidden_sizes": [1, 1, 1, 1, 1]}}', "mlp", names)
    with pytest.raises(ProtocolError, match=r"params.hidden_sizes: unknown field"):
        parse_image_message('{"type": "set", "params": {"hidden_sizes": [8]}}', "softmax", names)
    with pytest.raises(ProtocolError, match="at most 8 levels of nesting"):
        parse_image_message('{"type": "set", "view": ' + "[" * 20 + "]" * 20 + "}", "mlp", names)


def test_a_conv_net_learns_filters_and_refuses_zero_channels(session):
    from chainrule.playground.image_protocol import image_models

    if "cnn" not in image_models():
        pytest.skip("no conv net registered (ConvNetClassifier, 'cnn')")
    before = json.dumps(session.state())
    with pytest.raises(ProtocolError, match=r"params.channels\[1\]: a block has 1 to 64 channels, got 0"):
        session.apply('{"type": "set", "model": "cnn", "params": {"channels": [8, 0]}}')
    assert session.apply({"type": "set", "model": "cnn"}) == "model"
    for _ in range(20):
        session.step()
    f = session.frame()
    assert (f["filters"]["kind"], f["filters"]["n"], f["filters"]["h"], f["filters"]["w"]) == ("filters", 8, 3, 3)
    names = [layer["name"] for layer in f["activations"]["layers"]]
    assert names == ["input image", "block 1", "block 2", "scores"]
    assert [layer["n"] for layer in f["activations"]["layers"][1:3]] == [8, 16]  # one map per channel
    session.apply({"type": "set", "view": {"gradients": True}})
    assert session.frame()["activations"]["layers"][1]["max"] > 0
    # four blocks on 8 x 8 digits: 8 -> 4 -> 2 -> 1, and the fourth block, on one pixel, does not pool (nn.ConvNet's
    # input_size), so that list fits too
    assert session.apply({"type": "set", "model": "cnn", "params": {"channels": [8, 8, 8, 8]}}) == "model"
    session.step()
    assert session.state()["error"] is None


def test_the_gradients_view_shows_the_first_layer_weights_gradient(session):
    for _ in range(5):
        session.step()
    weights = session.frame()["filters"]
    session.apply({"type": "set", "view": {"gradients": True}})
    grads = session.frame()["filters"]
    assert grads["gradient"] and (grads["kind"], grads["n"], grads["total"]) == ("units", 32, 64)
    assert grads["png"] != weights["png"] and "gradient" not in weights
    # unit 0's tile: d loss / d W[:, 0] of the inspected image, x_i * d loss / d h_0 (the input times the upstream
    # gradient of the unit's pre-activation): proportional to the image itself, or zero for a unit that is off
    x = session.images.batch(session.images.test[:1]).ravel()
    tile = png(grads)[:8, :8].astype(float).ravel() - 127.5
    assert np.all(np.abs(tile) < 1) or abs(np.corrcoef(tile, x)[0, 1]) > 0.95
