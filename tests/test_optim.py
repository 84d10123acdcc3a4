"""Tests for chainrule.optim: update rules against their equations and torch.optim, state, checkpoints, clipping."""

from __future__ import annotations

import itertools
import json
import math
import tracemalloc

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim import SGD, Adam, AdamW, Optimizer, RMSProp, clip_grad_norm, clip_grad_value


def param(a, dtype=np.float64) -> cr.Tensor:
    return cr.Tensor(np.array(a, dtype=dtype), requires_grad=True)


def set_grads(params, grads) -> None:
    for p, g in zip(params, grads):
        p.grad = None if g is None else np.array(g, dtype=p.data.dtype)


# ---- the quadratic test problem, with gradients written out in NumPy ---------------------------------------

RNG = np.random.default_rng(1234)
X = RNG.standard_normal((20, 5))
Y = RNG.standard_normal((20, 3))
INIT = [RNG.standard_normal((5, 3)), RNG.standard_normal(3), RNG.standard_normal((2, 2))]


def quad_grads(arrays, t):
    """Gradients of mean 0.5||X W + c - Y||^2 + 0.5||z - 1||^2 at step t; z gets no grad every third step."""
    W, c, z = arrays
    R = X @ W + c - Y
    gz = None if t % 3 == 2 else z - 1.0
    return [X.T @ R / len(X), R.mean(0), gz]


def run_ours(make_opt, steps, dtype=np.float64, init=INIT):
    params = [param(a, dtype) for a in init]
    opt = make_opt(params)
    traj = []
    for t in range(steps):
        set_grads(params, quad_grads([p.data for p in params], t))
        opt.step()
        traj.append([p.data.copy() for p in params])
    return params, opt, traj


def run_torch(make_opt, steps, dtype=np.float64, init=INIT):
    torch = pytest.importorskip("torch")
    params = [torch.tensor(a.astype(dtype), requires_grad=True) for a in init]
    opt = make_opt(params)
    traj = []
    for t in range(steps):
        with torch.no_grad():
            grads = quad_grads([p.detach().numpy() for p in params], t)
        for p, g in zip(params, grads):
            p.grad = None if g is None else torch.from_numpy(np.array(g, dtype=dtype))
        opt.step()
        traj.append([p.detach().numpy().copy() for p in params])
    return traj


def assert_same_trajectory(ours, theirs, rtol, atol):
    for t, (a, b) in enumerate(zip(ours, theirs)):
        for k, (x, y) in enumerate(zip(a, b)):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"step {t + 1}, parameter {k}")


# ---- update rules against their written-out equations ------------------------------------------------------

G1 = np.array([0.5, -2.0, 3.0])
G2 = np.array([-1.0, 0.25, 2.0])
G3 = np.array([2.0, 1.0, -0.5])
X0 = np.array([1.0, -1.0, 0.5])


def three_steps(opt_cls, **kw):
    p = param(X0)
    opt = opt_cls([p], **kw)
    out = []
    for g in (G1, G2, G3):
        p.grad = g.copy()
        opt.step()
        out.append(p.data.copy())
    return out


def test_sgd_plain_step():
    x1, x2, _ = three_steps(SGD, lr=0.1)
    np.testing.assert_allclose(x1, X0 - 0.1 * G1)
    np.testing.assert_allclose(x2, X0 - 0.1 * G1 - 0.1 * G2)


def test_sgd_momentum_matches_cs231n_velocity_form():
    lr, mu = 0.1, 0.9
    x, v = X0.copy(), np.zeros(3)
    expected = []
    for g in (G1, G2, G3):
        v = mu * v - lr * g  # CS231n: v = mu * v - learning_rate * dx; x += v
        x = x + v
        expected.append(x)
    np.testing.assert_allclose(three_steps(SGD, lr=lr, momentum=mu), expected, rtol=1e-12)


