"""The PyTorch-name table of docs/engine.md: every row resolves, and behaves like the PyTorch name it stands for.

The table is the one list of aliases: a row without a check here, or a check without a row, fails.
"""

from __future__ import annotations

import importlib
import math
import re
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor, nn

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

PAGE = Path(__file__).resolve().parents[1] / "docs" / "engine.md"
ROW = re.compile(r"^\| `([^`]+)` \| `([^`]+)` \|", re.M)


def table(heading_text: str) -> list[tuple[str, str]]:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(heading_text)
    section = text[start:text.index("\n\n", text.index("|---", start))]
    return ROW.findall(section)


NAMES = table("| PyTorch | chainrule | notes |")
ARGUMENTS = table("| PyTorch | chainrule | where |")


def resolve(dotted: str):
    parts = dotted.split(".")
    assert parts[0] == "chainrule"
    obj = importlib.import_module("chainrule")
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj


def f64(values, requires_grad=False):
    return Tensor(np.array(values, dtype=np.float64), requires_grad=requires_grad)


def t64(values, requires_grad=False):
    return torch.tensor(np.array(values, dtype=np.float64), requires_grad=requires_grad)


DATA = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, -2.0]])


def same(ours, theirs):
    ours = ours.data if isinstance(ours, Tensor) else np.asarray(ours)
    theirs = theirs.detach().numpy() if torch is not None and isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


# ---- one check per row: chainrule's object against torch's behaviour ------------------------------------------------


def check_tensor(fn):
    t = fn([[1.0, 2.0]], requires_grad=True)
    assert t.dtype == np.float32 and t.requires_grad
    src = np.ones(2)
    copied = fn(src)
    src[0] = 5.0
    assert copied.tolist() == [1.0, 1.0] == torch.tensor(np.ones(2)).tolist()  # a copy, as torch.tensor
    assert fn([1, 2]).dtype == np.int64 and str(torch.tensor([1, 2]).dtype) == "torch.int64"


def check_zeros(fn):
    assert fn(2, 3).shape == (2, 3) == tuple(torch.zeros(2, 3).shape)
    assert fn((2, 3), requires_grad=True).requires_grad and fn(2).dtype == np.float32
    same(fn(2, 3), torch.zeros(2, 3))


def check_ones(fn):
    same(fn(2, 3), torch.ones(2, 3))
    assert fn([4], dtype=np.float64).dtype == np.float64


def check_randn(fn):
    cr.manual_seed(3)
    a = fn(1000, 3)
    cr.manual_seed(3)
    b = fn(1000, 3, requires_grad=True)
    assert a.shape == (1000, 3) and a.dtype == np.float32 and b.requires_grad
    np.testing.assert_array_equal(a.data, b.data)
    assert abs(float(a.data.mean())) < 0.1 and abs(float(a.data.std()) - 1) < 0.1


def check_arange(fn):
    for args in [(5,), (2, 7), (0, 10, 3), (0.0, 1.0, 0.25), (5, 0, -2)]:
        ours, theirs = fn(*args), torch.arange(*args)
        assert ours.tolist() == theirs.tolist() and ours.dtype.name == str(theirs.dtype).replace("torch.", "")
    assert fn(3.0, requires_grad=True).requires_grad


def check_manual_seed(fn):
    fn(7)
    first = (cr.randn(3).tolist(), nn.Linear(3, 2).weight.data.copy(), nn.Dropout(0.5)(cr.ones(8)).tolist())
    fn(7)
    second = (cr.randn(3).tolist(), nn.Linear(3, 2).weight.data.copy(), nn.Dropout(0.5)(cr.ones(8)).tolist())
    assert first[0] == second[0] and first[2] == second[2]
    np.testing.assert_array_equal(first[1], second[1])


