"""MLPClassifier: the estimator contract, learning, exact reproducibility (and equality with a hand-written training
loop), save/load, early stopping, the time budget, augmentation, and clear errors for bad input. Small synthetic data
only; scikit-learn's own checks are run too. (The time-budget callback and schedule are tested in
test_train_trainer.py, the flip-and-crop augmentation in test_data_augment.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule.nn.functional as F
from chainrule import classifiers, nn
from chainrule.classifiers.base import NotFittedError
from chainrule.classifiers.mlp import MLPClassifier
from chainrule.data import DataLoader, Standardize
from chainrule.data.splits import train_val_indices
from chainrule.optim import Adam
from chainrule.optim.schedules import make_schedule
from chainrule.tensor import Tensor
from chainrule.train import NonFiniteError
from conftest import make_blobs


pytestmark = pytest.mark.usefixtures("one_blas_thread")  # tests/conftest.py


def blobs(n=300, d=10, classes=3, spread=1.0, seed=0):
    """The suite's one blobs (``conftest.make_blobs``): float64 X (n, d) around ``classes`` random centres, labels y
    (n,)."""
    X, y = make_blobs(n_per_class=n // classes, d=d, classes=classes, seed=seed, spread=spread, scale=3.0)
    return X.astype(np.float64), y


def tiny_images(n=120, size=8, seed=0):
    """uint8 images (n, size, size, 3) whose class is the brightest colour channel."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.integers(0, 150, (n, size, size, 3))
    X[np.arange(n), :, :, y] += 100
    return X.astype(np.uint8), y


# ---- the contract ---------------------------------------------------------------------------------------------------


def test_init_only_stores_hyperparameters():
    m = MLPClassifier(hidden_sizes=(7, 5), lr=0.5, dropout=2.0, optimizer="nonsense")  # validated in fit, not here
    params = m.get_params()
    assert params["hidden_sizes"] == (7, 5) and params["lr"] == 0.5 and params["optimizer"] == "nonsense"
    assert not [k for k in vars(m) if k.endswith("_")]
    assert m.set_params(lr=0.1) is m and m.lr == 0.1
    assert "hidden_sizes=(7, 5)" in repr(m)


def test_fit_learns_blobs_and_sets_attributes():
    X, y = blobs()
    m = MLPClassifier(hidden_sizes=(32,), epochs=15, batch_size=32, random_state=0)
    assert m.fit(X, y) is m
    assert m.score(X, y) > 0.95
    assert m.n_features_in_ == 10 and list(m.classes_) == [0, 1, 2]
    assert len(m.loss_curve_) == m.n_iter_ == m.best_epoch_ == 15
    assert m.loss_curve_[-1] < 0.3 * m.loss_curve_[0]
    assert m.n_steps_ == 15 * math.ceil(300 / 32)
    assert m.validation_scores_ is None and m.stop_reason_ is None
    assert m.model_.sizes == (10, 32, 3) and m.model_[0].weight.dtype == np.float32


