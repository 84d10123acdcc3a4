"""chainrule.nn.functional layers and activations: gradchecks (float64), references, dtypes, shapes, errors."""

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.nn import reference


def T(rng, *shape, scale=1.0):
    return cr.Tensor(scale * rng.standard_normal(shape), requires_grad=True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


ACTIVATIONS = {
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "elu": lambda x: F.elu(x, 1.3),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_erf": lambda x: F.gelu(x, approximate="none"),
}


# ---- gradchecks -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck(name, rng):
    x = T(rng, 5, 7, scale=2.0)
    if name in ("relu", "leaky_relu", "elu"):  # keep clear of the kink, where the numerical derivative is off
        x.data[np.abs(x.data) < 1e-3] = 0.5
    assert cr.gradcheck(ACTIVATIONS[name], x)


def test_maxout_gradcheck(rng):
    x, w, b = T(rng, 6, 4), T(rng, 4, 3 * 5), T(rng, 15)
    assert cr.gradcheck(lambda x, w, b: F.maxout(x, w, b, pieces=3), x, w, b)
    assert cr.gradcheck(lambda x, w: F.maxout(x, w, None, pieces=3), x, w)


def test_linear_gradcheck(rng):
    assert cr.gradcheck(F.linear, T(rng, 5, 3), T(rng, 3, 4), T(rng, 4))
    assert cr.gradcheck(lambda x, w: F.linear(x, w), T(rng, 5, 3), T(rng, 3, 4))
    assert cr.gradcheck(F.linear, T(rng, 2, 3, 4), T(rng, 4, 2), T(rng, 2))  # (N, ..., D) inputs


def test_batch_norm_train_gradcheck(rng):
    x, g, b = T(rng, 8, 5, scale=3.0), T(rng, 5), T(rng, 5)
    assert cr.gradcheck(lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True), x, g, b)
    assert cr.gradcheck(lambda x: F.batch_norm(x, None, None, training=True), x)


def test_batch_norm_eval_gradcheck(rng):
    mean, var = rng.standard_normal(5), rng.random(5) + 0.5
    x, g, b = T(rng, 8, 5), T(rng, 5), T(rng, 5)
    assert cr.gradcheck(lambda x, g, b: F.batch_norm(x, mean, var, g, b, training=False), x, g, b)


def test_layer_norm_gradcheck(rng):
    x, g, b = T(rng, 4, 6, scale=2.0), T(rng, 6), T(rng, 6)
    assert cr.gradcheck(lambda x, g, b: F.layer_norm(x, 6, g, b), x, g, b)
    x3, g2, b2 = T(rng, 2, 3, 4), T(rng, 3, 4), T(rng, 3, 4)
    assert cr.gradcheck(lambda x, g, b: F.layer_norm(x, (3, 4), g, b), x3, g2, b2)
    assert cr.gradcheck(lambda x: F.layer_norm(x, 6), x)


def test_dropout_gradcheck_with_fixed_mask(rng):
    x = T(rng, 6, 5)
    # A fresh generator with the same seed on every call: the same mask for every evaluation of the check.
    assert cr.gradcheck(lambda x: F.dropout(x, 0.4, training=True, generator=np.random.default_rng(3)), x)


# ---- against the slow references ---------------------------------------------------------------------------------


def test_batch_norm_matches_staged_graph_backward(rng):
    x, gamma, beta, dout = rng.standard_normal((10, 4)), rng.standard_normal(4), rng.standard_normal(4), \
        rng.standard_normal((10, 4))
    ref_out, ref_dx, ref_dg, ref_db = reference.batchnorm_naive(x, gamma, beta, dout)
    xt, gt, bt = cr.Tensor(x, requires_grad=True), cr.Tensor(gamma, requires_grad=True), cr.Tensor(beta,
                                                                                                  requires_grad=True)
    out = F.batch_norm(xt, None, None, gt, bt, training=True)
    out.backward(dout)
    assert cr.rel_error(out.data, ref_out) < 1e-10
    assert cr.rel_error(xt.grad, ref_dx) < 1e-8
    assert cr.rel_error(gt.grad, ref_dg) < 1e-10
    assert cr.rel_error(bt.grad, ref_db) < 1e-10


def test_maxout_matches_per_piece_reference_and_routes_to_winner(rng):
    x, w, b = rng.standard_normal((7, 3)), rng.standard_normal((3, 8)), rng.standard_normal(8)
    out = F.maxout(x, w, b, pieces=4)
    np.testing.assert_allclose(out.data, reference.maxout_naive(x, w, b, 4), rtol=1e-12)
    # The gradient of each output unit goes to exactly one piece's bias: the winner's.
    bt = cr.Tensor(b, requires_grad=True)
    F.maxout(x, w, bt, pieces=4).sum().backward()
    z = (x @ w + b).reshape(7, 4, 2)
    winners = z.argmax(axis=1)
    expected = np.zeros((4, 2))
    for j in range(2):
        expected[:, j] = np.bincount(winners[:, j], minlength=4)
    np.testing.assert_array_equal(bt.grad, expected.reshape(-1))


