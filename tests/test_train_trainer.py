"""The Trainer loop: learning, exact in-process resume, non-finite handling, early stopping, best parameters (also
when a callback stops a run inside an epoch), and the time budget."""

import math

import numpy as np
import pytest

import chainrule.nn.functional as F
from chainrule import Function, nn
from chainrule.data import DataLoader, make_spiral
from chainrule.optim import SGD, Adam
from chainrule.optim.schedules import CosineSchedule, ReduceOnPlateau
from chainrule.train import BudgetSchedule, CheckpointManager, NonFiniteError, TimeBudget, Trainer, load_checkpoint

X, Y = make_spiral(60, 3, 0.1, 0)


def _trainer(tmp=None, epochs=6, dropout=0.1, lr=1e-2, every=None, **kw):
    model = nn.MLP([2, 32, 3], dropout=dropout, seed=0)
    opt = Adam(model.parameters(), lr=lr)
    loader = DataLoader(X, Y, batch_size=32, seed=1)
    sched = CosineSchedule(opt, total_steps=epochs * len(loader))
    return Trainer(model, F.cross_entropy, opt, loader, schedule=sched, val_data=(X, Y), epochs=epochs,
                   regularizer=lambda m: F.l2_penalty(m, 1e-4),
                   checkpoints=CheckpointManager(tmp) if tmp else None, checkpoint_every=every, **kw)


def _params(model):
    return {n: p.data.copy() for n, p in model.named_parameters()}


def test_trainer_learns_the_spiral_and_keeps_the_best_parameters():
    t = _trainer(epochs=30, dropout=0.0, lr=3e-2)
    history = t.fit()
    assert history.num_steps == 30 * 6 and len(history.epochs) == 30
    assert history.epochs[-1]["train_acc"] > 0.9
    assert t.best_val_acc == max(e["val_acc"] for e in history.epochs)
    assert t.best_epoch == 1 + int(np.argmax([e["val_acc"] for e in history.epochs]))
    for name, value in _params(t.model).items():  # restore_best: the model holds the best epoch's weights
        np.testing.assert_array_equal(value, t.best_state[name])
    losses = history.column("loss")
    assert losses[-10:].mean() < 0.5 * losses[:5].mean()
    assert np.all(np.diff(history.column("step")) == 1)


def test_resume_from_a_mid_epoch_checkpoint_is_bit_exact(tmp_path):
    straight = _trainer(tmp_path / "a", every=4, restore_best=False)
    straight.fit()

    class StopAt:
        def on_step_end(self, trainer):
            if trainer.step == 15:  # mid-epoch (6 steps per epoch), after the checkpoint at step 12
                trainer.stop_training = True

    first = _trainer(tmp_path / "b", every=4, restore_best=False, callbacks=[StopAt()])
    first.fit()
    assert first.step == 15 and first.stop_reason == "stopped by a callback"
    state, path = CheckpointManager(tmp_path / "b").load_latest()
    assert path.name == "step-00000015.npz"  # a callback stop inside an epoch leaves a checkpoint there
    # Go back further: resume a fresh trainer from step 12 and let it run to the end.
    resumed = _trainer(tmp_path / "c", every=4, restore_best=False)
    resumed.load_state_dict(load_checkpoint(tmp_path / "b" / "step-00000012.npz"))
    assert resumed.step == 12 and resumed.epoch == 2
    resumed.fit()
    for name, value in _params(straight.model).items():
        np.testing.assert_array_equal(value, _params(resumed.model)[name])
    assert straight.history.steps["loss"] == resumed.history.steps["loss"]
    assert [e["val_acc"] for e in straight.history.epochs] == [e["val_acc"] for e in resumed.history.epochs]
    assert straight.best_epoch == resumed.best_epoch


def test_a_stop_inside_an_epoch_restores_the_best_validated_weights_and_goes_on_from_the_last_step():
    """restore_best, and a callback stops the run at step 15, inside epoch 3 (6 steps per epoch): the model gets the
    weights of the best of the two validated epochs (best_epoch says which), the partial epoch is not validated and
    has no epoch record, state_dict() keeps the weights training reached, and fit() again continues from those,
    ending exactly like a run that was never stopped."""
    snapshots = {}

    class Snapshot:
        def on_epoch_end(self, trainer):
            snapshots[trainer.epoch] = trainer.model.state_dict()

    class StopAt:
        def on_step_end(self, trainer):
            if trainer.step == 15:
                trainer.stop_training = True

    straight = _trainer(callbacks=[Snapshot()])
    straight.fit()
    stopped = _trainer(callbacks=[StopAt()])
    stopped.fit()
    assert stopped.step == 15 and stopped.history.num_steps == 15 and len(stopped.history.epochs) == 2
    scores = [e["val_acc"] for e in stopped.history.epochs]
    assert stopped.best_epoch == 1 + int(np.argmax(scores)) and stopped.best_val_acc == max(scores)
    for name, value in _params(stopped.model).items():
        np.testing.assert_array_equal(value, snapshots[stopped.best_epoch][name])
    reached = stopped.state_dict()["model"]
    assert any(not np.array_equal(reached[n], v) for n, v in _params(stopped.model).items())
    stopped.fit()
    assert stopped.step == 36 and stopped.stop_reason is None
    for name, value in _params(straight.model).items():
        np.testing.assert_array_equal(value, _params(stopped.model)[name])
    assert straight.history.steps["loss"] == stopped.history.steps["loss"]
    assert [e["val_acc"] for e in straight.history.epochs] == [e["val_acc"] for e in stopped.history.epochs]