def check_reduction(name):
    def check(fn):
        for dim in (0, 1, -1):
            same(fn(f64(DATA), dim=dim), getattr(torch, name)(t64(DATA), dim=dim))
            same(fn(f64(DATA), dim, True), getattr(torch, name)(t64(DATA), dim, True))
    return check


def check_cat(fn):
    same(fn([f64(DATA), f64(DATA)], dim=1), torch.cat([t64(DATA), t64(DATA)], dim=1))
    same(fn([f64(DATA), f64(DATA)]), torch.cat([t64(DATA), t64(DATA)]))


def check_clamp(fn):
    x, lo = f64(DATA, True), f64([0.0, -0.5, 1.0], True)
    tx, tlo = t64(DATA, True), t64([0.0, -0.5, 1.0], True)
    same(fn(x, lo, f64(1.5)), torch.clamp(tx, tlo, t64(1.5)))
    same(fn(x, -0.5, 1.5), torch.clamp(tx, -0.5, 1.5))
    fn(x, min=lo).sum().backward()
    torch.clamp(tx, min=tlo).sum().backward()
    same(x.grad, tx.grad)
    same(lo.grad, tlo.grad)


def check_arg(name):
    def check(fn):
        same(fn(f64(DATA)), getattr(torch, name)(t64(DATA)))
        for dim in (0, 1):
            same(fn(f64(DATA), dim=dim), getattr(torch, name)(t64(DATA), dim=dim))
            same(fn(f64(DATA), dim=dim, keepdim=True), getattr(torch, name)(t64(DATA), dim=dim, keepdim=True))
    return check


def check_flatten(fn):
    x = np.arange(24.0).reshape(2, 3, 4)
    same(fn(f64(x)), torch.flatten(t64(x)))
    same(fn(f64(x), 1), torch.flatten(t64(x), 1))
    same(fn(f64(x), 0, 1), torch.flatten(t64(x), 0, 1))


def check_clone(fn):
    x, tx = f64(DATA, requires_grad=True), t64(DATA, requires_grad=True)
    y, ty = fn(x), torch.clone(tx)
    same(y, ty)
    assert not np.shares_memory(y.data, x.data)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    same(x.grad, tx.grad)


