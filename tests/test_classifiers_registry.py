"""The model registry (chainrule.classifiers.register / get_spec / model_names / spec_of) and the per-model facts
every registered estimator answers for the front ends."""

import subprocess
import sys

import numpy as np
import pytest

import chainrule.classifiers as classifiers
from chainrule.classifiers import BaseClassifier, get_spec, model_names, register, spec_of, unregister


class _Constant(BaseClassifier):
    """Predicts the most frequent training label (a model for the registry's tests)."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y):
        y_index = self._fit_labels(y, len(np.asarray(X)))
        self.n_features_in_, self.sample_shape_ = int(np.prod(np.shape(X)[1:])), tuple(np.shape(X)[1:])
        self.top_ = int(np.bincount(y_index).argmax())
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[self.top_])


@pytest.fixture
def constant():
    register("constant", _Constant, label="most frequent label", inputs=("vectors",))
    yield get_spec("constant")
    unregister("constant")


def test_the_built_in_models_are_registered_in_order():
    assert model_names()[:4] == ("knn", "svm", "softmax", "mlp")
    assert {s.class_name for s in classifiers.specs()} >= {"KNearestNeighbor", "LinearSVM", "SoftmaxClassifier",
                                                            "MLPClassifier"}
    assert get_spec("mlp").label == "MLP (two-layer net)"
    assert spec_of("LinearSVM").name == "svm" and spec_of(classifiers.KNearestNeighbor).name == "knn"


def test_a_registered_model_is_listed_built_and_found_by_its_estimator(constant):
    assert "constant" in model_names() and "constant" in model_names("vectors")
    assert "constant" not in model_names("points")
    est = constant.build(random_state=3, lr=0.1)  # parameters it does not take are dropped
    assert isinstance(est, _Constant) and est.random_state == 3
    assert spec_of(est) is constant and spec_of(_Constant) is constant
    est.fit(np.zeros((4, 2)), [1, 1, 0, 1])
    assert est.predict(np.zeros((2, 2))).tolist() == [1, 1]
    # the facts a front end asks for have defaults for any estimator
    assert est.n_parameters() == 0 and est.weight_images() is None and est.describe() == "_Constant"
    assert not est.has_training_curve and est.capped_to(1) == {}
    assert est.n_model_features() == 2


@pytest.mark.parametrize("args, kwargs, message", [
    (("knn", classifiers.KNearestNeighbor), {"label": "x"}, "registered already (KNearestNeighbor); pass replace"),
    (("Big Name", _Constant), {"label": "x"}, "a short lower-case word"),
    (("ok", object), {"label": "x"}, "BaseClassifier subclass"),
    (("ok", "no.colon.Class"), {"label": "x"}, "'module:Class'"),
    (("ok", _Constant), {"label": "x", "inputs": ("audio",)}, "inputs must be a non-empty subset"),
])
def test_register_refuses_bad_rows(args, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)")):
        register(*args, **kwargs)
    assert "ok" not in model_names()


def test_an_unknown_name_says_which_models_there_are():
    with pytest.raises(ValueError, match=r"unknown model 'mpl' \(did you mean 'mlp'\?\); the models are: knn, svm"):
        get_spec("mpl")
    with pytest.raises(ValueError, match="is not a registered model"):
        spec_of("Nope")


def test_listing_the_models_does_not_import_the_network_code():
    code = ("import sys, chainrule.classifiers as c; names = c.model_names(); "
            "print('chainrule.classifiers.mlp' in sys.modules, c.get_spec('mlp').class_name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "MLPClassifier"]


def test_per_model_facts_of_the_built_in_estimators(blobs_images):
    X, y = blobs_images
    knn = classifiers.KNearestNeighbor(k=3).fit(X, y)
    assert knn.n_parameters() == 0 and knn.weight_images() is None and knn.describe() == "kNN, k=3, l2"
    assert knn.capped_to(2) == {"k": 2} and knn.capped_to(3) == {}
    P, what = knn.probabilities(X[:5])
    assert P.shape == (5, 3) and what == "fraction of the k=3 nearest training samples in each class"

    svm = classifiers.LinearSVM(epochs=1, random_state=0).fit(X, y)
    W, is_linear = svm.weight_images()
    assert W is svm.W_ and is_linear and svm.n_parameters() == svm.W_.size + 3 and svm.has_training_curve
    assert svm.describe() == "linear SVM, reg 0.1" and svm.n_model_features() == X[0].size
    P, what = svm.probabilities(X[:5])
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert P.argmax(axis=1).tolist() == svm.predict(X[:5]).tolist() and "not calibrated" in what

    mlp = classifiers.MLPClassifier(hidden_sizes=(7,), epochs=1, random_state=0).fit(X, y)
    W, is_linear = mlp.weight_images()
    assert W.shape == (X[0].size, 7) and not is_linear
    assert mlp.n_parameters() == X[0].size * 7 + 7 + 7 * 3 + 3 and mlp.n_model_features() == X[0].size
    assert mlp.describe() == "MLP, hidden 7, weight_decay 0.0001"
    assert classifiers.MLPClassifier(hidden_sizes=(), epochs=1).fit(X, y).weight_images()[1] is True


@pytest.fixture
def blobs_images():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    X = (rng.integers(0, 60, (30, 4, 4, 3)) + 60 * y[:, None, None, None]).astype(np.uint8)
    return X, y