def test_state_dict_holds_every_piece_of_the_run():
    t = _trainer(epochs=1)
    t.fit()
    s = t.state_dict()
    for key in ("config", "metadata", "model", "best_model", "optimizer", "schedule", "loader", "rng", "history",
                "counters"):
        assert key in s
    assert s["loader"]["epoch"] == 1 and s["loader"]["position"] == 0
    assert s["rng"]["model"]  # the dropout generator
    assert s["schedule"]["last_step"] == 6


class _InfGrad(Function):
    """Identity forward; backward sends inf (to test gradient checks)."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return np.full_like(grad, np.inf)


class _Net(nn.Module):
    def __init__(self, bad_step):
        super().__init__()
        self.lin = nn.Linear(2, 3, seed=0)
        self.calls = 0
        self.bad_step = bad_step

    def forward(self, x):
        out = self.lin(x)
        if self.training:
            self.calls += 1
            if self.calls == self.bad_step:
                out = _InfGrad.apply(out)
        return out


def _simple(model, loss=F.cross_entropy, **kw):
    opt = SGD(model.parameters(), lr=0.1)
    return Trainer(model, loss, opt, DataLoader(X, Y, batch_size=30, seed=0), epochs=2, **kw)


def test_non_finite_gradient_names_the_step_and_the_parameter():
    t = _simple(_Net(bad_step=3))
    with pytest.raises(NonFiniteError, match=r"step 3 \(epoch 1\).*gradient of parameter 'lin\.weight'"):
        t.fit()
    assert t.step == 2  # the bad update was not applied
    assert all(np.all(np.isfinite(p.data)) for p in t.model.parameters())


def test_non_finite_loss_with_stop_policy_ends_training_cleanly():
    calls = {"n": 0}

    def flaky_loss(scores, y):
        calls["n"] += 1
        loss = F.cross_entropy(scores, y)
        return loss * float("nan") if calls["n"] == 5 else loss

    t = _simple(_Net(bad_step=-1), loss=flaky_loss, nan_policy="stop", val_data=(X, Y))
    t.fit()
    assert t.step == 4 and t.stop_reason.startswith("non-finite: step 5") and "the loss is nan" in t.stop_reason
    assert t.history.num_steps == 4
    with pytest.raises(ValueError, match="nan_policy"):
        _simple(_Net(-1), nan_policy="ignore")


def test_early_stopping_and_plateau_schedule():
    model = nn.MLP([2, 8, 3], seed=0)
    opt = Adam(model.parameters(), lr=0.0)  # nothing improves
    sched = ReduceOnPlateau(opt, mode="max", patience=0, factor=0.5)
    t = Trainer(model, F.cross_entropy, opt, DataLoader(X, Y, batch_size=60, seed=0), schedule=sched,
                val_data=(X, Y), epochs=20, early_stopping_patience=2)
    t.fit()
    assert t.epoch == 3 and t.stop_reason.startswith("early stopping")
    with pytest.raises(ValueError, match="needs val_data"):
        Trainer(model, F.cross_entropy, opt, DataLoader(X, Y, batch_size=60), early_stopping_patience=2)


def test_gradient_clipping_bounds_the_update():
    model = nn.Linear(2, 3, seed=0)
    before = model.weight.data.copy(), model.bias.data.copy()
    opt = SGD(model.parameters(), lr=1.0)
    t = Trainer(model, lambda s, y: F.cross_entropy(s, y) * 1000.0, opt, DataLoader(X, Y, batch_size=180),
                epochs=1, clip_grad_norm=0.5)
    t.fit()
    step = np.sqrt(np.sum((model.weight.data - before[0]) ** 2) + np.sum((model.bias.data - before[1]) ** 2))
    assert t.history.steps["grad_norm"][0] > 10  # recorded before clipping
    assert step == pytest.approx(0.5, rel=1e-4)


def test_diagnostics_are_recorded_per_epoch():
    t = _trainer(epochs=2, diagnostics=True)
    t.fit()
    d = t.history.epochs[-1]["diagnostics"]
    names = [r["name"] for r in d["parameters"]]
    assert names == [n for n, _ in t.model.named_parameters()]
    assert all(r["update_ratio"] is not None and r["update_ratio"] > 0 for r in d["parameters"])
    assert [a["name"] for a in d["activations"]] == ["relu 1"] and 0 <= d["activations"][0]["dead_fraction"] <= 1
    assert math.isfinite(d["parameters"][0]["grad_norm"])


def test_running_train_accuracy_without_eval_data():
    t = _trainer(epochs=1)
    t.val_data = None
    t.fit()
    e = t.history.epochs[0]
    assert "val_acc" not in e and 0 <= e["train_acc"] <= 1 and t.best_state is None


# ---- the time budget ---------------------------------------------------------------------------------------------


def test_time_budget_stops_the_trainer_and_stays_spent_across_fit_calls():
    budget = TimeBudget(1e-9)
    t = _trainer(callbacks=[budget])
    t.fit()
    assert budget.spent and t.step == 1 and t.stop_reason == "stopped by a callback"
    assert t.history.epochs == [] and t.best_state is None and t.best_epoch == 0  # the cut-short epoch: no record
    t.fit()  # the budget covers the whole run: a spent one stops before the first step
    assert t.step == 1
    budget.seconds = 3600.0  # a larger budget goes on to the end
    t.fit()
    assert t.step == 36 and len(t.history.epochs) == 6
    with pytest.raises(ValueError, match="seconds must be a finite number > 0, got 0"):
        TimeBudget(0)


def test_time_budget_does_not_count_the_epoch_end_work(monkeypatch):
    """Validation, diagnostics and checkpoints at an epoch's end do not spend the budget (a fake clock: each step
    takes 1 s, each epoch's end 100 s)."""
    from chainrule.train import budget as budget_module

    clock = [0.0]
    monkeypatch.setattr(budget_module.time, "perf_counter", lambda: clock[0])

    class Ticker:
        def on_step_end(self, trainer):
            clock[0] += 1.0

        def on_epoch_end(self, trainer):
            clock[0] += 100.0

    budget = TimeBudget(1000.0)
    t = _trainer(epochs=3, callbacks=[Ticker(), budget])
    t.fit()
    assert t.epoch == 3 and budget.used == t.step and not budget.spent
    budget2 = TimeBudget(t.step / 3 + 0.5)  # a bit more than one epoch of steps: stops early in epoch 2
    t2 = _trainer(epochs=3, callbacks=[Ticker(), budget2])
    t2.fit()
    assert budget2.spent and t2.epoch == 1 and t2.step == len(t2.train_loader) + 1


