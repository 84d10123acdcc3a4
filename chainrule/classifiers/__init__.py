"""Classifiers as scikit-learn-style estimators: k-nearest neighbour, linear SVM and Softmax (CS231n lectures 2-3).

    from chainrule.classifiers import KNearestNeighbor, LinearSVM, SoftmaxClassifier
    knn = KNearestNeighbor(k=5, metric="l1").fit(X_train, y_train)     # uint8 images (N, H, W, C) or (N, D)
    knn.predict_many(X_val, ks=[1, 3, 5, 10, 20])                      # several k, one distance pass
    svm = LinearSVM(epochs=8, random_state=0).fit(X_train, y_train)
    svm.score(X_val, y_val); svm.save("svm.npz"); LinearSVM.load("svm.npz")

All follow scikit-learn's estimator contract (get_params / set_params / clone, fit returns self, learned attributes
end in ``_``) and pass its estimator checks (tests/test_classifiers_sklearn.py); see docs/classifiers.md.

The model registry (``register``, ``get_spec``, ``model_names``, ``spec_of``: ``chainrule.classifiers.registry``)
is the one table of the models every front end offers; the rows below declare the built-in ones. A network model
is a leaf of ``NeuralNetClassifier`` (``chainrule.classifiers.network``). docs/adding-a-model.md shows both.
"""

from chainrule.classifiers.base import BaseClassifier, DataConversionWarning, NotFittedError
from chainrule.classifiers._training import RESUME_MAY_DIFFER, is_fit_checkpoint
from chainrule.classifiers.io import estimator_from_checkpoint, load
from chainrule.classifiers.knn import KNearestNeighbor
from chainrule.classifiers.linear import LinearSVM, SoftmaxClassifier
from chainrule.classifiers.linear_base import LinearClassifier
from chainrule.classifiers.random_search import RandomSearchClassifier
from chainrule.classifiers.registry import ModelSpec, get_spec, model_names, register, spec_of, specs, unregister

__all__ = [
    "BaseClassifier", "NotFittedError", "DataConversionWarning",
    "KNearestNeighbor", "LinearClassifier", "LinearSVM", "SoftmaxClassifier", "MLPClassifier", "NeuralNetClassifier",
    "RandomSearchClassifier",
    "ConvNetClassifier", "load", "estimator_from_checkpoint", "is_fit_checkpoint", "RESUME_MAY_DIFFER",
    "ModelSpec", "register", "unregister", "get_spec", "model_names", "specs", "spec_of",
]

# The models every front end offers (chainrule.classifiers.registry). The playground starts each with these
# parameters (small steps on a few hundred 2-D points).
_LINEAR_PLAYGROUND = {"reg": 0.001, "lr": 0.1, "batch_size": 10, "momentum": 0.9, "optimizer": "sgd"}
register("knn", KNearestNeighbor, label="k-nearest neighbour", inputs=("vectors", "images", "points"),
         playground={"k": 5, "metric": "l2"})
register("svm", LinearSVM, label="linear SVM", inputs=("vectors", "images", "points"), playground=_LINEAR_PLAYGROUND)
register("softmax", SoftmaxClassifier, label="softmax classifier", inputs=("vectors", "images", "points"),
         playground=_LINEAR_PLAYGROUND)
register("mlp", "chainrule.classifiers.mlp:MLPClassifier", label="MLP (two-layer net)",
         inputs=("vectors", "images", "points"), playground={"hidden_sizes": (8, 8), "activation": "relu", "weight_decay": 0.001, "lr": 0.01,
                     "optimizer": "adam", "momentum": 0.9, "nesterov": False, "batch_size": 10})
# the conv net's recipe is for 32 x 32 colour images and minutes of training: compare trains it when asked for
register("cnn", "chainrule.classifiers.cnn:ConvNetClassifier", label="conv net", inputs=("images",),
         in_compare=False)
_LAZY = {"MLPClassifier": "chainrule.classifiers.mlp", "NeuralNetClassifier": "chainrule.classifiers.network",
         "ConvNetClassifier": "chainrule.classifiers.cnn"}


def __getattr__(name: str):
    # The networks pull in nn, train and features: load them on first use, not with every kNN or linear model.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'chainrule.classifiers' has no attribute {name!r}")
