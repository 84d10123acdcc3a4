"""get_dataset specs, the toy datasets and the Dataset container."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from chainrule.data import (DataError, Dataset, get_dataset, load_digits, make_spiral,
                            spiral_dataset)


pytestmark = pytest.mark.usefixtures("isolated_cache")  # tests/conftest.py


def cs231n_spiral(n, k, noise, rng):
    """The loop from CS231n's notes, drawing noise from ``rng`` class by class."""
    X = np.zeros((n * k, 2))
    y = np.zeros(n * k, dtype=np.int64)
    for j in range(k):
        ix = range(n * j, n * (j + 1))
        r = np.linspace(0.0, 1, n)
        t = np.linspace(j * 4, (j + 1) * 4, n) + rng.standard_normal(n) * noise
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return X, y


def test_spiral_matches_cs231n_and_is_seeded():
    X, y = make_spiral(50, 4, 0.3, seed=9)
    X_ref, y_ref = cs231n_spiral(50, 4, 0.3, np.random.default_rng(9))
    np.testing.assert_allclose(X, X_ref, atol=1e-5)
    np.testing.assert_array_equal(y, y_ref)
    assert X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(make_spiral(50, 4, 0.3, seed=9)[0], X)
    assert not np.array_equal(make_spiral(50, 4, 0.3, seed=10)[0], X)
    with pytest.raises(ValueError, match="noise"):
        make_spiral(noise=-1)


def test_get_dataset_spiral_and_digits():
    ds = get_dataset("spiral")
    assert ds.X_train.shape == (300, 2) and ds.classes == ("0", "1", "2") and ds.X_test is None
    np.testing.assert_array_equal(ds.X_train, spiral_dataset().X_train)
    pytest.importorskip("sklearn")
    digits = get_dataset("digits")
    assert digits.X_train.shape == (1797, 8, 8, 1) and digits.X_train.dtype == np.float32
    assert digits.X_train.max() == 16 and np.bincount(digits.y_train).min() > 170
    assert digits.num_classes == 10


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        load_digits()


def test_unknown_and_malformed_specs_list_valid_forms():
    for spec in ("mnist", "cifar100", "spiral:abc", "folder"):
        with pytest.raises(ValueError, match=r"valid forms:(.|\n)*folder:PATH(.|\n)*digits"):
            get_dataset(spec)
    with pytest.raises(ValueError, match="empty PATH"):
        get_dataset("cifar10:")
    with pytest.raises(ValueError, match="image_size only applies"):
        get_dataset("spiral", image_size=32)
    with pytest.raises(ValueError, match="download=True only applies"):
        get_dataset("digits", download=True)


def test_missing_paths_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_dataset(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_dataset(f"cifar10:{tmp_path / 'nope'}")


def test_dataset_validates_and_reprs_compactly():
    X = np.zeros((3, 2, 2, 3), np.uint8)
    ds = Dataset(X, np.array([0, 1, 1]), None, None, ["a", "b"], name="t")
    assert "uint8[3, 2, 2, 3]" in repr(ds) and ds.classes == ("a", "b")
    with pytest.raises(DataError, match=r"expected labels in \[0, 2\), got 2 at index 1"):
        Dataset(X, np.array([0, 2, 1]), None, None, ["a", "b"])
    with pytest.raises(DataError, match="int64"):
        Dataset(X, np.array([0, 1, 1], np.int32), None, None, ["a", "b"])
    with pytest.raises(DataError, match="both"):
        Dataset(X, np.array([0, 1, 1]), X, None, ["a", "b"])