def check_autograd_grad(fn):
    x, tx = f64(DATA, requires_grad=True), t64(DATA, requires_grad=True)
    (g,) = fn((x ** 3).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad((tx ** 3).sum(), tx, create_graph=True)
    same(g, tg)
    same(fn((g * g).sum(), [x])[0], torch.autograd.grad((tg * tg).sum(), [tx])[0])


def m_clone():
    check_clone(Tensor.clone)


def method(name):
    """A check of Tensor.<name>: the method object resolves; behaviour is checked in BEHAVIOUR_OF_METHODS."""
    def check(fn):
        assert fn is getattr(Tensor, name)
        BEHAVIOUR_OF_METHODS[name]()
    return check


def m_matmul():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    same(f64(a).matmul(f64(b)), t64(a).matmul(t64(b)))


def m_view():
    same(f64(DATA).view(3, 2), t64(DATA).view(3, 2))
    same(f64(DATA).view(-1), t64(DATA).view(-1))
    with pytest.raises(ValueError, match="view: .* cannot be viewed"):
        f64(DATA).T.view(6)
    with pytest.raises(RuntimeError):
        t64(DATA).T.view(6)


def m_size():
    x, t = f64(np.zeros((2, 3, 4))), t64(np.zeros((2, 3, 4)))
    assert x.size() == tuple(t.size()) and x.size(1) == t.size(1) and x.size(-1) == t.size(-1)
    assert x.size == 24 and x.data.size == 24  # NumPy's meaning, kept


def m_numel():
    assert f64(DATA).numel() == t64(DATA).numel() == 6


def m_dim():
    assert f64(DATA).dim() == t64(DATA).dim() == 2


def m_float():
    x = f64(DATA, True)
    y = x.float()
    assert y.dtype == np.float32 and t64(DATA).float().dtype == torch.float32
    y.sum().backward()
    assert x.grad.dtype == np.float64
    z = cr.ones(2)
    assert z.float() is z


def m_double():
    x = Tensor(np.ones(2, np.float32), requires_grad=True)
    assert x.double().dtype == np.float64
    x.double().sum().backward()
    assert x.grad.dtype == np.float32


def m_clamp():
    same(f64(DATA).clamp(-1.0, 1.0), t64(DATA).clamp(-1.0, 1.0))
    same(f64(DATA).clamp(min=0.0), t64(DATA).clamp(min=0.0))


def m_extremum(name):
    def check():
        x, t = f64(DATA, True), t64(DATA, True)
        v, i = getattr(x, name)(dim=1)
        tv, ti = getattr(t, name)(dim=1)
        same(v, tv)
        same(i, ti)
        v.sum().backward()
        tv.sum().backward()
        same(x.grad, t.grad)
        same(getattr(x, name)(), getattr(t, name)())
        v, i = getattr(x, name)(dim=0, keepdim=True)
        tv, ti = getattr(t, name)(dim=0, keepdim=True)
        same(v, tv)
        same(i, ti)
    return check


def m_flatten():
    x = np.arange(24.0).reshape(2, 3, 4)
    same(f64(x).flatten(), t64(x).flatten())
    same(f64(x).flatten(1), t64(x).flatten(1))


def m_tolist():
    assert f64(DATA).tolist() == t64(DATA).tolist()


def in_place(name, *args, **kwargs):
    def check():
        x, t = f64(DATA), t64(DATA)
        ours = getattr(x, name)(*[f64(a) if isinstance(a, np.ndarray) else a for a in args], **kwargs)
        getattr(t, name)(*[t64(a) if isinstance(a, np.ndarray) else a for a in args], **kwargs)
        assert ours is x and x._version == t._version == 1
        same(x, t)
    return check


def m_version():
    x, t = f64(DATA), t64(DATA)
    assert x._version == t._version == 0
    x.add_(1.0)
    x[0, 0] = 2.0
    t.add_(1.0)
    t[0, 0] = 2.0
    assert x._version == t._version == 2


BEHAVIOUR_OF_METHODS = {
    "matmul": m_matmul, "view": m_view, "size": m_size, "numel": m_numel, "dim": m_dim, "float": m_float,
    "double": m_double, "clamp": m_clamp, "max": m_extremum("max"), "min": m_extremum("min"), "flatten": m_flatten,
    "tolist": m_tolist, "clone": m_clone, "zero_": in_place("zero_"), "fill_": in_place("fill_", 2.5),
    "copy_": in_place("copy_", np.ones(3)), "add_": in_place("add_", np.ones(3), alpha=2.0),
    "sub_": in_place("sub_", np.ones((2, 3)), alpha=0.5), "mul_": in_place("mul_", 3.0),
    "div_": in_place("div_", np.full(3, 4.0)), "clamp_": in_place("clamp_", -1.0, 1.0), "_version": m_version,
}


def check_version(obj):
    assert isinstance(obj, property)
    m_version()


def check_flatten_module(cls):
    x = np.arange(24.0).reshape(2, 3, 4)
    same(cls()(f64(x)), torch.nn.Flatten()(t64(x)))
    same(cls(0, 1)(f64(x)), torch.nn.Flatten(0, 1)(t64(x)))


def check_softmax_module(name):
    def check(cls):
        for dim in (0, 1):
            same(cls(dim=dim)(f64(DATA)), getattr(torch.nn, name)(dim=dim)(t64(DATA)))
        same(cls()(f64(DATA)), getattr(torch.nn, name)(dim=-1)(t64(DATA)))
    return check


def check_clip_grad_norm(fn):
    assert fn is cr.optim.clip_grad_norm
    x, t = f64(DATA, True), t64(DATA, True)
    (x * x).sum().backward()
    (t * t).sum().backward()
    norm, tnorm = fn([x], 1.0), torch.nn.utils.clip_grad_norm_([t], 1.0)
    assert isinstance(norm, float) and math.isclose(norm, float(tnorm), rel_tol=1e-12)
    same(x.grad, t.grad)


def check_clip_grad_value(fn):
    assert fn is cr.optim.clip_grad_value
    x, t = f64(DATA, True), t64(DATA, True)
    (x * x).sum().backward()
    (t * t).sum().backward()
    fn([x], 1.5)
    torch.nn.utils.clip_grad_value_([t], 1.5)
    same(x.grad, t.grad)


def check_mse_loss(fn):
    a, b = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    same(fn(f64(a), f64(b)), torch.nn.functional.mse_loss(t64(a), t64(b)))


def check_rmsprop(cls):
    """A positional call means what it means in PyTorch: (params, lr, alpha, eps, weight_decay, momentum)."""
    x, t = f64(DATA, True), t64(DATA, True)
    opt, topt = cls([x], 0.01, 0.9, 1e-6, 0.1, 0.5), torch.optim.RMSprop([t], 0.01, 0.9, 1e-6, 0.1, 0.5)
    assert opt.param_groups[0]["weight_decay"] == 0.1 and opt.param_groups[0]["momentum"] == 0.5
    for _ in range(20):
        for p, o in ((x, opt), (t, topt)):
            o.zero_grad()
            (p * p * p).sum().backward()
            o.step()
    np.testing.assert_allclose(x.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert cls([f64([1.0], True)]).param_groups[0]["lr"] == 0.01  # PyTorch's default lr
    other = cr.optim.RMSProp([f64(DATA, True)], lr=0.01, alpha=0.9, eps=1e-6, momentum=0.5, weight_decay=0.1)
    other.load_state_dict(opt.state_dict())  # checkpoints are interchangeable


def lrs(make_ours, make_theirs, steps, metrics=None):
    groups = [{"params": [f64([0.0], True)]}, {"params": [f64([0.0], True)], "lr": 0.5}]
    tgroups = [{"params": [t64([0.0], True)]}, {"params": [t64([0.0], True)], "lr": 0.5}]
    opt, topt = cr.optim.SGD(groups, lr=1.0), torch.optim.SGD(tgroups, lr=1.0)
    s, ts = make_ours(opt), make_theirs(topt)
    ours, theirs = [], []
    for i in range(steps):
        ours.append([g["lr"] for g in opt.param_groups])
        theirs.append([g["lr"] for g in topt.param_groups])
        opt.step()
        topt.step()
        if metrics is None:
            s.step()
            ts.step()
        else:
            s.step(metrics[i])
            ts.step(metrics[i])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-15)
    assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-9)


