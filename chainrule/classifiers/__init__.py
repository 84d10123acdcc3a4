"""Classifiers as scikit-learn-style estimators: k-nearest neighbour, linear SVM and Softmax (CS231n lectures 2-3).

    from chainrule.classifiers import KNearestNeighbor, LinearSVM, SoftmaxClassifier
    knn = KNearestNeighbor(k=5, metric="l1").fit(X_train, y_train)     # uint8 images (N, H, W, C) or (N, D)
    knn.predict_many(X_val, ks=[1, 3, 5, 10, 20])                      # several k, one distance pass
    svm = LinearSVM(epochs=8, random_state=0).fit(X_train, y_train)
    svm.score(X_val, y_val); svm.save("svm.npz"); LinearSVM.load("svm.npz")

All follow scikit-learn's estimator contract (get_params / set_params / clone, fit returns self, learned attributes
end in ``_``) and pass its estimator checks (tests/test_classifiers_sklearn.py); see docs/classifiers.md.
"""

from chainrule.classifiers.base import BaseClassifier, DataConversionWarning, NotFittedError
from chainrule.classifiers.io import load
from chainrule.classifiers.knn import KNearestNeighbor
from chainrule.classifiers.linear import LinearClassifier, LinearSVM, SoftmaxClassifier

__all__ = [
    "BaseClassifier", "NotFittedError", "DataConversionWarning",
    "KNearestNeighbor", "LinearClassifier", "LinearSVM", "SoftmaxClassifier", "MLPClassifier", "load",
]


def __getattr__(name: str):
    # The MLP pulls in nn, train and features: load it on first use, not with every kNN or linear model.
    if name == "MLPClassifier":
        from chainrule.classifiers.mlp import MLPClassifier

        return MLPClassifier
    raise AttributeError(f"module 'chainrule.classifiers' has no attribute {name!r}")