def test_string_labels_probabilities_and_images():
    X, y = tiny_images()
    labels = np.array(["red", "green", "blue"])[y]
    m = MLPClassifier(hidden_sizes=(16,), epochs=20, batch_size=20, random_state=0).fit(X, labels)
    assert list(m.classes_) == ["blue", "green", "red"]
    assert m.n_features_in_ == 192 and m.sample_shape_ == (8, 8, 3)
    pred = m.predict(X)
    assert pred.dtype == m.classes_.dtype and np.mean(pred == labels) > 0.9
    proba = m.predict_proba(X)
    assert proba.shape == (120, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(m.classes_[proba.argmax(axis=1)], pred)
    np.testing.assert_allclose(m.predict_log_proba(X), np.log(proba), atol=1e-6)
    np.testing.assert_array_equal(m.predict(X.reshape(120, -1)), pred)  # flattened images are the same samples


@pytest.mark.parametrize("kw", [
    dict(activation="tanh", norm="layer", optimizer="adamw", schedule="linear", warmup_epochs=1.5),
    dict(activation="maxout", dropout=0.2, optimizer="sgd", lr=0.05, schedule="constant", label_smoothing=0.1),
    dict(activation="gelu", norm="batch", preprocessing="center", optimizer="sgd", nesterov=False, lr=0.05),
    dict(preprocessing=None, hidden_sizes=(16, 16), weight_decay=0.0),
])
def test_configurations_learn(kw):
    X, y = blobs(seed=1)
    params = dict(hidden_sizes=(32,), epochs=15, batch_size=32, random_state=0) | kw
    assert MLPClassifier(**params).fit(X, y).score(X, y) > 0.9


def test_same_random_state_same_model_and_other_seed_differs():
    X, y = tiny_images()
    kw = dict(hidden_sizes=(16,), epochs=3, batch_size=16, dropout=0.3, norm="batch", augment=True,
              early_stopping=True, n_iter_no_change=5)
    a = MLPClassifier(random_state=3, **kw).fit(X, y)
    b = MLPClassifier(random_state=3, **kw).fit(X, y)
    c = MLPClassifier(random_state=4, **kw).fit(X, y)
    assert a.loss_curve_ == b.loss_curve_ and a.validation_scores_ == b.validation_scores_
    for key, value in a.model_.state_dict().items():
        np.testing.assert_array_equal(value, b.model_.state_dict()[key])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.loss_curve_ != c.loss_curve_


def test_fit_equals_a_hand_written_training_loop():
    """fit = standardise, MLP, Adam with weight decay on the weight matrices only, cosine schedule, shuffled
    minibatches: the same loop written out by hand gives bit-identical weights."""
    X, y = blobs(n=90, d=6)
    epochs, batch, lr, wd = 4, 16, 3e-3, 1e-2
    m = MLPClassifier(hidden_sizes=(8,), epochs=epochs, batch_size=batch, lr=lr, weight_decay=wd, random_state=7)
    m.fit(X, y)

    _split_seed, loader_seed, model_seed = np.random.default_rng(7).integers(0, 2**62, size=3)
    Xp = Standardize().fit(X.astype(np.float32)).transform(X.astype(np.float32)).astype(np.float32)
    model = nn.MLP([6, 8, 3], seed=int(model_seed))
    weights = [p for p in model.parameters() if p.ndim == 2]
    others = [p for p in model.parameters() if p.ndim < 2]
    opt = Adam([{"params": weights, "weight_decay": wd}, {"params": others, "weight_decay": 0.0}], lr=lr)
    loader = DataLoader(Xp, y, batch, seed=int(loader_seed))
    schedule = make_schedule("cosine", opt, total_steps=epochs * len(loader))
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(m.model_.state_dict()[key], value, err_msg=key)


# ---- early stopping, validation data, time budget -------------------------------------------------------------------


def test_early_stopping_stops_and_keeps_the_best_epoch():
    X, y = blobs(n=400, spread=3.0, seed=2)  # overlapping blobs: validation accuracy plateaus early
    m = MLPClassifier(hidden_sizes=(64,), epochs=300, batch_size=32, lr=1e-2, schedule="constant",
                      early_stopping=True, n_iter_no_change=3, random_state=0).fit(X, y)
    assert m.n_iter_ < 300 and "early stopping" in m.stop_reason_
    scores = m.validation_scores_
    assert len(scores) == m.n_iter_
    assert m.best_epoch_ == int(np.argmax(scores)) + 1
    assert m.n_iter_ - m.best_epoch_ == 3  # stopped after 3 epochs without improvement


def test_validation_data_monitors_and_early_stopping_restores_the_best_weights():
    X, y = blobs(n=600, spread=3.0, seed=2)
    X, y, Xv, yv = X[:400], y[:400], X[400:], y[400:]
    kw = dict(hidden_sizes=(64,), epochs=12, batch_size=32, lr=1e-2, schedule="constant", random_state=0)
    watched = MLPClassifier(**kw).fit(X, y, validation_data=(Xv, yv))
    assert len(watched.validation_scores_) == 12 and watched.best_epoch_ == 12
    assert watched.score(Xv, yv) == watched.validation_scores_[-1]  # no early stopping: the final weights
    best = MLPClassifier(early_stopping=True, n_iter_no_change=100, **kw).fit(X, y, validation_data=(Xv, yv))
    assert best.validation_scores_ == watched.validation_scores_
    assert best.score(Xv, yv) == max(best.validation_scores_)
    assert best.best_epoch_ == int(np.argmax(best.validation_scores_)) + 1


def test_time_budget_stops_training_mid_run():
    X, y = blobs(n=2000)
    m = MLPClassifier(hidden_sizes=(32,), epochs=10**6, batch_size=8, time_budget=0.3, random_state=0).fit(X, y)
    assert "time_budget of 0.3 s spent" in m.stop_reason_
    assert 0.3 <= m.train_time_ < 3.0
    assert len(m.loss_curve_) == m.n_iter_ >= 1
    assert m.score(X, y) > 0.9


def test_time_budget_with_early_stopping_keeps_the_best_validated_weights():
    """The trainer never validates an epoch the budget cuts short; the classifier scores it itself, appends the score
    to validation_scores_ and keeps whichever weights score best, naming their epoch in best_epoch_."""
    X, y = blobs(n=2000, spread=3.0, seed=2)
    m = MLPClassifier(hidden_sizes=(32,), epochs=10**6, batch_size=8, time_budget=0.3, early_stopping=True,
                      n_iter_no_change=10**6, schedule="constant", random_state=0).fit(X, y)
    assert "time_budget" in m.stop_reason_ and len(m.validation_scores_) == m.n_iter_ >= 1
    assert m.best_epoch_ == int(np.argmax(m.validation_scores_)) + 1
    split_seed = int(np.random.default_rng(0).integers(0, 2**62, size=3)[0])  # as fit draws it
    _, val_idx = train_val_indices(y, 200, stratify=True, seed=split_seed)  # the held-out 10%
    assert m.score(X[val_idx], y[val_idx]) == max(m.validation_scores_)


# ---- augmentation ---------------------------------------------------------------------------------------------------


def test_augmented_training_learns_a_flip_invariant_task():
    X, y = tiny_images(n=240)
    m = MLPClassifier(hidden_sizes=(16,), epochs=20, batch_size=20, augment=True, random_state=0).fit(X, y)
    assert m.score(X, y) > 0.9


def test_grayscale_images_augment_like_single_channel_ones():
    X, y = tiny_images(n=60)
    gray = X[..., 0]  # (N, H, W): flipped and cropped as they are, no channel axis needed
    kw = dict(hidden_sizes=(8,), epochs=2, batch_size=16, augment=True, random_state=0)
    a = MLPClassifier(**kw).fit(gray, y)
    b = MLPClassifier(**kw).fit(gray[..., None], y)
    assert a.loss_curve_ == b.loss_curve_


# ---- features and persistence ---------------------------------------------------------------------------------------


def test_hog_color_features_are_part_of_the_model():
    X, y = tiny_images(n=90, size=16)
    m = MLPClassifier(hidden_sizes=(16,), epochs=20, batch_size=15, features="hog_color", hog_cell=8,
                      random_state=0).fit(X, y)
    assert m.model_.sizes[0] == 2 * 2 * 9 + 10 and m.n_features_in_ == 16 * 16 * 3
    assert m.score(X, y) > 0.8  # the hue histogram sees the dominant channel


@pytest.mark.parametrize("kw", [
    dict(norm="batch", dropout=0.1, hidden_sizes=(8, 8)),
    dict(features="hog_color", hog_cell=4, preprocessing="center"),
    dict(preprocessing=None, early_stopping=True),
])
def test_save_load_round_trip(kw, tmp_path):
    X, y = tiny_images(n=60)
    labels = np.array(["r", "g", "b"])[y]
    m = MLPClassifier(epochs=3, batch_size=16, random_state=0, **kw).fit(X, labels)
    path = tmp_path / "mlp.npz"
    m.save(path)
    loaded = MLPClassifier.load(path)
    assert loaded.get_params() == {**m.get_params(), "hidden_sizes": list(m.hidden_sizes)}
    np.testing.assert_array_equal(loaded.classes_, m.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), m.predict(X))
    for name in ("loss_curve_", "validation_scores_", "best_epoch_", "n_iter_", "n_steps_", "stop_reason_"):
        assert getattr(loaded, name) == getattr(m, name), name
    assert loaded.model_.sizes == m.model_.sizes
    np.testing.assert_array_equal(classifiers.load(path).predict(X), m.predict(X))  # the generic loader


