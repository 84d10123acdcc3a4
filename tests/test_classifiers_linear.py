"""Linear SVM and Softmax: naive and vectorised losses agree and match numerical gradients; training through the
fused NumPy step equals training through the autograd graph; the estimators learn, predict and report."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import numerical_gradient, rel_error
from conftest import make_blobs
from chainrule.classifiers import LinearSVM, SoftmaxClassifier
from chainrule.classifiers.losses import (softmax_loss_naive, softmax_loss_vectorized, svm_loss_naive,
                                          svm_loss_vectorized)

PAIRS = {
    "svm": (svm_loss_naive, svm_loss_vectorized),
    "softmax": (softmax_loss_naive, softmax_loss_vectorized),
}


def problem(N=9, D=7, C=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((D, C)) * 0.5).astype(dtype)
    b = (rng.standard_normal(C) * 0.5).astype(dtype)
    X = rng.standard_normal((N, D)).astype(dtype)
    y = rng.integers(0, C, N)
    return W, b, X, y


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_naive_and_vectorized_losses_agree(name, reg):
    naive, vectorized = PAIRS[name]
    W, b, X, y = problem()
    l1, dW1, db1 = naive(W, b, X, y, reg)
    l2, dW2, db2 = vectorized(W, b, X, y, reg)
    assert l1 == pytest.approx(l2, rel=1e-12)
    assert rel_error(dW1, dW2) < 1e-10
    assert rel_error(db1, db2) < 1e-10


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("which", ["naive", "vectorized"])
def test_gradients_match_numerical_gradients(name, which):
    fn = PAIRS[name][0 if which == "naive" else 1]
    W, b, X, y = problem(seed=1)
    reg = 0.1
    _, dW, db = fn(W, b, X, y, reg)
    num_dW = numerical_gradient(lambda w: fn(w, b, X, y, reg)[0], W.copy())
    num_db = numerical_gradient(lambda v: fn(W, v, X, y, reg)[0], b.copy())
    # the hinge has kinks; with random scores no margin sits within h of one
    assert rel_error(dW, num_dW) < 1e-7
    assert rel_error(db, num_db) < 1e-7


def test_losses_at_small_random_weights_match_the_lecture():
    # CS231n's sanity checks: with W ~ 0, softmax loss ~ log(C) and SVM loss ~ (C - 1) * margin.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((500, 20))
    y = rng.integers(0, 10, 500)
    W = rng.standard_normal((20, 10)) * 1e-4
    b = np.zeros(10)
    assert softmax_loss_vectorized(W, b, X, y, 0.0)[0] == pytest.approx(np.log(10), rel=1e-3)
    assert svm_loss_vectorized(W, b, X, y, 0.0)[0] == pytest.approx(9.0, rel=1e-3)


def test_vectorized_losses_keep_float32():
    W, b, X, y = problem(dtype=np.float32)
    for fn in (svm_loss_vectorized, softmax_loss_vectorized):
        loss, dW, db = fn(W, b, X, y, 0.1)
        assert dW.dtype == np.float32 and db.dtype == np.float32 and isinstance(loss, float)


# ---- the estimators ----------------------------------------------------------------------------------------------


def blobs(n_per_class=40, d=10, classes=(0, 1, 2), seed=0, scale=3.0):
    """The suite's one blobs (``conftest.make_blobs``) with this file's defaults."""
    return make_blobs(n_per_class=n_per_class, d=d, classes=classes, seed=seed, scale=scale)


@pytest.mark.parametrize("cls", [LinearSVM, SoftmaxClassifier])
def test_numpy_and_autograd_engines_train_the_same_weights(cls):
    X, y = blobs()
    a = cls(iterations=60, batch_size=32, random_state=3).fit(X, y)
    b = cls(iterations=60, batch_size=32, random_state=3, engine="autograd").fit(X, y)
    np.testing.assert_allclose(a.loss_history_, b.loss_history_, rtol=1e-4)
    np.testing.assert_allclose(a.W_, b.W_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a.b_, b.b_, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cls", [LinearSVM, SoftmaxClassifier])
@pytest.mark.parametrize("engine", ["numpy", "autograd"])
def test_weight_decay_is_reg_times_two_the_one_l2_knob(cls, engine):
    """weight_decay (the MLP's and PyTorch's: gradient += wd * W) replaces reg when given, as reg = wd / 2."""
    X, y = blobs()
    a = cls(reg=5e-3, iterations=40, batch_size=32, random_state=3, engine=engine).fit(X, y)
    b = cls(reg=123.0, weight_decay=1e-2, iterations=40, batch_size=32, random_state=3, engine=engine).fit(X, y)
    np.testing.assert_array_equal(a.W_, b.W_)
    assert b.describe().endswith("reg 0.005")
    # the meaning: the penalty's gradient is weight_decay * W
    W, b0, Xp, yp = problem()
    wd = 0.3
    _, dW0, _ = svm_loss_vectorized(W, b0, Xp, yp, 0.0)
    _, dW, _ = svm_loss_vectorized(W, b0, Xp, yp, wd / 2)
    np.testing.assert_allclose(dW - dW0, wd * W, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0, got -1"):
        cls(weight_decay=-1).fit(X, y)


@pytest.mark.parametrize("cls", [LinearSVM, SoftmaxClassifier])
def test_fit_learns_and_exposes_the_learned_attributes(cls):
    X, y = blobs(classes=("ant", "bee", "cow"))
    model = cls(random_state=0)
    assert model.fit(X, y) is model
    assert model.score(X, y) > 0.95
    assert model.W_.shape == (10, 3) and model.W_.dtype == np.float32
    assert model.coef_.shape == (3, 10) and model.intercept_.shape == (3,)
    assert model.n_iter_ == 1500 and model.loss_history_.shape == (1500,)
    assert model.loss_history_[-50:].mean() < model.loss_history_[:50].mean()
    np.testing.assert_array_equal(model.classes_, ["ant", "bee", "cow"])
    scores = model.decision_function(X)
    assert scores.shape == (120, 3) and scores.dtype == np.float64
    np.testing.assert_array_equal(model.classes_[scores.argmax(1)], model.predict(X))


def test_binary_decision_function_is_a_margin():
    X, y = blobs(classes=(-1, 1))
    model = LinearSVM(random_state=0).fit(X, y)
    margin = model.decision_function(X)
    assert margin.shape == (80,)
    np.testing.assert_array_equal(np.where(margin > 0, 1, -1), model.predict(X))


def test_softmax_probabilities():
    X, y = blobs()
    model = SoftmaxClassifier(random_state=0).fit(X, y)
    P = model.predict_proba(X)
    assert P.shape == (120, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.classes_[P.argmax(1)], model.predict(X))
    assert not hasattr(LinearSVM(), "predict_proba")


def test_same_seed_same_model_and_epochs_override_iterations():
    X, y = blobs()
    a = SoftmaxClassifier(iterations=40, batch_size=16, random_state=7).fit(X, y)
    b = SoftmaxClassifier(iterations=40, batch_size=16, random_state=7).fit(X, y)
    np.testing.assert_array_equal(a.W_, b.W_)
    c = SoftmaxClassifier(iterations=40, batch_size=16, random_state=8).fit(X, y)
    assert not np.array_equal(a.W_, c.W_)
    d = SoftmaxClassifier(epochs=2.5, batch_size=16, random_state=7).fit(X, y)
    assert d.n_iter_ == round(2.5 * (120 // 16))


@pytest.mark.parametrize("optimizer, schedule", [("sgd", "constant"), ("sgd", "step"), ("sgd", "linear"),
                                                 ("adam", "cosine")])
def test_optimizers_and_schedules(optimizer, schedule):
    X, y = blobs(seed=4)
    lr = 1e-2 if optimizer == "adam" else 3e-3
    model = SoftmaxClassifier(optimizer=optimizer, schedule=schedule, lr=lr, iterations=300, random_state=0)
    assert model.fit(X, y).score(X, y) > 0.95


@pytest.mark.parametrize("preprocessing", [None, "center", "standardize"])
def test_preprocessing_is_learned_on_the_training_set(preprocessing):
    X, y = blobs(seed=5)
    X = X * 50 + 100  # far from standardised
    model = LinearSVM(preprocessing=preprocessing, lr=1e-6 if preprocessing is None else 3e-4, random_state=0)
    model.fit(X, y)
    if preprocessing is None:
        assert model.preprocessor_ is None
    else:
        np.testing.assert_allclose(model.preprocessor_.transform(X).mean(axis=0), 0.0, atol=1e-3)
    assert model.score(X, y) > 0.9


def test_constant_features_are_centred_not_blown_up():
    X, y = blobs(seed=6)
    X[:, 3] = 5.0
    model = SoftmaxClassifier(random_state=0).fit(X, y)
    X_test = X.copy()
    X_test[:, 3] = 5.5  # a constant training feature that moves at test time must not dominate the scores
    np.testing.assert_array_equal(model.predict(X_test), model.predict(X))


def test_images_in_templates_out():
    rng = np.random.default_rng(7)
    X = rng.integers(0, 256, (60, 4, 4, 3), dtype=np.uint8)
    y = np.arange(60) % 3
    X[y == 1, :, :, 0] = 255  # class 1 is red
    model = SoftmaxClassifier(random_state=0).fit(X, y)
    assert model.sample_shape_ == (4, 4, 3) and model.n_features_in_ == 48
    T = model.templates()
    assert T.shape == (3, 4, 4, 3) and T.dtype == np.float32
    assert T.min() >= 0 and T.max() <= 255
    assert T[1, :, :, 0].mean() > T[1, :, :, 1].mean()  # the red class's template is red


@pytest.mark.parametrize("preprocessing", [None, "center", "standardize"])
def test_flip_augmentation_mirrors_in_the_preprocessed_space(preprocessing):
    rng = np.random.default_rng(8)
    X = rng.integers(0, 256, (30, 4, 5, 3), dtype=np.uint8)
    y = np.arange(30) % 2
    model = SoftmaxClassifier(preprocessing=preprocessing, augment="flip", iterations=20, random_state=0).fit(X, y)
    perm, scale, shift = model._flip_map()
    prep = (lambda a: a.reshape(len(a), -1).astype(np.float64)) if preprocessing is None else (
        lambda a: model.preprocessor_.transform(a.reshape(len(a), -1)).astype(np.float64))
    mirrored = prep(X)[:, perm] * scale + shift
    np.testing.assert_allclose(mirrored, prep(X[:, :, ::-1, :]), rtol=1e-5, atol=1e-4)


def test_flip_augmentation_needs_images():
    X, y = blobs()
    with pytest.raises(ValueError, match=r"augment='flip' mirrors images, so X must be .*got samples of shape \(10,\)"):
        LinearSVM(augment="flip").fit(X, y)


def test_a_diverging_run_is_reported():
    X, y = blobs()
    with pytest.raises(FloatingPointError, match="lower lr"):
        SoftmaxClassifier(lr=1e30, preprocessing=None, random_state=0).fit(X * 1e20, y)


@pytest.mark.parametrize("params, message", [
    ({"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
    ({"reg": -1}, "reg must be a finite number >= 0, got -1"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ({"momentum": 1.0}, r"momentum must be in \[0, 1\), got 1.0"),
    ({"optimizer": "lbfgs"}, r"optimizer must be one of \['sgd', 'adam', 'adamw', 'rmsprop'\], got 'lbfgs'"),
    ({"schedule": "warm"}, "schedule must be one of"),
    ({"preprocessing": "whiten"}, "preprocessing must be one of"),
    ({"engine": "torch"}, "engine must be one of"),
    ({"augment": True}, r"augment must be one of \[False, 'flip'\], got True"),
    ({"epochs": 0}, "epochs must be a finite number > 0, got 0"),
    ({"iterations": 2.5}, "iterations must be an integer >= 1, got 2.5"),
])
def test_bad_hyperparameters_are_reported_at_fit(params, message):
    X, y = blobs()
    with pytest.raises(ValueError, match=message):
        SoftmaxClassifier(**params).fit(X, y)


# ---- hand-designed features (features="hog_color") ------------------------------------------------------------------


def striped_images(n=60, size=16, seed=9):
    """RGB images (n, size, size, 3) of 3 classes: vertical stripes, horizontal stripes, reddish noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.integers(60, 120, (n, size, size, 3)).astype(np.float64)
    X[y == 0, :, ::4] += 100.0   # bright columns: horizontal gradients
    X[y == 1, ::4, :] += 100.0   # bright rows: vertical gradients
    X[y == 2, :, :, 0] += 120.0  # red
    return np.clip(X, 0, 255).astype(np.uint8), y