def test_sgd_dampening_nesterov_weight_decay_equations():
    lr, mu, d, wd = 0.1, 0.9, 0.3, 0.01
    # dampening: b1 = g1 (no dampening on the first step), b2 = mu b1 + (1 - d) g2
    x1, x2, _ = three_steps(SGD, lr=lr, momentum=mu, dampening=d)
    np.testing.assert_allclose(x1, X0 - lr * G1)
    np.testing.assert_allclose(x2, x1 - lr * (mu * G1 + (1 - d) * G2))
    # nesterov: x <- x - lr (g + mu b)
    x1, x2, _ = three_steps(SGD, lr=lr, momentum=mu, nesterov=True)
    np.testing.assert_allclose(x1, X0 - lr * (G1 + mu * G1))
    b2 = mu * G1 + G2
    np.testing.assert_allclose(x2, x1 - lr * (G2 + mu * b2))
    # weight decay adds wd * x to the gradient
    x1, x2, _ = three_steps(SGD, lr=lr, weight_decay=wd)
    np.testing.assert_allclose(x1, X0 - lr * (G1 + wd * X0))
    np.testing.assert_allclose(x2, x1 - lr * (G2 + wd * x1))


def test_rmsprop_matches_cs231n_equations():
    lr, a, eps = 0.01, 0.9, 1e-8
    x, cache = X0.copy(), np.zeros(3)
    expected = []
    for g in (G1, G2, G3):
        cache = a * cache + (1 - a) * g**2
        x = x - lr * g / (np.sqrt(cache) + eps)
        expected.append(x)
    np.testing.assert_allclose(three_steps(RMSProp, lr=lr, alpha=a, eps=eps), expected, rtol=1e-12)
    # first step: x - lr g / (sqrt(1 - alpha) |g| + eps)
    np.testing.assert_allclose(expected[0], X0 - lr * G1 / (np.sqrt(1 - a) * np.abs(G1) + eps))


def test_rmsprop_centered_momentum_equations():
    lr, a, eps, mu, wd = 0.01, 0.9, 1e-6, 0.5, 0.1
    x, v, avg, b = X0.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    expected = []
    for g in (G1, G2, G3):
        g = g + wd * x
        v = a * v + (1 - a) * g**2
        avg = a * avg + (1 - a) * g
        b = mu * b + g / (np.sqrt(v - avg**2) + eps)
        x = x - lr * b
        expected.append(x)
    got = three_steps(RMSProp, lr=lr, alpha=a, eps=eps, momentum=mu, centered=True, weight_decay=wd)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def adam_reference(lr, b1, b2, eps, wd=0.0, amsgrad=False, decoupled=False):
    x, m, v, vmax = X0.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    out = []
    for t, g in enumerate((G1, G2, G3), start=1):
        if decoupled:
            x = x * (1 - lr * wd)
        else:
            g = g + wd * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        vmax = np.maximum(vmax, v)
        mt = m / (1 - b1**t)  # CS231n: bias correction
        vt = (vmax if amsgrad else v) / (1 - b2**t)
        x = x - lr * mt / (np.sqrt(vt) + eps)
        out.append(x)
    return out


def test_adam_first_step_is_lr_times_sign():
    (x1, _, _) = three_steps(Adam, lr=0.01)
    np.testing.assert_allclose(x1, X0 - 0.01 * np.sign(G1), rtol=1e-7)


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_matches_bias_corrected_equations(amsgrad, wd):
    expected = adam_reference(0.01, 0.8, 0.9, 1e-8, wd=wd, amsgrad=amsgrad)
    got = three_steps(Adam, lr=0.01, betas=(0.8, 0.9), eps=1e-8, weight_decay=wd, amsgrad=amsgrad)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_amsgrad_differs_from_adam_when_second_moment_shrinks():
    # G3 is small in the first coordinate... check that the max actually bites somewhere in these steps
    a = adam_reference(0.01, 0.8, 0.5, 1e-8, amsgrad=False)
    b = adam_reference(0.01, 0.8, 0.5, 1e-8, amsgrad=True)
    assert not np.allclose(a[2], b[2])
    got = three_steps(Adam, lr=0.01, betas=(0.8, 0.5), amsgrad=True)
    np.testing.assert_allclose(got, b, rtol=1e-12)


def test_adamw_decoupled_decay_equations():
    expected = adam_reference(0.01, 0.9, 0.999, 1e-8, wd=0.1, decoupled=True)
    got = three_steps(AdamW, lr=0.01, weight_decay=0.1)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # decoupled: with a zero gradient the parameter only shrinks by (1 - lr wd)
    p = param(X0)
    p.grad = np.zeros(3)
    AdamW([p], lr=0.01, weight_decay=0.1).step()
    np.testing.assert_allclose(p.data, X0 * (1 - 0.01 * 0.1))


# ---- agreement with torch.optim over 100 steps -------------------------------------------------------------


def _options(space):
    keys = list(space)
    for values in itertools.product(*space.values()):
        yield dict(zip(keys, values))