# ---- bad input ------------------------------------------------------------------------------------------------------


def test_predict_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        MLPClassifier().predict(np.zeros((2, 3)))


@pytest.mark.parametrize("kw, match", [
    (dict(hidden_sizes=(10, 0)), "hidden_sizes must be positive ints"),
    (dict(hidden_sizes="wide"), "hidden_sizes must be positive ints"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    (dict(optimizer="lbfgs"), r"optimizer must be one of \['sgd', 'adam', 'adamw', 'rmsprop'\], got 'lbfgs'"),
    (dict(schedule="step", time_budget=5.0), r"time_budget anneals schedule \['constant', 'cosine', 'linear'\]"),
    (dict(clip_grad_norm=0.0), "clip_grad_norm must be a finite number > 0"),
    (dict(lr=0.0), "lr must be a finite number > 0"),
    (dict(epochs=0), "epochs must be an integer >= 1"),
    (dict(validation_fraction=1.0), r"validation_fraction must be in \(0, 1\)"),
    (dict(time_budget=-1), "time_budget must be a finite number > 0"),
    (dict(optimizer="sgd", momentum=0.0), "nesterov=True needs momentum > 0"),
    (dict(augment=True), r"needs images \(N, H, W\[, C\]\), got samples of shape \(4,\)"),
    (dict(augment="flip", features="hog_color"), "use augment=False with features"),
    (dict(features="hog_color"), r"needs RGB images \(N, H, W, 3\)"),
])
def test_bad_hyperparameters_name_the_rule(kw, match):
    X, y = blobs(n=30, d=4)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**({"epochs": 1} | kw)).fit(X, y)