@pytest.mark.parametrize("cls", [LinearSVM, SoftmaxClassifier])
def test_hog_color_features_are_extracted_then_standardised(cls):
    from chainrule.features import HogColorFeatures

    X, y = striped_images()
    model = cls(features="hog_color", iterations=200, random_state=0).fit(X, y)
    assert model.n_features_in_ == 16 * 16 * 3 and model.sample_shape_ == (16, 16, 3)
    assert model.W_.shape == (2 * 2 * 9 + 10, 3)
    assert isinstance(model.features_, HogColorFeatures) and model.features_.cell == 8
    assert model.score(X, y) > 0.95
    assert 0 < model.train_time_ <= model.fit_time_
    # The same as fitting on the features extracted by hand: features, then the usual standardisation and bias.
    by_hand = cls(iterations=200, random_state=0).fit(HogColorFeatures(cell=8).transform(X), y)
    np.testing.assert_array_equal(model.W_, by_hand.W_)
    np.testing.assert_array_equal(model.b_, by_hand.b_)
    np.testing.assert_array_equal(model.decision_function(X), by_hand.decision_function(
        HogColorFeatures(cell=8).transform(X)))
    # Features are computed image by image: scores and predictions do not depend on how the images are batched.
    np.testing.assert_allclose(model.decision_function(X),
                               np.concatenate([model.decision_function(X[:7]), model.decision_function(X[7:])]),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(model.predict(X), np.concatenate([model.predict(X[:7]), model.predict(X[7:])]))


def test_hog_color_features_save_and_load(tmp_path):
    X, y = striped_images(seed=10)
    y = np.array(["cat", "dog", "ship"])[y]
    model = SoftmaxClassifier(features="hog_color", hog_cell=4, preprocessing="center", iterations=100,
                              random_state=0).fit(X, y)
    assert model.W_.shape == (4 * 4 * 9 + 10, 3)
    model.save(tmp_path / "soft.npz")
    loaded = SoftmaxClassifier.load(tmp_path / "soft.npz")
    assert loaded.features == "hog_color" and loaded.hog_cell == 4
    assert loaded.features_.cell == 4 and loaded.features_.bins == 10
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert (loaded.n_iter_, loaded.fit_time_, loaded.train_time_) == (100, model.fit_time_, model.train_time_)
    # A model of raw inputs saves no features.
    raw = LinearSVM(iterations=20, random_state=0).fit(X, y)
    raw.save(tmp_path / "raw.npz")
    assert LinearSVM.load(tmp_path / "raw.npz").features_ is None


def test_a_saved_feature_model_with_mismatched_weights_is_rejected(tmp_path):
    X, y = striped_images()
    model = LinearSVM(features="hog_color", iterations=20, random_state=0).fit(X, y)
    model.W_ = model.W_[:-1]  # as if saved with another hog_cell
    model.save(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match=r"saved W_ \(45, 3\) / b_ \(3,\) do not match 46 features and 3 classes"):
        LinearSVM.load(tmp_path / "bad.npz")


def test_flip_with_features_extracts_the_mirror_images_features():
    from chainrule.classifiers.base import check_X
    from chainrule.features import HogColorFeatures

    X, y = striped_images(n=12)
    X[:, :, :5] = 0  # not mirror-symmetric
    model = LinearSVM(features="hog_color", augment="flip")
    rows = check_X(X, model, reset=True, keep_uint8=True)
    hp = model._validated()
    Xp = model._fit_inputs(rows, hp, model._fit_input_steps(rows, hp))  # (N, 2, F): each image, then its mirror
    feats = HogColorFeatures().transform
    np.testing.assert_allclose(Xp[:, 0], model.preprocessor_.transform(feats(X)), rtol=1e-6)
    np.testing.assert_allclose(Xp[:, 1], model.preprocessor_.transform(feats(X[:, :, ::-1])), rtol=1e-6)
    assert not np.allclose(Xp[:, 0], Xp[:, 1])
    fitted = LinearSVM(features="hog_color", augment="flip", iterations=100, random_state=0).fit(X, y)
    assert fitted.W_.shape == (46, 3) and fitted.score(X, y) > 0.9


@pytest.mark.parametrize("X, message", [
    (np.zeros((6, 48)), r"features='hog_color' needs RGB images \(N, H, W, 3\), got samples of shape \(48,\)"),
    (np.zeros((6, 16, 16)), r"needs RGB images \(N, H, W, 3\), got samples of shape \(16, 16\)"),
    (np.zeros((6, 16, 16, 4)), r"needs RGB images \(N, H, W, 3\), got samples of shape \(16, 16, 4\)"),
    (np.zeros((6, 4, 4, 3)), r"images of size 4x4 are smaller than one 8x8 cell"),
])
def test_hog_color_features_need_rgb_images(X, message):
    with pytest.raises(ValueError, match=message):
        LinearSVM(features="hog_color").fit(X, np.arange(6) % 2)


@pytest.mark.parametrize("params, message", [
    ({"features": "hog"}, r"features must be one of \[None, 'hog_color'\], got 'hog'"),
    ({"features": "hog_color", "hog_cell": 0}, "hog_cell must be an integer >= 1, got 0"),
    ({"features": "hog_color", "hog_cell": 2.0}, "hog_cell must be an integer >= 1, got 2.0"),
])
def test_bad_feature_hyperparameters_are_reported_at_fit(params, message):
    X, y = striped_images(n=6)
    with pytest.raises(ValueError, match=message):
        SoftmaxClassifier(**params).fit(X, y)


def test_feature_models_have_no_templates():
    X, y = striped_images(n=12)
    model = SoftmaxClassifier(features="hog_color", iterations=5).fit(X, y)
    with pytest.raises(ValueError, match="weighs 46 features \\(features='hog_color'\\), not pixels"):
        model.templates()


@pytest.mark.parametrize("cls", [LinearSVM, SoftmaxClassifier])
def test_feature_hyperparameters_are_params(cls):
    sklearn_base = pytest.importorskip("sklearn.base")
    model = cls(features="hog_color", hog_cell=4)
    params = model.get_params()
    assert params["features"] == "hog_color" and params["hog_cell"] == 4
    assert cls().get_params()["features"] is None and cls().get_params()["hog_cell"] == 8
    twin = sklearn_base.clone(model)
    assert twin.features == "hog_color" and twin.hog_cell == 4
    assert repr(model) == f"{cls.__name__}(features='hog_color', hog_cell=4)"