SGD_CASES = [
    o for o in _options(
        dict(momentum=[0.0, 0.9], dampening=[0.0, 0.5], nesterov=[False, True], weight_decay=[0.0, 0.1]))
    if not (o["nesterov"] and (o["momentum"] == 0 or o["dampening"] != 0))
]
RMSPROP_CASES = list(
    _options(dict(alpha=[0.99, 0.9], momentum=[0.0, 0.9], centered=[False, True], weight_decay=[0.0, 0.1]))
)
ADAM_CASES = list(_options(dict(betas=[(0.9, 0.999), (0.5, 0.9)], weight_decay=[0.0, 0.1], amsgrad=[False, True])))
ADAMW_CASES = list(_options(dict(weight_decay=[0.0, 0.01, 0.1], amsgrad=[False, True])))

TORCH_NAMES = {SGD: "SGD", RMSProp: "RMSprop", Adam: "Adam", AdamW: "AdamW"}
# RMSProp with alpha=0.9 and lr=0.01 is normalised gradient descent near the optimum, a chaotic map that blows
# last-bit rounding differences up to O(1) within 100 steps; at lr=0.003 the runs stay in the regular regime.
LRS = {SGD: 0.1, RMSProp: 0.003, Adam: 0.05, AdamW: 0.05}
CASES = (
    [(SGD, o) for o in SGD_CASES] + [(RMSProp, o) for o in RMSPROP_CASES]
    + [(Adam, o) for o in ADAM_CASES] + [(AdamW, o) for o in ADAMW_CASES]
)


def _case_id(case):
    cls, opts = case
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in opts.items())


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_agrees_with_torch_float64(case):
    torch = pytest.importorskip("torch")
    cls, opts = case
    lr = LRS[cls]
    ours = run_ours(lambda ps: cls(ps, lr=lr, **opts), 100)[2]
    theirs = run_torch(lambda ps: getattr(torch.optim, TORCH_NAMES[cls])(ps, lr=lr, **opts), 100)
    assert_same_trajectory(ours, theirs, rtol=1e-5, atol=1e-9)
    # the problem is not trivial: the parameters moved
    assert not np.allclose(ours[-1][0], INIT[0], atol=1e-2)


@pytest.mark.parametrize("cls,opts", [
    (SGD, dict(momentum=0.9, nesterov=True, weight_decay=0.01)),
    (RMSProp, dict(momentum=0.5, centered=True)),
    (Adam, dict(amsgrad=True, weight_decay=0.01)),
    (AdamW, dict()),
], ids=["SGD", "RMSProp", "Adam", "AdamW"])
def test_float32_preserved_and_agrees_with_torch_float32(cls, opts):
    torch = pytest.importorskip("torch")
    lr = LRS[cls]
    params, opt, ours = run_ours(lambda ps: cls(ps, lr=lr, **opts), 100, dtype=np.float32)
    theirs = run_torch(lambda ps: getattr(torch.optim, TORCH_NAMES[cls])(ps, lr=lr, **opts), 100, dtype=np.float32)
    assert_same_trajectory(ours, theirs, rtol=2e-4, atol=2e-5)
    for p in params:
        assert p.data.dtype == np.float32
        for name, value in opt.state[p].items():
            assert not isinstance(value, np.ndarray) or value.dtype == np.float32, name


def test_param_groups_agree_with_torch():
    torch = pytest.importorskip("torch")

    def ours(ps):
        return SGD([{"params": ps[:2], "momentum": 0.9, "nesterov": True},
                    {"params": ps[2:], "lr": 0.3, "weight_decay": 0.1}], lr=0.1)

    def theirs(ps):
        return torch.optim.SGD([{"params": ps[:2], "momentum": 0.9, "nesterov": True},
                                {"params": ps[2:], "lr": 0.3, "weight_decay": 0.1}], lr=0.1)

    assert_same_trajectory(run_ours(ours, 50)[2], run_torch(theirs, 50), rtol=1e-5, atol=1e-9)


def test_per_group_options_are_used():
    a, b = param([1.0, 2.0]), param([1.0, 2.0])
    opt = Adam([{"params": [a]}, {"params": [b], "lr": 0.0}], lr=0.1)
    a.grad, b.grad = np.ones(2), np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, [0.9, 1.9])
    np.testing.assert_array_equal(b.data, [1.0, 2.0])
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)