def test_bad_data_is_reported():
    X, y = blobs(n=30, d=4)
    m = MLPClassifier(epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 4"):
        m.predict(np.zeros((2, 5)))
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"contains NaN \(first at sample 3, feature 2\)"):
        MLPClassifier(epochs=1).fit(Xn, y)
    with pytest.raises(ValueError, match="y has 1 class"):
        MLPClassifier(epochs=1).fit(X, np.zeros(30))
    with pytest.raises(ValueError, match="Mix of label input types"):
        MLPClassifier(epochs=1).fit(X, np.array([1, "a"] * 15, dtype=object))
    with pytest.raises(ValueError, match=r"label 7 at index 0 is not one of the training classes"):
        MLPClassifier(epochs=1).fit(X, y, validation_data=(X[:2], [7, 0]))
    with pytest.raises(ValueError, match="leaving none to train on"):
        MLPClassifier(epochs=1, early_stopping=True, validation_fraction=0.99).fit(X[:2], y[:2])


def test_divergence_raises_a_clear_error():
    X, y = blobs(n=60, d=4)
    with pytest.raises(NonFiniteError, match="Lower the learning rate"):
        MLPClassifier(optimizer="sgd", lr=1e12, momentum=0.9, preprocessing=None, epochs=5).fit(X * 1e6, y)


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = blobs(n=60, d=4)
    MLPClassifier(epochs=3, verbose=True, early_stopping=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3") and "val_acc" in lines[0]

# scikit-learn's estimator checks run once per estimator, in tests/test_classifiers_sklearn.py.