def test_budget_schedule_anneals_over_the_budget_or_the_steps():
    opt = SGD([nn.Parameter(np.zeros(2, np.float32))], lr=0.1)
    budget = TimeBudget(100.0)
    schedule = BudgetSchedule(opt, "cosine", total_steps=1000, warmup_steps=4, budget=budget)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 5)  # warmup ramp, step 0
    for _ in range(10):
        schedule.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.01)))  # by steps
    budget.on_train_begin(None)
    budget.start -= 50.0  # half the budget spent: progress 0.5 beats 10 / 1000 steps
    schedule.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05, rel=1e-3)
    budget.start -= 60.0
    schedule.step()
    assert opt.param_groups[0]["lr"] == 0.0
    other = SGD([nn.Parameter(np.zeros(2, np.float32))], lr=0.1)
    resumed = BudgetSchedule(other, "linear", total_steps=1000, warmup_steps=4, budget=TimeBudget(100.0))
    with pytest.raises(ValueError, match="state_dict is from a CosineSchedule, not a BudgetSchedule"):
        resumed.load_state_dict({"type": "CosineSchedule"})
    resumed.load_state_dict(schedule.state_dict())
    assert resumed.last_step == 12 and other.param_groups[0]["lr"] == pytest.approx(0.1 * (1 - 0.012))
    with pytest.raises(ValueError, match=r"shape must be one of \['constant', 'linear', 'cosine'\], got 'step'"):
        BudgetSchedule(opt, "step", total_steps=10, warmup_steps=0, budget=budget)


def test_stop_is_a_kind_with_a_message_and_checkpoints_keep_both():
    from chainrule.train.resume import check_trainer_state, load_trainer_state, trainer_state
    from chainrule.train.stopping import StopReason

    assert StopReason.CALLBACK.final is False and StopReason.EARLY_STOPPING.final and StopReason.NON_FINITE.final
    assert StopReason.from_message("early stopping: no gain") is StopReason.EARLY_STOPPING
    assert StopReason.from_message("non-finite: step 3") is StopReason.NON_FINITE
    assert StopReason.from_message("stopped by a callback") is StopReason.CALLBACK
    t = _trainer(epochs=2)
    t._stopped(StopReason.EARLY_STOPPING, "early stopping: no validation-accuracy gain above 0 for 2 epoch(s)")
    assert t.stop_reason.startswith("early stopping") and t.finished
    state = trainer_state(t)
    assert state["counters"]["stop_kind"] == "early_stopping"
    check_trainer_state(state)
    u = _trainer(epochs=2)
    load_trainer_state(u, state)
    assert u.stop is StopReason.EARLY_STOPPING and u.stop_reason == t.stop_reason and u.stop_training
    del state["counters"]["stop_kind"]  # a checkpoint from before the kinds: read from the message
    load_trainer_state(u, state)
    assert u.stop is StopReason.EARLY_STOPPING
    state["counters"]["stop_kind"] = "tired"
    with pytest.raises(ValueError, match="counters.stop_kind must be one of"):
        check_trainer_state(state)