def test_maxout_module_is_one_linear_map_per_piece(rng):
    layer = nn.Maxout(3, 2, pieces=2, seed=0)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (4,)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    w, b = layer.weight.data, layer.bias.data
    expected = np.maximum(x @ w[:, :2] + b[:2], x @ w[:, 2:] + b[2:])
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-6)


def test_gelu_tanh_is_close_to_exact_gelu(rng):
    x = np.linspace(-6, 6, 101)
    np.testing.assert_allclose(F.gelu(x, "tanh").data, F.gelu(x).data, atol=1e-3)


def test_activations_handle_extreme_inputs_without_warnings():
    x = np.array([-1e30, -1e4, -50.0, 0.0, 50.0, 1e4, 1e30], dtype=np.float32)
    xt = cr.Tensor(x, requires_grad=True)
    with np.errstate(all="raise"):
        for name, fn in ACTIVATIONS.items():
            xt.grad = None
            out = fn(xt)
            out.sum().backward()
            assert np.all(np.isfinite(out.data)), name
            assert np.all(np.isfinite(xt.grad)), name
    np.testing.assert_array_equal(F.gelu(x, "tanh").data[[0, -1]], np.array([0.0, 1e30], np.float32))
    np.testing.assert_array_equal(F.gelu(x).data[[0, -1]], np.array([0.0, 1e30], np.float32))
    np.testing.assert_allclose(F.elu(x).data[0], -1.0)


# ---- dtypes ------------------------------------------------------------------------------------------------------


FLOAT32_OPS = {
    **{name: (fn, 1) for name, fn in ACTIVATIONS.items()},
    "linear": (lambda x, w, b: F.linear(x, w, b), 3),
    "maxout": (lambda x, w, b: F.maxout(x, w, b, pieces=2), 3),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, np.zeros(4, np.float32), np.ones(4, np.float32), w, b,
                                                training=True), 3),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, np.zeros(4, np.float32), np.ones(4, np.float32), w, b), 3),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 4, w, b), 3),
    "dropout": (lambda x: F.dropout(x, 0.5, generator=0), 1),
}


@pytest.mark.parametrize("name", sorted(FLOAT32_OPS))
def test_float32_stays_float32_in_forward_and_backward(name, rng):
    fn, nargs = FLOAT32_OPS[name]
    shapes = {1: [(6, 4)], 3: [(6, 4), (4, 4), (4,)]}[nargs]
    if name == "maxout":
        shapes = [(6, 4), (4, 8), (8,)]
    elif name in ("batch_norm", "batch_norm_eval", "layer_norm"):
        shapes = [(6, 4), (4,), (4,)]
    args = [cr.Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in shapes]
    out = fn(*args)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, dtype=np.float32))
    for a in args:
        assert a.grad is not None and a.grad.dtype == np.float32, name


def test_linear_refuses_mixed_dtypes_instead_of_upcasting(rng):
    layer = nn.Linear(3, 2, seed=0)
    with pytest.raises(TypeError, match=r"input dtype float64 does not match weight dtype float32"):
        layer(rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match=r"has 5 features but the weight \(3, 2\) expects 3"):
        layer(np.zeros((4, 5), np.float32))


def test_linear_skips_input_gradient_for_constant_input(rng):
    layer = nn.Linear(3, 2, seed=0)
    out = layer(rng.standard_normal((4, 3)).astype(np.float32))
    assert out._ctx.needs_input_grad == (False, True, True)
    out.sum().backward()
    assert layer.weight.grad.shape == (3, 2) and layer.bias.grad.shape == (2,)
    np.testing.assert_allclose(layer.bias.grad, [4, 4])


# ---- dropout -----------------------------------------------------------------------------------------------------


def test_dropout_is_inverted_and_keeps_the_mean():
    x = np.ones((400, 500), dtype=np.float32)
    out = F.dropout(x, 0.3, generator=1).data
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.01


def test_dropout_edge_probabilities_and_eval():
    x = np.ones((3, 4), dtype=np.float32)
    assert np.all(F.dropout(x, 1.0, generator=0).data == 0)
    np.testing.assert_array_equal(F.dropout(x, 0.0, generator=0).data, x)
    np.testing.assert_array_equal(F.dropout(x, 0.9, training=False).data, x)
    with pytest.raises(ValueError, match=r"p in \[0, 1\], got 1.5"):
        F.dropout(x, 1.5)


