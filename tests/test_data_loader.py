"""DataLoader: epochs, determinism per (seed, epoch), resume, sampling with replacement."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule.data import Augment, DataLoader


def data(n=23, shape=(4, 4, 3), dtype=np.uint8):
    X = np.random.default_rng(0).integers(0, 256, size=(n, *shape)).astype(dtype)
    y = np.arange(n, dtype=np.int64) % 5
    return X, y


def ids(loader, epochs=1):
    """The labels of every batch, as lists (tests use y = sample index)."""
    return [yb.tolist() for _ in range(epochs) for _, yb in loader]


def test_epoch_covers_every_sample_once():
    X, _ = data()
    y = np.arange(len(X))
    loader = DataLoader(X, y, 5, seed=0)
    assert len(loader) == 5
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    seen = np.concatenate([yb for _, yb in batches])
    np.testing.assert_array_equal(np.sort(seen), y)
    xb, yb = batches[0]
    assert xb.dtype == np.float32 and xb.shape == (5, 4, 4, 3) and yb.dtype == np.int64
    np.testing.assert_array_equal(xb, X[yb].astype(np.float32))
    assert loader.epoch == 1 and loader.position == 0


def test_drop_last_and_len():
    X, y = data()
    assert len(DataLoader(X, y, 5, drop_last=True)) == 4
    assert [len(b) for _, b in DataLoader(X, y, 5, drop_last=True)] == [5] * 4
    with pytest.raises(ValueError, match="no batches"):
        DataLoader(X, y, 30, drop_last=True)


def test_same_seed_same_batches_per_epoch():
    X, _ = data()
    y = np.arange(len(X))
    a = DataLoader(X, y, 4, seed=7)
    b = DataLoader(X, y, 4, seed=7)
    ea0, ea1 = ids(a), ids(a)
    assert ea0 == ids(b) and ea1 == ids(b)
    assert ea0 != ea1  # a new order each epoch
    assert ids(DataLoader(X, y, 4, seed=8)) != ea0
    # The order of epoch e depends only on (seed, e), not on what was drawn before.
    c = DataLoader(X, y, 4, seed=7)
    c.set_epoch(1)
    assert ids(c) == ea1
    np.testing.assert_array_equal(np.concatenate(ea1), c.epoch_indices(1))


def test_resume_mid_epoch_continues_identically():
    X, y = data(n=31)
    aug = Augment(flip=True, crop_padding=2, brightness=0.3)
    run = DataLoader(X, y, 4, seed=3, augment=aug)
    reference = []
    for epoch in range(3):
        reference.extend((epoch, xb.copy(), yb.copy()) for xb, yb in run)

    loader = DataLoader(X, y, 4, seed=3, augment=aug)
    list(loader)  # epoch 0
    it = iter(loader)
    for _ in range(3):
        next(it)  # three batches of epoch 1 done, checkpoint taken after the third
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["position"] == 3

    resumed = DataLoader(X, y, 4, seed=999, augment=aug)  # the saved seed wins
    resumed.load_state_dict(state)
    got = [(1, xb, yb) for xb, yb in resumed] + [(2, xb, yb) for xb, yb in resumed]
    expected = reference[len(loader) + 3:]
    assert len(got) == len(expected)
    for (e1, x1, y1), (e2, x2, y2) in zip(got, expected):
        assert e1 == e2
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_state_at_end_of_epoch_points_to_next_epoch():
    X, y = data()
    loader = DataLoader(X, y, 5)
    for i, _ in enumerate(loader):
        if i == len(loader) - 1:
            state = loader.state_dict()
    assert state["epoch"] == 1 and state["position"] == 0
    resumed = DataLoader(X, y, 5)
    resumed.load_state_dict(state)
    assert ids(resumed) == ids(loader)


def test_load_state_dict_checks_compatibility():
    X, y = data()
    state = DataLoader(X, y, 5).state_dict()
    with pytest.raises(ValueError, match="batch_size=5.*batch_size=6"):
        DataLoader(X, y, 6).load_state_dict(state)
    with pytest.raises(ValueError, match="num_samples=23"):
        DataLoader(X[:10], y[:10], 5).load_state_dict(state)


def test_unshuffled_float32_batches_are_views():
    X, y = data(dtype=np.float32)
    batches = list(DataLoader(X, y, 10, shuffle=False))
    assert np.shares_memory(batches[0][0], X)
    np.testing.assert_array_equal(np.concatenate([b for b, _ in batches]), X)


def test_sampling_with_replacement():
    X, y = data(n=50)
    loader = DataLoader(X, y, 8, replacement=True, seed=2)
    assert len(loader) == 50 // 8
    first = ids(loader)
    assert len(first) == 6 and all(len(b) == 8 for b in first)
    again = DataLoader(X, y, 8, replacement=True, seed=2)
    assert ids(again) == first
    draws = np.concatenate([loader.epoch_indices(e).ravel() for e in range(20)])
    assert len(np.unique(draws)) == 50 and draws.max() < 50
    rows = [row for e in range(20) for row in loader.epoch_indices(e).tolist()]
    assert any(len(set(row)) < len(row) for row in rows)  # repeats within a batch happen
    with pytest.raises(ValueError, match="replacement"):
        DataLoader(X, y, 8, replacement=True, shuffle=False)
    assert len(DataLoader(X, y, 80, replacement=True)) == 1


def test_transform_and_augment_are_applied_in_order():
    X, y = data()
    seen = []

    def augment(xb, rng):
        assert isinstance(rng, np.random.Generator) and xb.dtype == np.uint8
        seen.append("augment")
        return xb

    def transform(xb):
        seen.append("transform")
        return xb.astype(np.float64) / 255.0
    xb, _ = next(iter(DataLoader(X, y, 4, transform=transform, augment=augment)))
    assert seen == ["augment", "transform"]
    assert xb.dtype == np.float32 and xb.max() <= 1.0


def test_bad_arguments():
    X, y = data()
    with pytest.raises(ValueError, match="one per sample"):
        DataLoader(X, y[:-1], 4)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(X, y, 0)
    with pytest.raises(ValueError, match="seed"):
        DataLoader(X, y, 4, seed=-1)
    assert DataLoader(X, y, 4, seed=None).seed >= 0
