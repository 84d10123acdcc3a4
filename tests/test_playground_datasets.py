"""The 2-D demo datasets of chainrule.data.toy (spiral, circles, XOR, blobs, moons) that the playground draws."""

import numpy as np
import pytest

from chainrule.data import TOY_2D, make_2d, make_blobs, make_circles, make_moons, make_spiral, make_xor


@pytest.mark.parametrize("name", list(TOY_2D))
def test_every_dataset_every_class_count_is_seeded_and_shaped(name):
    for classes in TOY_2D[name]:
        X, y = make_2d(name, 301, classes, 0.1, seed=3)
        assert X.shape == (301, 2) and X.dtype == np.float32 and y.dtype == np.int64
        counts = np.bincount(y, minlength=classes)
        assert counts.sum() == 301 and counts.max() - counts.min() <= 20 and len(counts) == classes
        assert np.abs(X).max() < 1.6  # inside (about) the plane the page shows
        X2, y2 = make_2d(name, 301, classes, 0.1, seed=3)
        np.testing.assert_array_equal(X, X2)
        np.testing.assert_array_equal(y, y2)
        assert not np.array_equal(make_2d(name, 301, classes, 0.1, seed=4)[0], X)


def test_spiral_with_n_points_in_all_matches_make_spiral():
    X, y = make_2d("spiral", 300, 3, 0.2, seed=0)
    X_ref, y_ref = make_spiral(100, 3, 0.2, seed=0)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    X, y = make_2d("spiral", 7, 3, 0.2, seed=0)  # 3 + 2 + 2 points: the first points of each arm
    np.testing.assert_array_equal(np.bincount(y), [3, 2, 2])


def test_geometry_of_each_set_without_noise():
    X, y = make_circles(400, noise=0.0, seed=0, factor=0.5)
    r = np.hypot(X[:, 0], X[:, 1])
    assert r[y == 0].max() <= 0.5 + 1e-6 and r[y == 1].min() >= 0.7 - 1e-6 and r.max() <= 1 + 1e-6
    X, y = make_xor(400, noise=0.0, seed=0)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(np.int64))
    assert np.abs(X).min() >= 0.05 - 1e-6
    X, y = make_blobs(3000, centers=3, noise=0.0, seed=0)
    means = np.stack([X[y == c].mean(axis=0) for c in range(3)])
    np.testing.assert_allclose(np.hypot(means[:, 0], means[:, 1]), 0.5, atol=0.02)
    assert X[y == 0].std(axis=0).mean() == pytest.approx(0.15, abs=0.01)
    X, y = make_moons(400, noise=0.0, seed=0)
    upper = X[y == 0] / 0.6 + [0.5, 0.25]  # back to scikit-learn's unit half circles
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-5)


def test_noise_moves_points_and_bad_arguments_say_what_is_allowed():
    a, _ = make_circles(200, noise=0.0, seed=1)
    b, _ = make_circles(200, noise=0.3, seed=1)
    assert np.abs(a - b).mean() > 0.1
    with pytest.raises(ValueError, match="unknown 2-D dataset 'ring'; expected one of spiral"):
        make_2d("ring")
    with pytest.raises(ValueError, match="circles has 2 classes, got classes=3"):
        make_2d("circles", 100, classes=3)
    with pytest.raises(ValueError, match="noise must be >= 0, got -1"):
        make_xor(10, noise=-1)
    with pytest.raises(ValueError, match="needs n >= 2 points"):
        make_moons(1)
    with pytest.raises(ValueError, match="noise must be >= 0, got nan"):
        make_blobs(10, noise=float("nan"))
