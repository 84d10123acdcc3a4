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

from chainrule.backend import bf16_unavailable  # noqa: E402
from chainrule.classifiers import KNearestNeighbor, LinearSVM, MLPClassifier, SoftmaxClassifier  # noqa: E402


with warnings.catch_warnings():
    # "Estimator ... does not inherit from `sklearn.base.BaseEstimator`": scikit-learn's estimator checks (1.6+) test
    # isinstance(estimator, BaseEstimator), which only inheritance satisfies; by design scikit-learn is a test-only
    # dependency, so chainrule implements its protocol instead (see BaseClassifier and the test below).
    warnings.filterwarnings("ignore", message="Estimator .* does not inherit from")
    checks = parametrize_with_checks([
        KNearestNeighbor(),
        KNearestNeighbor(k=3, metric="l1"),
        # fewer SGD steps than the default 1,500 keep the ~50 fits per estimator quick; the checks' blobs need few
        LinearSVM(iterations=300),
        SoftmaxClassifier(iterations=300),
        # a small net and few epochs keep its ~50 fits quick; the checks' data sets are tiny
        MLPClassifier(hidden_sizes=(16,), epochs=20, batch_size=32, lr=1e-2),
        # bfloat16 products on oneDNN (where it is installed: the test extras install it on x86-64 Linux)
        *([MLPClassifier(hidden_sizes=(16,), epochs=20, batch_size=32, lr=1e-2, matmul_precision="bf16")]
          if not bf16_unavailable() else []),
    ])


@checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_scikit_learn_tools_use_the_protocol_without_warnings():
    """clone, tags, cross-validation, grid search and pipelines take chainrule's estimators silently: the warning
    filtered above comes from the estimator checks alone."""
    import numpy as np
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import get_tags

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        knn = clone(KNearestNeighbor(k=3))
        assert knn.get_params()["k"] == 3 and is_classifier(knn) and get_tags(knn).estimator_type == "classifier"
        assert len(cross_val_score(knn, X, y, cv=3)) == 3
        assert GridSearchCV(knn, {"k": [1, 3]}, cv=3).fit(X, y).best_params_["k"] in (1, 3)
        assert 0.0 <= make_pipeline(StandardScaler(), knn).fit(X, y).score(X, y) <= 1.0


def test_data_conversion_warning_is_scikit_learns_under_python_W_ignore() -> None:
    """scikit-learn's check_supervised_y_2d re-enables only *its* DataConversionWarning ("always" for that class):
    with every other warning ignored, chainrule's must be a subclass of it to be seen."""
    import subprocess
    import sys

    code = (
        "import warnings, numpy as np\n"
        "from sklearn.exceptions import DataConversionWarning as SK\n"
        "from sklearn.utils.estimator_checks import check_supervised_y_2d\n"
        "from chainrule.classifiers import DataConversionWarning, SoftmaxClassifier\n"
        "from chainrule.classifiers.base import data_conversion_warning\n"
        "assert issubclass(data_conversion_warning(), SK) and issubclass(data_conversion_warning(), "
        "DataConversionWarning)\n"
        "check_supervised_y_2d('SoftmaxClassifier', SoftmaxClassifier(iterations=50))\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