# ---- in-place updates, no temporaries ----------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-4),
    lambda ps: RMSProp(ps, lr=0.01, momentum=0.9, centered=True, weight_decay=1e-4),
    lambda ps: Adam(ps, lr=1e-3, amsgrad=True, weight_decay=1e-4),
    lambda ps: AdamW(ps, lr=1e-3),
], ids=["sgd", "sgd-nesterov-wd", "sgd-dampening-wd", "rmsprop-all", "adam-amsgrad-wd", "adamw"])
def test_steps_update_in_place_without_allocating(make):
    rng = np.random.default_rng(0)
    ps = [param(rng.standard_normal((512, 512)), np.float32), param(rng.standard_normal(512), np.float32)]
    for p in ps:
        p.grad = rng.standard_normal(p.shape).astype(np.float32)
    grads_before = [p.grad.copy() for p in ps]
    buffers = [p.data for p in ps]
    opt = make(ps)
    opt.step()  # the first steps allocate state and scratch buffers (the momentum path starts on step 2)
    opt.step()
    tracemalloc.start()
    try:
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"a step allocated {peak} bytes; a 512x512 float32 temporary is {512 * 512 * 4}"
    for p, buf, g in zip(ps, buffers, grads_before):
        assert p.data is buf and p.data.dtype == np.float32
        np.testing.assert_array_equal(p.grad, g)  # gradients are read, never modified


def test_none_grads_are_skipped():
    a, b = param([1.0, 2.0]), param([3.0])
    opt = Adam([a, b], lr=0.1)
    a.grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(b.data, [3.0])
    assert b not in opt.state or not opt.state[b]
    assert opt.state[a]["step"] == 1


def test_grad_shape_mismatch_raises():
    a = param([1.0, 2.0])
    a.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"parameter 0: .grad has shape \(3,\) but .data has shape \(2,\)"):
        SGD([a], lr=0.1).step()


def test_zero_grad_and_closure():
    a = param([1.0, 2.0])
    opt = SGD([a], lr=0.5)
    a.grad = np.ones(2)
    buf = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is buf and not a.grad.any()
    opt.zero_grad()
    assert a.grad is None

    def closure():
        opt.zero_grad()
        loss = (a * a).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(5.0)
    np.testing.assert_allclose(a.data, [0.0, 0.0])  # x - 0.5 * 2x


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.5, momentum=0.9),
    lambda ps: RMSProp(ps, lr=0.01),
    lambda ps: Adam(ps, lr=0.05),
    lambda ps: AdamW(ps, lr=0.05),
], ids=["sgd", "rmsprop", "adam", "adamw"])
def test_trains_logistic_regression_with_chainrule_autograd(make):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x[:, :1] + 0.5 * x[:, 1:] > 0).astype(np.float32)
    w = cr.Tensor(np.zeros((2, 1), np.float32), requires_grad=True)
    b = cr.Tensor(np.zeros(1, np.float32), requires_grad=True)
    opt = make([w, b])

    def loss_fn():
        p = (cr.Tensor(x) @ w + b).sigmoid()
        return -(y * (p + 1e-7).log() + (1 - y) * (1 - p + 1e-7).log()).mean()

    first = loss_fn().item()
    for _ in range(100):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.5 * first
    assert w.data.dtype == np.float32


# ---- hyperparameter and parameter validation ---------------------------------------------------------------


