"""RandomSearchClassifier: lecture 3's random-search baseline as an estimator (what `chainrule compare` shows first)."""

import numpy as np
import pytest

from chainrule.classifiers import RandomSearchClassifier
from chainrule.classifiers.random_search import random_search


def test_random_search_baseline_prefers_lower_loss():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    W1, loss1 = random_search(X, y, 2, tries=1, rng=np.random.default_rng(1))
    W, loss = random_search(X, y, 2, tries=500, rng=np.random.default_rng(1))
    assert W.shape == (6, 2) and loss <= loss1
    Xb = np.hstack([X, np.ones((300, 1), np.float32)])
    s = Xb @ W
    direct = np.maximum(0, s - s[np.arange(300), y][:, None] + 1).sum(axis=1).mean() - 1
    assert direct == pytest.approx(loss, rel=1e-5)


def test_the_estimator_keeps_the_best_weights_reproducibly_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["a", "b", "c"]), 40)
    X = rng.standard_normal((120, 6)).astype(np.float32) + 3 * (y == "b")[:, None] - 3 * (y == "c")[:, None]
    est = RandomSearchClassifier(tries=300, random_state=5).fit(X, y)
    again = RandomSearchClassifier(tries=300, random_state=5).fit(X, y)
    np.testing.assert_array_equal(est.W_, again.W_)
    assert est.W_.shape == (6, 3) and est.b_.shape == (3,) and est.score(X, y) > 0.5
    assert RandomSearchClassifier(tries=1, random_state=5).fit(X, y).best_loss_ >= est.best_loss_
    assert est.n_parameters() == 21 and est.weight_images()[0] is est.W_
    P, what = est.probabilities(X[:4])
    np.testing.assert_allclose(P.sum(axis=1), 1.0) and "random weights" in what
    est.save(tmp_path / "r.npz")
    loaded = RandomSearchClassifier.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.best_loss_ == est.best_loss_
    with pytest.raises(ValueError, match="tries must be an integer >= 1, got 0"):
        RandomSearchClassifier(tries=0).fit(X, y)
