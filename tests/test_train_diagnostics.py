"""Learner diagnostics over whole epochs: update/weight ratios that mean something at any point of a schedule,
warnings that the CLI's own defaults do not trip, and messages that say which model they are about."""

import logging

import numpy as np
import pytest

import chainrule.nn.functional as F
from chainrule import nn
from chainrule.cli import main
from chainrule.data import DataLoader, make_spiral
from chainrule.optim import Adam
from chainrule.optim.schedules import CosineSchedule
from chainrule.train import CheckpointManager, Trainer, load_checkpoint
from chainrule.train import diagnostics as diag

X, Y = make_spiral(60, 3, 0.1, 0)


class StepRatios:
    """Callback: ||W_after - W_before|| / ||W_before|| of every step, per epoch, computed independently."""

    def __init__(self):
        self.epochs = []

    def on_epoch_begin(self, trainer):
        self.before = {n: p.data.astype(np.float64) for n, p in trainer.model.named_parameters()}
        self.epochs.append({})

    def on_step_end(self, trainer):
        for n, p in trainer.model.named_parameters():
            b = self.before[n]
            if np.linalg.norm(b) > 0:
                self.epochs[-1].setdefault(n, []).append(np.linalg.norm(p.data - b) / np.linalg.norm(b))
            self.before[n] = p.data.astype(np.float64)


def _trainer(tmp=None, epochs=4, every=None, callbacks=()):
    model = nn.MLP([2, 32, 3], seed=0)
    opt = Adam(model.parameters(), lr=3e-2)
    loader = DataLoader(X, Y, batch_size=32, seed=1)  # 6 steps per epoch: every step is measured
    sched = CosineSchedule(opt, total_steps=epochs * len(loader))
    return Trainer(model, F.cross_entropy, opt, loader, schedule=sched, val_data=(X, Y), epochs=epochs,
                   diagnostics=True, restore_best=False, checkpoints=CheckpointManager(tmp, keep_last=100) if tmp else None,
                   checkpoint_every=every, callbacks=list(callbacks))


def test_update_ratio_is_the_mean_over_the_epochs_steps_even_at_the_end_of_a_cosine_run():
    ratios = StepRatios()
    t = _trainer(callbacks=[ratios])
    t.fit()
    for epoch, measured in zip(t.history.epochs, ratios.epochs):
        rows = {r["name"]: r for r in epoch["diagnostics"]["parameters"]}
        for name, values in measured.items():
            assert rows[name]["update_ratio"] == pytest.approx(np.mean(values), rel=1e-5), (epoch["epoch"], name)
            assert rows[name]["update_ratio_max"] == pytest.approx(np.max(values), rel=1e-5)
            assert rows[name]["steps_measured"] == len(values)
    # The cosine schedule ends near lr 0, so the last step barely moves the weights; the epoch still did.
    last = t.history.epochs[-1]["diagnostics"]["parameters"][0]
    assert last["update_ratio"] > 5 * ratios.epochs[-1][last["name"]][-1] and last["update_ratio"] > 1e-4


def test_measured_steps_are_spread_over_the_epoch_first_and_last_included():
    u = diag.UpdateRatios(samples=4)
    assert [i for i in range(100) if u.measured(i, 100)] == [0, 33, 66, 99]
    assert all(u.measured(i, 3) for i in range(3))
    with pytest.raises(ValueError, match="samples must be an integer >= 1"):
        diag.UpdateRatios(samples=0)


def test_a_run_resumed_inside_an_epoch_reports_the_same_diagnostics(tmp_path):
    straight = _trainer(tmp_path / "a", every=4)
    straight.fit()
    resumed = _trainer(tmp_path / "b", every=4)
    resumed.load_state_dict(load_checkpoint(tmp_path / "a" / "step-00000016.npz"))  # step 4 of epoch 3
    resumed.fit()
    assert [e["diagnostics"]["parameters"] for e in straight.history.epochs] == \
        [e["diagnostics"]["parameters"] for e in resumed.history.epochs]


def test_warning_rules():
    def rows(ratio):
        return {"parameters": [{"name": "W", "shape": [64, 10], "update_ratio": ratio}]}

    assert diag.warnings_for(rows(0.5), epoch=1) == []  # weights grow fast from a small initialisation
    (high,) = diag.warnings_for(rows(0.5), epoch=2)
    assert high.startswith("W: update/weight ratio 5.0e-01 (mean over the epoch)") and "too high?" in high
    assert diag.warnings_for(rows(0.05), epoch=5) == []
    assert "too low?" in diag.warnings_for(rows(1e-6), epoch=5)[0]
    assert diag.warnings_for(rows(1e-6), epoch=5, lr_decayed=True) == []  # expected late in a schedule
    assert diag.warnings_for({"parameters": [{"name": "b", "shape": [10], "update_ratio": 9.0}]}, epoch=3) == []
    assert diag.warnings_for(rows(0.5), epoch=3, step=18) == []  # still growing from the small initial weights
    assert len(diag.warnings_for(rows(0.5), epoch=3, step=51)) == 1


@pytest.mark.parametrize("model", ["svm", "softmax", "mlp"])
def test_cli_defaults_do_not_trip_the_learning_rate_warnings(model, tmp_path, capsys):
    assert main(["train", "--data", "digits", "--model", model, "--out", str(tmp_path / model)]) == 0
    err = capsys.readouterr().err
    # the CLI's defaults: the estimators', the MLP's from its two-layer recipe (chainrule.commands.params.RECIPES)
    last = {"mlp": "epoch 50/50", "svm": "epoch 250/250", "softmax": "epoch 250/250"}[model]
    assert last in err and "learning rate too" not in err, err


def test_compare_names_the_model_in_each_warning(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(diag, "TOO_HIGH_UPDATE_RATIO", 1e-9)  # every epoch after the first now warns
    monkeypatch.setattr(diag, "GROWTH_STEPS", 0)
    assert main(["compare", "--models", "svm,softmax", "--epochs", "2", "--random-tries", "0",
                 "--out", str(tmp_path / "cmp")]) == 0
    err = capsys.readouterr().err.splitlines()
    warned = [line for line in err if "learning rate too high?" in line]
    assert {line.split(":")[0] for line in warned} == {"linear SVM", "softmax classifier"}, err
    assert all(line.startswith(("linear SVM: diagnostics, epoch 2:", "softmax classifier: diagnostics, epoch 2:"))
               for line in warned)
    assert not any(line.startswith("epoch ") for line in err)  # compare keeps per-epoch lines for --verbose


def test_log_context_prefixes_messages_and_restores_levels(capsys):
    from chainrule.commands.common import configure_logging, log_context

    restore = configure_logging()
    try:
        with log_context("MLP (two-layer net)", quiet_info=True):
            logging.getLogger("chainrule.train").info("epoch 1/2  dropped")
            logging.getLogger("chainrule.train").warning("diagnostics, epoch 2: kept")
        logging.getLogger("chainrule").info("after")
    finally:
        restore()
    assert capsys.readouterr().err.splitlines() == ["MLP (two-layer net): diagnostics, epoch 2: kept", "after"]
