"""``partial_fit``: one epoch per call, model and optimizer state kept, hyperparameters read at every call."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import optim
from chainrule.classifiers import LinearSVM, SoftmaxClassifier
from chainrule.classifiers.mlp import MLPClassifier


@pytest.fixture
def data(blobs):
    X, y = blobs(n_per_class=30, d=4, classes=3, seed=0, scale=3.0)
    return X, y


def weights(est):
    if isinstance(est, MLPClassifier):
        return [p.data.copy() for p in est.model_.parameters()]
    return [est.W_.copy(), est.b_.copy()]


def _maker(cls, **defaults):
    return lambda **kw: cls(**{**defaults, **kw})


ESTIMATORS = {
    "mlp": _maker(MLPClassifier, hidden_sizes=(8,), batch_size=16, random_state=0),
    "mlp-linear": _maker(MLPClassifier, hidden_sizes=(), batch_size=16, random_state=0),
    "mlp-sgd-dropout": _maker(MLPClassifier, hidden_sizes=(8,), dropout=0.2, norm="batch", optimizer="sgd", lr=0.05,
                              batch_size=16, random_state=0),
    "svm": _maker(LinearSVM, batch_size=16, lr=1e-2, random_state=0),
    "softmax": _maker(SoftmaxClassifier, batch_size=16, lr=1e-2, optimizer="adam", random_state=0),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_epochs_of_partial_fit_are_fit_with_a_constant_rate(name, data):
    """E calls of partial_fit train exactly what fit trains in E epochs at a constant learning rate: the same seeds,
    batches, initial weights and optimizer steps."""
    X, y = data
    fitted = ESTIMATORS[name](epochs=3, schedule="constant").fit(X, y)
    stepped = ESTIMATORS[name]()
    for _ in range(3):
        assert stepped.partial_fit(X, y) is stepped
    for a, b in zip(weights(fitted), weights(stepped), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(stepped.loss_curve_, fitted.loss_curve_, rtol=1e-12)
    assert (stepped.n_iter_, stepped.n_steps_) == (fitted.n_iter_, fitted.n_steps_)
    assert len(stepped.loss_curve_) == 3
    np.testing.assert_array_equal(stepped.predict(X), fitted.predict(X))


@pytest.mark.parametrize("name", ["mlp", "svm"])
def test_learned_attributes_grow_with_every_call(name, data):
    X, y = data
    est = ESTIMATORS[name]()
    est.partial_fit(X, y)
    steps = est.n_steps_
    assert steps == (len(X) // 16 if name == "svm" else -(-len(X) // 16)) and est.n_iter_ in (1, steps)
    est.partial_fit(X, y)
    assert est.n_steps_ == 2 * steps and len(est.loss_curve_) == 2
    assert est.loss_curve_[1] < est.loss_curve_[0]


@pytest.mark.parametrize("name", ["mlp", "svm", "softmax"])
def test_classes_on_the_first_call_allow_missing_labels(name, data):
    X, y = data
    est = ESTIMATORS[name]()
    first = y != 2
    est.partial_fit(X[first], y[first], classes=[0, 1, 2])
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    est.partial_fit(X, y)  # label 2 now appears: fine, it was declared
    assert est.decision_function(X).shape == (len(X), 3) if name != "mlp" else est.predict_proba(X).shape == (90, 3)
    fresh = ESTIMATORS[name]()
    fresh.partial_fit(X[first], y[first])
    at = int(np.flatnonzero(y == 2)[0])
    with pytest.raises(ValueError, match=rf"label 2 at index {at} is not one of the training classes \[0, 1\]; pass "
                                         "every label in classes= on the first call"):
        fresh.partial_fit(X, y)
    with pytest.raises(ValueError, match="differs from the classes of the first call"):
        fresh.partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize("name, param", [("mlp-sgd-dropout", "lr"), ("svm", "lr")])
def test_set_params_lr_takes_effect_on_the_next_call(name, param, data):
    X, y = data
    est = ESTIMATORS[name](momentum=0.0) if name == "svm" else ESTIMATORS[name](momentum=0.0, nesterov=False)
    est.partial_fit(X, y)
    before = weights(est)
    est.set_params(**{param: 1e-30})  # a step this small cannot move float32 weights of this size
    est.partial_fit(X, y)
    for a, b in zip(before, weights(est)):
        np.testing.assert_array_equal(a[np.abs(a) > 1e-3], b[np.abs(a) > 1e-3])
    est.set_params(**{param: 0.05})
    est.partial_fit(X, y)
    assert not all(np.array_equal(a, b) for a, b in zip(before, weights(est)))


@pytest.mark.parametrize("name, param, values", [("mlp", "weight_decay", (0.0, 10.0)), ("svm", "reg", (0.0, 10.0)),
                                                 ("softmax", "batch_size", (16, 45)),
                                                 ("svm", "momentum", (0.0, 0.9))])
def test_hyperparameters_are_read_at_every_call(name, param, values, data):
    """Two estimators stepped alike diverge exactly when one of them gets another value for ``param``."""
    X, y = data
    a, b, c = ESTIMATORS[name](), ESTIMATORS[name](), ESTIMATORS[name]()
    for est in (a, b, c):
        est.partial_fit(X, y)
    a.set_params(**{param: values[0]})
    b.set_params(**{param: values[0]})
    c.set_params(**{param: values[1]})
    for est in (a, b, c):
        est.partial_fit(X, y)
    assert all(np.array_equal(u, v) for u, v in zip(weights(a), weights(b)))
    assert not all(np.array_equal(u, v) for u, v in zip(weights(a), weights(c)))
    if param == "batch_size":
        assert c.n_steps_ - a.n_steps_ == len(X) // 45 - len(X) // 16


@pytest.mark.parametrize("name", ["mlp", "softmax"])
def test_a_changed_optimizer_starts_a_fresh_optimizer_state(name, data):
    X, y = data
    est = ESTIMATORS[name](optimizer="sgd")
    est.partial_fit(X, y)
    sgd = est._partial.optimizer
    assert isinstance(sgd, optim.SGD)
    est.partial_fit(X, y)
    assert est._partial.optimizer is sgd  # kept between calls
    est.set_params(optimizer="adam", lr=1e-3)
    est.partial_fit(X, y)
    assert isinstance(est._partial.optimizer, optim.Adam) and est._partial.optimizer.state
    assert len(est.loss_curve_) == 3


def test_an_architecture_change_reinitialises_the_mlp(data):
    X, y = data
    est = ESTIMATORS["mlp"]()
    est.partial_fit(X, y)
    est.partial_fit(X, y)
    est.set_params(hidden_sizes=(5, 5))
    est.partial_fit(X, y)
    assert est.model_.sizes == (4, 5, 5, 3) and est.n_iter_ == 1 and len(est.loss_curve_) == 1
    est.set_params(hidden_sizes=())
    est.partial_fit(X, y)
    assert est.model_.sizes == (4, 3) and len(est.model_) == 1  # one Linear: a softmax classifier


def test_hidden_sizes_empty_is_a_linear_softmax_model(data):
    X, y = data
    est = MLPClassifier(hidden_sizes=(), epochs=30, batch_size=16, lr=0.01, random_state=0).fit(X, y)
    assert est.model_.sizes == (4, 3) and est.score(X, y) > 0.9
    assert est.get_params()["hidden_sizes"] == ()


@pytest.mark.parametrize("name", ["mlp", "svm"])
def test_partial_fit_continues_a_fit_and_checks_the_feature_count(name, data):
    X, y = data
    est = ESTIMATORS[name](epochs=2).fit(X, y)
    n = est.n_steps_
    est.partial_fit(X, y)
    assert est.n_steps_ > n and len(est.loss_curve_) == 3
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 4 features"):
        est.partial_fit(X[:, :3], y)


def test_a_loaded_model_trains_on(tmp_path, data):
    X, y = data
    est = ESTIMATORS["softmax"](epochs=2).fit(X, y)
    est.save(tmp_path / "m.npz")
    loaded = SoftmaxClassifier.load(tmp_path / "m.npz")
    W = loaded.W_.copy()
    loaded.partial_fit(X, y)
    assert loaded.n_steps_ == est.n_steps_ + len(X) // 16 and not np.array_equal(W, loaded.W_)
