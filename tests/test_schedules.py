"""Tests for chainrule.optim.schedules: values at known steps, torch.optim.lr_scheduler agreement, objects, factory."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim import SGD
from chainrule.optim.schedules import (
    SCHEDULES, ConstantSchedule, CosineSchedule, ExponentialSchedule, InvSqrtSchedule, LinearSchedule, ReduceOnPlateau,
    StepSchedule, constant, cosine, exponential, invsqrt, linear, linear_warmup, make_schedule, step_decay,
)


def make_opt(*lrs):
    groups = [{"params": [cr.Tensor(np.zeros(2), requires_grad=True)], "lr": lr} for lr in lrs]
    return SGD(groups, lr=lrs[0])


# ---- pure functions at known steps -------------------------------------------------------------------------


def test_constant_and_warmup_values():
    assert constant(0, 0.1) == 0.1 and constant(10**6, 0.1) == 0.1
    # nanoGPT's ramp: base * (step + 1) / (W + 1) for step < W
    assert [linear_warmup(t, 1.0, 4) for t in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    assert [constant(t, 0.5, warmup_steps=4) for t in range(6)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.5])


def test_step_decay_at_lecture_milestones():
    values = {t: step_decay(t, 0.1, [30, 60, 90]) for t in (0, 29, 30, 59, 60, 89, 90, 200)}
    assert values == pytest.approx({0: 0.1, 29: 0.1, 30: 0.01, 59: 0.01, 60: 1e-3, 89: 1e-3, 90: 1e-4, 200: 1e-4})
    assert step_decay(30, 1.0, [30], gamma=0.5) == 0.5
    assert step_decay(1, 1.0, [10], warmup_steps=3) == pytest.approx(0.5)  # warmup, then absolute milestones
    assert step_decay(5, 1.0, [10], warmup_steps=3) == 1.0


def test_exponential_values():
    assert [exponential(t, 2.0, 0.5) for t in range(4)] == [2.0, 1.0, 0.5, 0.25]
    assert exponential(3, 2.0, 0.5, warmup_steps=2) == 1.0  # gamma ** (step - W)


def test_cosine_values():
    assert cosine(0, 0.1, 100) == 0.1
    assert cosine(50, 0.1, 100) == pytest.approx(0.05, rel=1e-12)
    assert cosine(25, 0.1, 100) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)) / 2, rel=1e-12)
    assert cosine(100, 0.1, 100) == 0.0
    assert cosine(250, 0.1, 100) == 0.0  # stays at the end value
    # the floor: min_lr + (base - min_lr) (1 + cos(pi t / T)) / 2
    assert cosine(50, 0.1, 100, min_lr=0.02) == pytest.approx(0.06, rel=1e-12)
    assert cosine(100, 0.1, 100, min_lr=0.02) == pytest.approx(0.02, rel=1e-12)
    # with warmup: T = total - W, the decay ends at total_steps
    assert cosine(10, 0.1, 110, warmup_steps=10) == 0.1
    assert cosine(60, 0.1, 110, warmup_steps=10) == pytest.approx(0.05, rel=1e-12)
    assert cosine(110, 0.1, 110, warmup_steps=10) == 0.0


def test_linear_values():
    assert [linear(t, 1.0, 4) for t in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]  # alpha_0 (1 - t / T)
    assert linear(2, 1.0, 4, end_lr=0.2) == pytest.approx(0.6)
    assert linear(12, 1.0, 12, end_lr=0.2, warmup_steps=4) == pytest.approx(0.2)


def test_invsqrt_values():
    assert [invsqrt(t, 1.0) for t in (0, 3, 8, 99)] == pytest.approx([1.0, 0.5, 1 / 3, 0.1])  # 1/sqrt(t), t from 1
    assert invsqrt(30, 1.0, timescale=10) == pytest.approx(0.5)
    # with warmup W (timescale defaults to W): base * sqrt(W / step) after the ramp, continuous at W
    assert [invsqrt(t, 1.0, warmup_steps=100) for t in (100, 400, 10_000)] == pytest.approx([1.0, 0.5, 0.1])


@pytest.mark.parametrize("call,message", [
    (lambda: cosine(-1, 0.1, 10), r"step must be a number >= 0, got -1"),
    (lambda: cosine(0, -0.1, 10), r"base_lr must be a finite number >= 0, got -0.1"),
    (lambda: cosine(0, 0.1, 0), r"total_steps must be an integer >= 1, got 0"),
    (lambda: cosine(0, 0.1, 10.5), r"total_steps must be an integer >= 1, got 10.5"),
    (lambda: cosine(0, 0.1, 10, warmup_steps=10), r"total_steps \(10\) must exceed warmup_steps \(10\)"),
    (lambda: cosine(0, 0.1, 10, min_lr=0.2), r"min_lr \(0.2\) must not exceed base_lr \(0.1\)"),
    (lambda: linear(0, 0.1, 10, end_lr=-1.0), r"end_lr must be a finite number >= 0, got -1.0"),
    (lambda: step_decay(0, 0.1, [60, 30]), r"milestones must be strictly increasing, got \[60, 30\]"),
    (lambda: step_decay(0, 0.1, [30, 30]), r"strictly increasing"),
    (lambda: step_decay(0, 0.1, 30), r"milestones must be a list of integer steps >= 0, got 30"),
    (lambda: step_decay(0, 0.1, [30], gamma=0), r"gamma must be a finite number > 0, got 0"),
    (lambda: exponential(0, 0.1, gamma=-0.5), r"gamma must be a finite number > 0, got -0.5"),
    (lambda: exponential(0, 0.1, 0.9, warmup_steps=-2), r"warmup_steps must be an integer >= 0, got -2"),
    (lambda: invsqrt(0, 0.1, timescale=0), r"timescale must be a finite number > 0, got 0"),
    (lambda: linear_warmup(0, 0.1, 2.5), r"warmup_steps must be an integer >= 0, got 2.5"),
])
def test_function_validation(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---- agreement with torch.optim.lr_scheduler ---------------------------------------------------------------


def torch_lrs(make_scheduler, steps, base_lrs=(0.1, 0.03), metrics=None):
    """The lr of each group at steps 0 .. steps-1 under a torch scheduler, shape (steps, G)."""
    torch = pytest.importorskip("torch")
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in base_lrs]
    opt = torch.optim.SGD(groups, lr=base_lrs[0])
    sched = make_scheduler(torch.optim.lr_scheduler, opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(steps):
            out.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step() if metrics is None else sched.step(metrics[t])
    return np.array(out)


def ours_lrs(schedule, steps, metrics=None):
    out = []
    for t in range(steps):
        out.append([g["lr"] for g in schedule.optimizer.param_groups])
        schedule.step() if metrics is None else schedule.step(metrics[t])
    return np.array(out)


W = 7
TORCH_EQUIVALENTS = {
    "step": (lambda o: StepSchedule(o, milestones=[10, 25, 40], gamma=0.3),
             lambda S, o: S.MultiStepLR(o, milestones=[10, 25, 40], gamma=0.3)),
    "exponential": (lambda o: ExponentialSchedule(o, gamma=0.95),
                    lambda S, o: S.ExponentialLR(o, gamma=0.95)),
    "cosine": (lambda o: CosineSchedule(o, total_steps=50, min_lr=0.01),
               lambda S, o: S.CosineAnnealingLR(o, T_max=50, eta_min=0.01)),
    "linear": (lambda o: LinearSchedule(o, total_steps=40),
               lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=40)),
    "invsqrt": (lambda o: InvSqrtSchedule(o, timescale=5),
                lambda S, o: S.LambdaLR(o, lambda t: 1 / math.sqrt(1 + t / 5))),
    "constant+warmup": (lambda o: ConstantSchedule(o, warmup_steps=W),
                        lambda S, o: S.LinearLR(o, start_factor=1 / (W + 1), end_factor=1.0, total_iters=W)),
    "cosine+warmup": (lambda o: CosineSchedule(o, total_steps=50, min_lr=0.01, warmup_steps=W),
                      lambda S, o: S.SequentialLR(o, [S.LinearLR(o, 1 / (W + 1), 1.0, W),
                                                      S.CosineAnnealingLR(o, T_max=50 - W, eta_min=0.01)], [W])),
    "exponential+warmup": (lambda o: ExponentialSchedule(o, gamma=0.9, warmup_steps=W),
                           lambda S, o: S.SequentialLR(o, [S.LinearLR(o, 1 / (W + 1), 1.0, W),
                                                           S.ExponentialLR(o, gamma=0.9)], [W])),
}


@pytest.mark.parametrize("name", list(TORCH_EQUIVALENTS))
def test_agrees_with_torch_lr_scheduler(name):
    ours, theirs = TORCH_EQUIVALENTS[name]
    steps = 51  # covers every milestone, the end of each decay and the warmup
    np.testing.assert_allclose(ours_lrs(ours(make_opt(0.1, 0.03)), steps), torch_lrs(theirs, steps),
                               rtol=1e-10, atol=1e-15)


PLATEAU_METRICS = [5.0, 4.0, 4.0, 4.0, 3.9996, 3.99, 3.99, 3.99, 3.99, 3.99, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0,
                   float("nan"), 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(patience=2),
    dict(patience=1, factor=0.5, cooldown=2, min_lr=0.02),
    dict(patience=1, threshold=0.5, threshold_mode="abs"),
    dict(mode="max", patience=2, factor=0.5),
    dict(mode="max", patience=0, threshold=0.1, threshold_mode="abs", eps=0.02),
], ids=["defaults", "patience", "cooldown-floor", "abs", "max", "max-abs-eps"])
def test_reduce_on_plateau_agrees_with_torch(kwargs):
    metrics = PLATEAU_METRICS if kwargs.get("mode") != "max" else [10.0 - m for m in PLATEAU_METRICS]
    ours = ours_lrs(ReduceOnPlateau(make_opt(0.1, 0.03), **kwargs), len(metrics), metrics)
    theirs = torch_lrs(lambda S, o: S.ReduceLROnPlateau(o, **kwargs), len(metrics), metrics=metrics)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert ours[-1, 0] < 0.1  # the rate did drop somewhere in this sequence


# ---- scheduler objects -------------------------------------------------------------------------------------


def test_scheduler_sets_each_group_from_its_base_rate():
    opt = make_opt(0.1, 0.01)
    sched = CosineSchedule(opt, total_steps=10, warmup_steps=2)
    assert sched.base_lrs == [0.1, 0.01]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1 / 3, 0.01 / 3])  # step 0 set at construction
    for _ in range(2):
        sched.step()
    assert sched.last_step == 2
    assert sched.get_last_lr() == [0.1, 0.01] == [g["lr"] for g in opt.param_groups]
    assert all(type(g["lr"]) is float for g in opt.param_groups)
    np.testing.assert_allclose(sched.values(11)[:, 1], [cosine(t, 0.01, 10, warmup_steps=2) for t in range(11)])
    assert sched.lr_at(6) == [cosine(6, 0.1, 10, warmup_steps=2), cosine(6, 0.01, 10, warmup_steps=2)]
    assert sched.last_step == 2  # previews do not advance the schedule


def test_scheduler_drives_training_lr():
    p = cr.Tensor(np.array([1.0]), requires_grad=True)
    opt = SGD([p], lr=1.0)
    sched = StepSchedule(opt, milestones=[2], gamma=0.5, interval="epoch")
    moves = []
    for _ in range(4):
        p.grad = np.array([1.0])
        before = p.data.copy()
        opt.step()
        sched.step()
        moves.append(float(before[0] - p.data[0]))
    assert moves == [1.0, 1.0, 0.5, 0.5]
    assert sched.interval == "epoch"


@pytest.mark.parametrize("make", [
    lambda o: StepSchedule(o, milestones=[3, 6], gamma=0.5, warmup_steps=2),
    lambda o: CosineSchedule(o, total_steps=20, min_lr=1e-3),
    lambda o: InvSqrtSchedule(o, warmup_steps=4),
    lambda o: ReduceOnPlateau(o, patience=1, cooldown=1),
], ids=["step", "cosine", "invsqrt", "plateau"])
def test_state_dict_round_trip_resumes_identically(make):
    metric = iter([3.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0] * 3)

    def advance(s):
        s.step(next(metric)) if isinstance(s, ReduceOnPlateau) else s.step()

    opt = make_opt(0.1, 0.02)
    sched = make(opt)
    for _ in range(7):
        advance(sched)
    sd = json.loads(json.dumps(sched.state_dict(), allow_nan=False))  # standard JSON
    rest = list(metric)
    # continuation A: keep going
    expected = []
    for m in rest[:8]:
        sched.step(m) if isinstance(sched, ReduceOnPlateau) else sched.step()
        expected.append([g["lr"] for g in opt.param_groups])
    # continuation B: a fresh optimizer whose lr is the *scheduled* one (as after loading its checkpoint)
    opt2 = make_opt(*[g["lr"] for g in opt.param_groups])
    sched2 = make(opt2)
    sched2.load_state_dict(sd)
    assert sched2.base_lrs == [0.1, 0.02]
    got = []
    for m in rest[:8]:
        sched2.step(m) if isinstance(sched2, ReduceOnPlateau) else sched2.step()
        got.append([g["lr"] for g in opt2.param_groups])
    assert got == expected


def test_load_state_dict_checks():
    sched = CosineSchedule(make_opt(0.1), total_steps=100)
    sd = sched.state_dict()
    assert sd == {"type": "CosineSchedule", "last_step": 0, "base_lrs": [0.1],
                  "config": {"total_steps": 100, "min_lr": 0.0, "warmup_steps": 0, "interval": "step"}}
    other = CosineSchedule(make_opt(0.1), total_steps=200)
    with pytest.raises(ValueError, match=r"total_steps: saved 100, here 200.*strict=False"):
        other.load_state_dict(sd)
    other.load_state_dict({**sd, "last_step": 100}, strict=False)  # keep the new total_steps: 100 of 200
    assert other.get_last_lr() == pytest.approx([0.05])
    with pytest.raises(ValueError, match="state_dict is from a CosineSchedule, not a LinearSchedule"):
        LinearSchedule(make_opt(0.1), total_steps=100).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"1 base rate\(s\) but the optimizer has 2 group\(s\)"):
        CosineSchedule(make_opt(0.1, 0.2), total_steps=100).load_state_dict(sd)


def test_reduce_on_plateau_needs_metric_and_reduces():
    opt = make_opt(1.0)
    sched = ReduceOnPlateau(opt, patience=0, factor=0.5)
    with pytest.raises(TypeError, match=r"needs the monitored metric, e.g. scheduler.step\(val_loss\)"):
        sched.step()
    fresh = json.loads(json.dumps(sched.state_dict(), allow_nan=False))  # best = inf is stored as None
    assert fresh["best"] is None
    sched.load_state_dict(fresh)
    assert sched.best == math.inf
    sched.step(np.float32(1.0))
    sched.step(cr.Tensor(np.array(1.0)))  # no improvement -> halve
    assert opt.param_groups[0]["lr"] == 0.5
    assert sched.interval == "epoch"


@pytest.mark.parametrize("call,error,message", [
    (lambda: CosineSchedule(total_steps=10), ValueError, r"pass either an optimizer .* or base_lr=.*not neither"),
    (lambda: CosineSchedule(make_opt(0.1), base_lr=0.1, total_steps=10), ValueError, r"not both"),
    (lambda: CosineSchedule(object(), total_steps=10), TypeError, r"optimizer must have param_groups"),
    (lambda: CosineSchedule(make_opt(0.1), total_steps=10, interval="batch"), ValueError,
     r"interval must be one of \['step', 'epoch'\], got 'batch'"),
    (lambda: CosineSchedule(make_opt(0.1, 0.001), total_steps=10, min_lr=0.01), ValueError,
     r"min_lr \(0.01\) must not exceed base_lr \(0.001\)"),
    (lambda: LinearSchedule(base_lr=0.1, total_steps=5, warmup_steps=5), ValueError,
     r"total_steps \(5\) must exceed warmup_steps \(5\)"),
    (lambda: StepSchedule(base_lr=0.1, milestones=[5, 2]), ValueError, r"strictly increasing, got \[5, 2\]"),
    (lambda: ReduceOnPlateau(base_lr=0.1, mode="minimum"), ValueError, r"mode must be 'min' .* got 'minimum'"),
    (lambda: ReduceOnPlateau(base_lr=0.1, factor=1.0), ValueError, r"factor must be < 1 .* got 1.0"),
    (lambda: ReduceOnPlateau(base_lr=0.1, threshold_mode="relative"), ValueError, r"'rel' or 'abs'"),
    (lambda: ReduceOnPlateau(base_lr=0.1, patience=-1), ValueError, r"patience must be an integer >= 0, got -1"),
])
def test_scheduler_validation(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_standalone_preview_and_repr():
    sched = ExponentialSchedule(base_lr=0.5, gamma=0.5)
    np.testing.assert_allclose(sched.values(4), [[0.5], [0.25], [0.125], [0.0625]])
    assert repr(sched) == "ExponentialSchedule(gamma=0.5, warmup_steps=0, interval='step', base_lrs=[0.5], last_step=0)"


def test_plot_writes_png_and_leaves_pyplot_alone(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    backend = matplotlib.get_backend()
    sched = CosineSchedule(make_opt(0.1, 0.05), total_steps=100, warmup_steps=10)
    fig = sched.plot(120, path=tmp_path / "lr.png")
    data = (tmp_path / "lr.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # two groups and the warmup marker
    np.testing.assert_allclose(ax.lines[1].get_ydata(), sched.values(120)[:, 1])
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "learning rate"
    assert sched.last_step == 0 and matplotlib.get_backend() == backend


# ---- make_schedule -----------------------------------------------------------------------------------------


def test_make_schedule_builds_each_named_schedule():
    kwargs = {"constant": {}, "step": {"milestones": [30, 60, 90]}, "exponential": {"gamma": 0.9},
              "cosine": {"total_steps": 100}, "linear": {"total_steps": 100}, "invsqrt": {},
              "plateau": {"patience": 3}}
    assert set(kwargs) == set(SCHEDULES)
    for name, kw in kwargs.items():
        s = make_schedule(name, make_opt(0.1), **kw)
        assert isinstance(s, SCHEDULES[name])
        assert s.get_last_lr() == [0.1]
    s = make_schedule("Cosine", base_lr=0.1, total_steps=100, warmup=10, min_lr=0.001)
    assert (s.warmup_steps, s.total_steps, s.min_lr) == (10, 100, 0.001)
    assert s.lr_at(0) == [pytest.approx(0.1 / 11)]
    assert make_schedule("step", base_lr=1.0, milestones=[30, 60, 90]).lr_at(60) == [pytest.approx(0.01)]


def test_make_schedule_errors_list_valid_choices():
    with pytest.raises(ValueError, match=r"unknown schedule 'cosin' \(did you mean 'cosine'\?\); valid names: "
                                         r"constant, step, exponential, cosine, linear, invsqrt, plateau"):
        make_schedule("cosin", base_lr=0.1)
    with pytest.raises(TypeError, match=r"schedule 'cosine' got unexpected argument\(s\) \['gama'\]; it accepts "
                                        r"\['base_lr', 'interval', 'min_lr', 'total_steps', 'warmup'\]"):
        make_schedule("cosine", base_lr=0.1, total_steps=10, gama=0.1)
    with pytest.raises(TypeError, match="as warmup=, not warmup_steps="):
        make_schedule("cosine", base_lr=0.1, total_steps=10, warmup_steps=2)
    with pytest.raises(ValueError, match=r"schedule 'plateau' does not support warmup, got warmup=5"):
        make_schedule("plateau", base_lr=0.1, warmup=5)
    with pytest.raises(ValueError, match=r"warmup_steps must be an integer >= 0, got -1"):
        make_schedule("constant", base_lr=0.1, warmup=-1)