def check_step_lr(cls):
    lrs(lambda o: cls(o, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5), 20)
    lrs(lambda o: cls(o, step_size=1), lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1), 5)


def check_cosine_lr(cls):
    lrs(lambda o: cls(o, 10, 0.1), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.1), 45)
    lrs(lambda o: cls(o, T_max=3), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=3), 13)


def check_plateau_lr(cls):
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7, 0.9, 0.9, 0.9, 0.9]
    lrs(lambda o: cls(o, "min", 0.5, 2, 1e-4, "rel", 1, [0.3, 0.01]),
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, "min", 0.5, 2, 1e-4, "rel", 1, [0.3, 0.01]),
        len(metrics), metrics)
    acc = [0.1, 0.2, 0.2, 0.2, 0.25, 0.25, 0.25, 0.25, 0.3]
    lrs(lambda o: cls(o, mode="max", patience=1, threshold=0.1, threshold_mode="abs"),
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, mode="max", patience=1, threshold=0.1,
                                                             threshold_mode="abs"), len(acc), acc)


CHECKS = {
    "torch.tensor": check_tensor, "torch.zeros": check_zeros, "torch.ones": check_ones, "torch.randn": check_randn,
    "torch.arange": check_arange, "torch.manual_seed": check_manual_seed, "torch.cat": check_cat,
    "torch.clamp": check_clamp, "torch.amax": check_reduction("amax"), "torch.amin": check_reduction("amin"),
    "torch.argmax": check_arg("argmax"), "torch.argmin": check_arg("argmin"), "torch.flatten": check_flatten,
    "torch.clone": check_clone, "torch.autograd.grad": check_autograd_grad,
    **{f"Tensor.{name}": method(name) for name in BEHAVIOUR_OF_METHODS if name != "_version"},
    "Tensor._version": check_version,
    "nn.Flatten": check_flatten_module, "nn.Softmax": check_softmax_module("Softmax"),
    "nn.LogSoftmax": check_softmax_module("LogSoftmax"), "nn.utils.clip_grad_norm_": check_clip_grad_norm,
    "nn.utils.clip_grad_value_": check_clip_grad_value, "nn.functional.mse_loss": check_mse_loss,
    "optim.RMSprop": check_rmsprop, "optim.lr_scheduler.StepLR": check_step_lr,
    "optim.lr_scheduler.CosineAnnealingLR": check_cosine_lr,
    "optim.lr_scheduler.ReduceLROnPlateau": check_plateau_lr,
}