def test_dropout_module_seeded_reproducible_and_resumable():
    x = np.ones((50, 20), dtype=np.float32)
    a, b = nn.Dropout(0.5, seed=7), nn.Dropout(0.5, seed=7)
    np.testing.assert_array_equal(a(x).data, b(x).data)
    state = a.rng_state()
    first = a(x).data
    assert not np.array_equal(first, a(x).data)  # the stream moves on
    a.set_rng_state(state)
    np.testing.assert_array_equal(a(x).data, first)
    a.eval()
    assert a(x) is x


def test_dropout_gradient_uses_the_forward_mask():
    x = cr.Tensor(np.ones((10, 10), dtype=np.float32), requires_grad=True)
    out = F.dropout(x, 0.5, generator=0)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, out.data)  # d(sum(x * mask))/dx = mask = out for x = 1


# ---- normalization -----------------------------------------------------------------------------------------------


def test_batchnorm1d_train_normalises_and_updates_running_stats(rng):
    bn = nn.BatchNorm1d(3, momentum=0.1)
    x = (rng.standard_normal((64, 3)) * [1, 2, 3] + [5, -1, 0]).astype(np.float32)
    out = bn(x)
    np.testing.assert_allclose(out.data.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out.data.std(axis=0), 1, atol=1e-3)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=0, ddof=1), rtol=1e-5)
    assert bn.running_mean.dtype == np.float32 and int(bn.num_batches_tracked) == 1
    bn.eval()
    before = bn.running_mean.copy()
    expected = (x - bn.running_mean) / np.sqrt(bn.running_var + 1e-5)
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean, before)  # eval never updates


def test_batchnorm1d_cumulative_average_and_no_tracking(rng):
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [rng.standard_normal((8, 2)).astype(np.float32) + k for k in range(3)]
    for b in batches:
        bn(b)
    np.testing.assert_allclose(bn.running_mean, np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-5)
    free = nn.BatchNorm1d(2, track_running_stats=False).eval()
    assert "running_mean" not in free.state_dict()
    np.testing.assert_allclose(free(batches[0]).data.mean(axis=0), 0, atol=1e-5)  # batch stats even in eval


def test_batchnorm_errors():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(np.zeros((1, 3), np.float32))
    assert int(bn.num_batches_tracked) == 0
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected input of shape \(N, C\) or \(N, C, L\), got "
                                         r"\(2, 3, 4, 5\)"):
        bn(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input of shape \(N, C, H, W\), got \(2, 3\)"):
        nn.BatchNorm2d(3)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C\) or \(N, C, H, W\), got \(3,\)"):
        F.batch_norm(np.zeros(3), None, None, training=True)
    with pytest.raises(ValueError, match=r"expected weight of shape \(3,\)"):
        F.batch_norm(np.zeros((4, 3)), None, None, np.ones(2), training=True)
    with pytest.raises(TypeError, match="input dtype float32 does not match running_mean dtype float64"):
        F.batch_norm(np.zeros((4, 3), np.float32), np.zeros(3), np.ones(3))


def test_layernorm_normalises_each_sample(rng):
    ln = nn.LayerNorm(5)
    x = (rng.standard_normal((4, 5)) * 3 + 2).astype(np.float32)
    out = ln(x).data
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=1), 1, atol=1e-3)
    with pytest.raises(ValueError, match="does not end in normalized_shape"):
        ln(np.zeros((4, 6), np.float32))
    with pytest.raises(TypeError, match="input dtype float64 does not match weight dtype float32"):
        ln(np.zeros((4, 5)))


def test_activation_modules_match_functions(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    pairs = [
        (nn.Sigmoid(), F.sigmoid(x)), (nn.Tanh(), F.tanh(x)), (nn.ReLU(), F.relu(x)),
        (nn.LeakyReLU(0.1), F.leaky_relu(x, 0.1)), (nn.ELU(0.5), F.elu(x, 0.5)),
        (nn.GELU(), F.gelu(x)), (nn.GELU("tanh"), F.gelu(x, "tanh")), (nn.Identity(), cr.Tensor(x)),
    ]
    for module, expected in pairs:
        np.testing.assert_array_equal(cr.Tensor(module(x)).data, expected.data)
    np.testing.assert_allclose(F.leaky_relu(np.array([-2.0, 3.0]), 0.1).data, [-0.2, 3.0])
    with pytest.raises(ValueError, match="approximate='none' or 'tanh'"):
        F.gelu(x, "erf")


def test_gelu_without_scipy_falls_back_to_math_erf(monkeypatch, rng):
    from chainrule.nn._functions import activation

    x = rng.standard_normal((3, 4)).astype(np.float32)
    expected = F.gelu(x).data
    monkeypatch.setattr(activation, "_ERF", None)
    monkeypatch.setitem(__import__("sys").modules, "scipy.special", None)  # makes the import fail
    got = F.gelu(x).data
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)