@pytest.mark.parametrize("cls,kwargs,message", [
    (SGD, dict(lr=-0.1), r"lr must be >= 0, got -0.1"),
    (SGD, dict(lr=float("nan")), r"lr must be a finite real number, got nan"),
    (SGD, dict(lr="0.1"), r"lr must be a finite real number, got '0.1'"),
    (SGD, dict(lr=0.1, momentum=-0.5), r"momentum must be >= 0, got -0.5"),
    (SGD, dict(lr=0.1, dampening=1.5), r"dampening must be <= 1, got 1.5"),
    (SGD, dict(lr=0.1, nesterov=True), r"nesterov=True needs momentum > 0 and dampening = 0, got momentum=0.0"),
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), r"dampening=0.1"),
    (SGD, dict(lr=0.1, weight_decay=-1e-4), r"weight_decay must be >= 0, got -0.0001"),
    (RMSProp, dict(lr=0.1, alpha=1.0), r"alpha must be < 1, got 1.0"),
    (RMSProp, dict(lr=0.1, eps=-1e-8), r"eps must be >= 0, got -1e-08"),
    (RMSProp, dict(lr=0.1, centered=1), r"centered must be True or False, got 1"),
    (Adam, dict(lr=0.1, betas=(1.0, 0.999)), r"betas\[0\] must be < 1, got 1.0"),
    (Adam, dict(lr=0.1, betas=(0.9, -0.1)), r"betas\[1\] must be >= 0, got -0.1"),
    (Adam, dict(lr=0.1, betas=(0.9,)), r"betas must be a pair \(beta1, beta2\), got \(0.9,\)"),
    (Adam, dict(lr=0.1, amsgrad="yes"), r"amsgrad must be True or False"),
    (AdamW, dict(lr=0.1, weight_decay=-0.01), r"weight_decay must be >= 0, got -0.01"),
    (AdamW, dict(lr=math.inf), r"lr must be a finite real number, got inf"),
])
def test_hyperparameters_are_validated(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([param([1.0])], **kwargs)


def test_group_options_are_validated_with_group_index():
    with pytest.raises(ValueError, match=r"param group 1: momentum must be >= 0, got -1.0"):
        SGD([{"params": [param([1.0])]}, {"params": [param([2.0])], "momentum": -1.0}], lr=0.1)
    with pytest.raises(ValueError, match=r"param group 0: unknown option\(s\) \['momentun'\] for SGD"):
        SGD([{"params": [param([1.0])], "momentun": 0.9}], lr=0.1)
    with pytest.raises(ValueError, match=r"param group 0: a param group needs a 'params' key"):
        SGD([{"lr": 0.1}], lr=0.1)
    with pytest.raises(ValueError, match=r"param group 1: 'params' is empty"):
        SGD([{"params": [param([1.0])]}, {"params": []}], lr=0.1)


def test_params_are_validated():
    a = param([1.0])
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="got a single Tensor; wrap it in a list"):
        SGD(a, lr=0.1)
    with pytest.raises(ValueError, match=r"param group 1: parameter 0 already appears as parameter 0 of param group 0"):
        SGD([{"params": [a]}, {"params": [a]}], lr=0.1)
    with pytest.raises(ValueError, match=r"parameter 1 already appears as parameter 0"):
        SGD([a, a], lr=0.1)
    with pytest.raises(TypeError, match=r"parameter 0 has dtype int64; optimizers update floating-point"):
        SGD([cr.Tensor(np.array([1, 2]))], lr=0.1)
    with pytest.raises(TypeError, match=r"parameter 1 is a ndarray; expected a Tensor/Parameter"):
        SGD([a, np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="mixes tensors and param-group dicts"):
        SGD([a, {"params": [param([2.0])]}], lr=0.1)
    # generators are fine, a single tensor inside a group dict too
    opt = SGD((p for p in [a, param([2.0])]), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 2
    assert SGD([{"params": a}], lr=0.1).param_groups[0]["params"] == [a]


def test_add_param_group_uses_defaults():
    a, b = param([1.0]), param([2.0])
    opt = SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [b], "lr": 0.01, "name": "head"})
    assert opt.param_groups[1] == {"params": [b], "lr": 0.01, "momentum": 0.9, "dampening": 0.0,
                                   "nesterov": False, "weight_decay": 0.0, "name": "head"}
    assert "group 1 'head': 1 params, lr=0.01" in repr(opt)


# ---- state_dict --------------------------------------------------------------------------------------------