def test_every_row_has_a_check_and_every_check_a_row() -> None:
    rows = [torch_name for torch_name, _ in NAMES]
    assert len(rows) == len(set(rows)), "a PyTorch name appears twice"
    assert set(rows) == set(CHECKS)


@pytest.mark.parametrize("torch_name, ours", NAMES, ids=[r[0] for r in NAMES])
def test_every_alias_resolves(torch_name: str, ours: str) -> None:
    assert resolve(ours) is not None
    assert ours.split(".")[-1] == torch_name.split(".")[-1], "the alias has the PyTorch name"


@pytest.mark.skipif(torch is None, reason="PyTorch (the oracle) is not installed")
@pytest.mark.parametrize("torch_name, ours", NAMES, ids=[r[0] for r in NAMES])
def test_every_alias_behaves_like_pytorch(torch_name: str, ours: str) -> None:
    CHECKS[torch_name](resolve(ours))


@pytest.mark.skipif(torch is None, reason="PyTorch (the oracle) is not installed")
def test_argument_names_dim_keepdim_correction() -> None:
    assert [r[0] for r in ARGUMENTS] == ["dim=", "keepdim=", "correction="]
    x, t = f64(DATA, True), t64(DATA, True)
    for name in ("sum", "mean", "amax", "amin", "logsumexp"):
        for dim, keep in ((0, False), (1, True), ((0, 1), False)):
            same(getattr(x, name)(dim=dim, keepdim=keep), getattr(t, name)(dim=dim, keepdim=keep))
    same(x.var(dim=1, correction=1), t.var(dim=1, correction=1))
    same(x.var(dim=0, keepdim=True, correction=0), t.var(dim=0, keepdim=True, correction=0))
    same(x.softmax(dim=0), t.softmax(dim=0))
    same(x.log_softmax(dim=1), t.log_softmax(dim=1))
    same(x.unsqueeze(dim=1), t.unsqueeze(dim=1))
    same(x.unsqueeze(1).squeeze(dim=1), t.unsqueeze(1).squeeze(dim=1))
    same(cr.stack([x, x], dim=2), torch.stack([t, t], dim=2))
    same(cr.concatenate([x, x], dim=-1), torch.cat([t, t], dim=-1))
    same(x.argmax(dim=1, keepdim=True), t.argmax(dim=1, keepdim=True))
    with pytest.raises(TypeError, match="sum: got both axis=0 and dim=1, two names of one argument"):
        x.sum(axis=0, dim=1)
    with pytest.raises(TypeError, match="var: got ddof=1 and correction=0"):
        x.var(ddof=1, correction=0)
