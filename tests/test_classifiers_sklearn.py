"""scikit-learn's own estimator checks (``parametrize_with_checks``) on every chainrule classifier.

Expected failures: none. Every check of scikit-learn 1.9 passes, including the unfitted-estimator check
(chainrule's NotFittedError subclasses scikit-learn's whenever scikit-learn is loaded) and the subset-invariance
checks (predictions are computed in float64). Skipped by scikit-learn itself, not by us: the pandas checks
(pandas is not a test dependency; chainrule does not record ``feature_names_in_``) and the array-API check
(needs SCIPY_ARRAY_API=1; the estimators take NumPy arrays).
"""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from chainrule.classifiers import KNearestNeighbor, LinearSVM, SoftmaxClassifier  # noqa: E402


with warnings.catch_warnings():
    # "does not inherit from sklearn.base.BaseEstimator": by design, scikit-learn is only a test dependency.
    warnings.filterwarnings("ignore", message="Estimator .* does not inherit from")
    checks = parametrize_with_checks([
        KNearestNeighbor(),
        KNearestNeighbor(k=3, metric="l1"),
        # fewer SGD steps than the default 1,500 keep the ~50 fits per estimator quick; the checks' blobs need few
        LinearSVM(iterations=300),
        SoftmaxClassifier(iterations=300),
    ])


@checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