ROUND_TRIP = [
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (RMSProp, dict(lr=0.01, momentum=0.9, centered=True)),
    (Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    (AdamW, dict(lr=0.01, betas=(0.8, 0.99))),
]


def _save_npz_json(sd, tmp_path):
    np.savez(tmp_path / "opt.npz", **sd["state"])
    (tmp_path / "opt.json").write_text(json.dumps({k: v for k, v in sd.items() if k != "state"}))
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        state = {k: f[k] for k in f.files}
    return {**json.loads((tmp_path / "opt.json").read_text()), "state": state}


@pytest.mark.parametrize("cls,kwargs", ROUND_TRIP, ids=[c.__name__ for c, _ in ROUND_TRIP])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_round_trip_resumes_bit_exactly(cls, kwargs, dtype, tmp_path):
    params = [param(a, dtype) for a in INIT]
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": kwargs["lr"] / 2}]
    opt = cls(groups, **kwargs)
    for t in range(7):
        set_grads(params, quad_grads([p.data for p in params], t))
        opt.step()
    sd = _save_npz_json(opt.state_dict(), tmp_path)
    # resume: fresh parameters holding the saved values, an optimizer built with other hyperparameters
    resumed = [param(p.data.copy(), dtype) for p in params]
    opt2 = cls([{"params": resumed[:2]}, {"params": resumed[2:]}], **{**kwargs, "lr": 123.0})
    opt2.load_state_dict(sd)
    assert opt2.param_groups[1]["lr"] == kwargs["lr"] / 2
    for t in range(7, 20):
        for ps, o in ((params, opt), (resumed, opt2)):
            set_grads(ps, quad_grads([p.data for p in ps], t))
            o.step()
    for p, q in zip(params, resumed):
        np.testing.assert_array_equal(p.data, q.data)
        assert q.data.dtype == dtype
        for name, value in opt2.state[q].items():
            np.testing.assert_array_equal(value, opt.state[p][name])


def test_state_dict_layout_and_copies():
    a, b = param([1.0, 2.0]), param([3.0])
    opt = Adam([a, b], lr=0.1, betas=(0.8, 0.9))
    a.grad = np.ones(2)
    opt.step()
    sd = opt.state_dict()
    assert sd["type"] == "Adam"
    assert sd["param_groups"] == [{"lr": 0.1, "betas": [0.8, 0.9], "eps": 1e-8, "weight_decay": 0.0,
                                   "amsgrad": False, "params": [0, 1]}]
    assert sorted(sd["state"]) == ["0.exp_avg", "0.exp_avg_sq", "0.step"]
    assert all(isinstance(v, np.ndarray) for v in sd["state"].values())
    assert sd["state"]["0.step"].dtype == np.int64 and sd["state"]["0.step"] == 1
    json.dumps({k: v for k, v in sd.items() if k != "state"})
    saved = sd["state"]["0.exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(sd["state"]["0.exp_avg"], saved)  # a snapshot, not a view of live state


def test_load_state_dict_rejects_mismatches_and_changes_nothing():
    a, b = param([1.0, 2.0]), param([3.0])
    opt = Adam([a, b], lr=0.1)
    a.grad, b.grad = np.ones(2), np.ones(1)
    opt.step()
    good = opt.state_dict()

    fresh = Adam([param([1.0, 2.0]), param([3.0])], lr=0.5)
    before = fresh.state_dict()
    cases = [
        ({**good, "type": "SGD"}, r"saved by a SGD optimizer; cannot load it into Adam"),
        ({**good, "param_groups": good["param_groups"] * 2}, r"has 2 param group\(s\) but this optimizer has 1"),
        ({**good, "param_groups": [{**good["param_groups"][0], "params": [0]}]}, r"1 parameter\(s\) saved"),
        ({**good, "param_groups": [{**good["param_groups"][0], "lr": -1}]}, r"param group 0: lr must be >= 0"),
        ({**good, "state": {**good["state"], "0.exp_avg": np.ones(3)}}, r"shape \(3,\) does not match .* \(2,\)"),
        ({**good, "state": {**good["state"], "0.momentum": np.ones(2)}}, r"no state 'momentum'"),
        ({**good, "state": {**good["state"], "7.step": np.array(1)}}, r"'7.step' does not name a parameter"),
        ({**good, "state": {k: v for k, v in good["state"].items() if k != "1.exp_avg_sq"}},
         r"state of parameter 1 lacks \['exp_avg_sq'\]"),
        ({k: v for k, v in good.items() if k != "state"}, r"lacks key\(s\) \['state'\]"),
    ]
    for sd, message in cases:
        with pytest.raises(ValueError, match=message):
            fresh.load_state_dict(sd)
        assert fresh.state_dict()["param_groups"] == before["param_groups"] and not fresh.state


def test_optimizer_base_requires_update():
    class Plain(Optimizer):
        option_names = ("lr",)

    a = param([1.0])
    a.grad = np.ones(1)
    with pytest.raises(NotImplementedError, match="Plain must implement _update"):
        Plain([a], {"lr": 0.1}).step()


# ---- gradient clipping -------------------------------------------------------------------------------------


def _grad_params(grads, dtype=np.float64):
    ps = []
    for g in grads:
        p = param(np.zeros_like(g), dtype)
        p.grad = None if g is None else np.array(g, dtype=dtype)
        ps.append(p)
    return ps


def test_clip_grad_norm_returns_norm_before_and_scales_to_max():
    grads = [np.array([[3.0, 0.0], [0.0, 4.0]]), np.array([12.0]), None]
    ps = _grad_params(grads)
    held = ps[0].grad
    norm = clip_grad_norm(ps, max_norm=6.5)
    assert norm == pytest.approx(13.0, rel=1e-15)
    assert ps[0].grad is held  # in place
    coef = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(ps[0].grad, grads[0] * coef)
    np.testing.assert_allclose(ps[1].grad, grads[1] * coef)
    assert ps[2].grad is None
    assert math.sqrt(sum(float((p.grad**2).sum()) for p in ps[:2])) == pytest.approx(6.5, rel=1e-6)


def test_clip_grad_norm_leaves_small_gradients_alone():
    ps = _grad_params([np.array([0.3, -0.4])])
    assert clip_grad_norm(ps, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(ps[0].grad, [0.3, -0.4])
    assert clip_grad_norm(param([1.0]), 1.0) == 0.0  # single tensor, no grad
    assert clip_grad_norm([], 1.0) == 0.0


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_agrees_with_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal((7, 5)), rng.standard_normal(5), rng.standard_normal((2, 3, 4))]
    ps = _grad_params(grads)
    tps = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(tps, grads):
        tp.grad = torch.from_numpy(g.copy())
    norm = clip_grad_norm(ps, max_norm, norm_type=norm_type)
    tnorm = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type=norm_type)
    assert norm == pytest.approx(float(tnorm), rel=1e-12)
    flat = np.concatenate([g.ravel() for g in grads])
    assert norm == pytest.approx(float(np.linalg.norm(flat, ord=norm_type)), rel=1e-12)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_nonfinite(bad, norm_type):
    grads = [np.array([1.0, bad]), np.array([2.0])]
    ps = _grad_params(grads)
    with pytest.raises(FloatingPointError, match=r"total gradient norm of order .* is (nan|inf)"):
        clip_grad_norm(ps, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    np.testing.assert_array_equal(ps[1].grad, [2.0])  # nothing scaled when raising
    norm = clip_grad_norm(ps, 1.0, norm_type=norm_type)  # torch's behaviour: scale by the non-finite norm
    assert math.isnan(norm) if math.isnan(bad) else norm == math.inf
    torch = pytest.importorskip("torch")
    tps = [torch.zeros(2, dtype=torch.float64, requires_grad=True), torch.zeros(1, dtype=torch.float64,
                                                                                  requires_grad=True)]
    for tp, g in zip(tps, grads):
        tp.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_norm_(tps, 1.0, norm_type=norm_type)
    for p, tp in zip(ps, tps):
        np.testing.assert_array_equal(p.grad, tp.grad.numpy())


def test_clip_grad_norm_float32_sum_of_squares_overflow():
    ps = _grad_params([np.full(1000, 1e20), np.full(10, -1e20)], dtype=np.float32)
    norm = clip_grad_norm(ps, 1.0, error_if_nonfinite=True)  # (1e20)^2 overflows float32, the norm does not
    assert norm == pytest.approx(1e20 * math.sqrt(1010), rel=1e-6)
    assert ps[0].grad.dtype == np.float32
    total = math.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in ps))
    assert total == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_value():
    ps = _grad_params([np.array([-3.0, 0.5, 2.0]), None])
    held = ps[0].grad
    clip_grad_value(ps, 1.0)
    assert ps[0].grad is held
    np.testing.assert_array_equal(ps[0].grad, [-1.0, 0.5, 1.0])
    clip_grad_value(ps[0], 0.25)
    np.testing.assert_array_equal(ps[0].grad, [-0.25, 0.25, 0.25])


@pytest.mark.parametrize("call,message", [
    (lambda ps: clip_grad_norm(ps, -1.0), r"max_norm must be >= 0, got -1.0"),
    (lambda ps: clip_grad_norm(ps, 1.0, norm_type=0), r"norm_type must be a positive number or math.inf, got 0"),
    (lambda ps: clip_grad_norm(ps, 1.0, norm_type="2"), r"norm_type must be a positive number"),
    (lambda ps: clip_grad_value(ps, -0.5), r"clip_value must be >= 0, got -0.5"),
    (lambda ps: clip_grad_value(ps, math.nan), r"clip_value must be a finite real number, got nan"),
])
def test_clip_validation(call, message):
    with pytest.raises(ValueError, match=message):
        call(_grad_params([np.ones(2)]))
