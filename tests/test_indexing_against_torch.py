"""Mixed int / slice / None / Ellipsis / array / bool indexing gives PyTorch's shapes, values and gradients."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chainrule import Tensor  # noqa: E402

SHAPE = (3, 4, 5)


def _entries(rng):
    """Index entries of every kind, as (chainrule form, torch form) pairs."""
    lists = [[0, 2], [1, 1, 0], [-1]]
    out = [(0, 0), (-1, -1), (1, 1), (slice(None), slice(None)), (slice(1, None), slice(1, None)),
           (slice(None, None, 2), slice(None, None, 2)), (None, None), (Ellipsis, Ellipsis), (True, True),
           (False, False), (np.int64(1), np.int64(1))]
    out += [(v, v) for v in lists]
    out += [(np.array([[0], [1]]), torch.tensor([[0], [1]])), (Tensor(np.array(0)), torch.tensor(0)),
            (np.array([True, False, True]), torch.tensor([True, False, True]))]
    return out


def _combos(n_keys: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    entries = _entries(rng)
    keys = []
    for length in (1, 2, 3):
        for combo in itertools.product(range(len(entries)), repeat=length):
            key = [entries[i] for i in combo]
            if sum(p[0] is Ellipsis for p in key) <= 1:  # PyTorch takes several; NumPy and chainrule refuse
                keys.append(key)
    picks = rng.choice(len(keys), size=n_keys, replace=False)
    return [keys[i] for i in picks]


def _torch_result(t, key):
    try:
        return t[key], None
    except (IndexError, RuntimeError, TypeError, ValueError) as e:
        return None, e


def test_mixed_indexing_matches_torch_shapes_values_and_gradients():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(SHAPE)
    checked = 0
    for pairs in _combos(1500):
        ours_key, torch_key = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        t = torch.tensor(a, requires_grad=True)
        expected, error = _torch_result(t, torch_key)
        x = Tensor(a.copy(), requires_grad=True)
        if error is not None:
            with pytest.raises((IndexError, ValueError, TypeError)):
                x[ours_key]
            continue
        got = x[ours_key]
        assert got.shape == tuple(expected.shape), (ours_key, got.shape, tuple(expected.shape))
        np.testing.assert_array_equal(got.data, expected.detach().numpy(), err_msg=str(ours_key))
        weights = rng.standard_normal(got.shape)
        (got * Tensor(weights)).sum().backward()
        (expected * torch.tensor(weights)).sum().backward()
        np.testing.assert_allclose(x.grad.data if hasattr(x.grad, "data") else x.grad, t.grad.numpy(),
                                   err_msg=str(ours_key))
        checked += 1
    assert checked > 800


def test_mixed_index_assignment_matches_torch():
    rng = np.random.default_rng(2)
    checked = 0
    for pairs in _combos(600, seed=3):
        ours_key, torch_key = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        a = rng.standard_normal(SHAPE)
        t = torch.tensor(a)
        expected, error = _torch_result(t, torch_key)
        if error is not None or len({tuple(map(float, np.ravel(expected.numpy())))}) == 0:
            continue
        value = rng.standard_normal(tuple(expected.shape)[-1:] if expected.ndim else ())
        if any(isinstance(v, list) and len(set(v)) < len(v) for v in ours_key):
            continue  # repeated targets: which write wins is unspecified in both libraries
        t[torch_key] = torch.tensor(value)
        x = Tensor(a.copy())
        x[ours_key] = value
        np.testing.assert_array_equal(x.data, t.numpy(), err_msg=str(ours_key))
        checked += 1
    assert checked > 300


def test_the_case_from_the_audit_and_second_derivatives():
    from chainrule.autograd import grad

    y = Tensor(np.arange(60.0).reshape(3, 4, 5), requires_grad=True)
    assert y[0, :, [1, 2]].shape == (4, 2)  # NumPy gives (2, 4)
    np.testing.assert_array_equal(y[0, :, [1, 2]].data, np.arange(60.0).reshape(3, 4, 5)[0][:, [1, 2]])
    (g,) = grad((y[0, :, [1, 2]] ** 2).sum(), y, create_graph=True)
    (gg,) = grad(g.sum(), y)
    expected = np.zeros((3, 4, 5))
    expected[0][:, [1, 2]] = 2.0
    np.testing.assert_array_equal(gg.data, expected)
