"""Run-folder pieces: metrics files, TOML, plots, the HTML report, learner diagnostics."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from chainrule import Tensor, nn
from chainrule.train import History, MetricsWriter, confusion_matrix, dumps_toml, read_metrics_csv
from chainrule.train import diagnostics as diag
from chainrule.train import plots
from chainrule.train.report import html_table, write_report

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib

PNG = b"\x89PNG\r\n\x1a\n"


def _history(steps=10, per_epoch=5):
    h = History()
    for s in range(1, steps + 1):
        h.log_step(s, (s - 1) // per_epoch + 1, 2.0 / s, 0.1 * (1 - s / steps), 1.0 + s)
        if s % per_epoch == 0:
            h.log_epoch({"epoch": s // per_epoch, "step": s, "train_loss": 1.0, "train_acc": 0.5 + s / 100,
                         "val_acc": 0.4 + s / 100, "val_loss": float("nan"), "lr": 0.05, "time_s": 1.0,
                         "samples_per_s": 100.0, "diagnostics": {"parameters": [], "activations": []}})
    return h


def test_metrics_writer_writes_csv_and_jsonl_in_training_order(tmp_path):
    h = _history()
    holder = SimpleNamespace(history=History())
    w = MetricsWriter(tmp_path)
    w.on_train_begin(holder)
    holder.history = h
    w.on_step_end(holder)
    w.on_epoch_end(holder)
    w.on_train_end(holder)
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    kinds = [r["kind"] for r in rows]
    assert kinds == ["step"] * 10 + ["epoch"] * 2  # (all steps were written before the epochs here)
    assert rows[0]["loss"] == 2.0 and rows[0]["step"] == 1 and rows[-1]["val_acc"] == pytest.approx(0.5)
    assert math.isnan(rows[-1]["val_loss"])
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and lines[-1]["val_loss"] is None and "diagnostics" in lines[-1]


def test_metrics_writer_rewrites_from_history_on_resume(tmp_path):
    h = _history()
    w = MetricsWriter(tmp_path)
    w.on_train_begin(SimpleNamespace(history=h))  # a resumed run: the past comes from the checkpoint
    w.close()
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    assert [(r["kind"], r["step"]) for r in rows][4:7] == [("step", 5), ("epoch", 5), ("step", 6)]
    assert len(rows) == 12
    state = h.state_dict()
    h2 = History()
    h2.load_state_dict(state)
    assert h2.steps == h.steps and h2.epochs[0]["val_acc"] == h.epochs[0]["val_acc"]


def test_toml_writer_round_trips_through_tomllib():
    config = {"name": 'a "run"\nwith\ttabs \\ and ünïcode', "lr": 1e-4, "big": 3e20, "n": 7, "flag": False,
              "hidden": [1024, 1024], "empty": [], "nan": float("nan"), "inf": float("-inf"), "skip": None,
              "key with space": 1, "table": {"a": 1, "b": [0.5, "x"], "c": None}}
    back = tomllib.loads(dumps_toml(config))
    assert math.isnan(back.pop("nan")) and back.pop("inf") == float("-inf")
    expected = {k: v for k, v in config.items() if k not in ("nan", "inf", "skip")}
    expected["table"] = {"a": 1, "b": [0.5, "x"]}
    assert back == expected
    with pytest.raises(TypeError, match="cannot write x"):
        dumps_toml({"x": object()})


def _is_png(path):
    data = open(path, "rb").read()
    return data.startswith(PNG) and len(data) > 2000


def test_every_plot_writes_a_png(tmp_path):
    h = _history(steps=300, per_epoch=30)
    plots.plot_loss(h.column("step"), h.column("loss"), tmp_path / "loss.png", epoch_steps=[30, 60])
    plots.plot_accuracy(h.epoch_column("epoch"), h.epoch_column("train_acc"), h.epoch_column("val_acc"),
                        tmp_path / "acc.png", best_epoch=3)
    plots.plot_lr(h.column("step"), h.column("lr"), tmp_path / "lr.png")
    cm = confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    plots.plot_confusion(cm, ["cat", "dog", "ship"], tmp_path / "cm.png")
    plots.plot_weights(np.random.default_rng(0).standard_normal((32 * 32 * 3, 10)), (32, 32, 3),
                       tmp_path / "w.png", titles=[str(i) for i in range(10)])
    plots.plot_weights(np.ones((64, 100)), (8, 8, 1), tmp_path / "w1.png")
    X = np.random.default_rng(0).standard_normal((50, 2))
    plots.plot_decision_boundary(lambda P: (P[:, 0] > 0).astype(int), X, (X[:, 0] > 0).astype(int),
                                 tmp_path / "db.png", resolution=50)
    plots.plot_comparison(["a", "b"], [0.1, 0.9], tmp_path / "cmp.png", train_times=[1.0, 2.0])
    for name in ("loss", "acc", "lr", "cm", "w", "w1", "db", "cmp"):
        assert _is_png(tmp_path / f"{name}.png"), name
    with pytest.raises(ValueError, match="pixels"):
        plots.plot_weights(np.ones((10, 3)), (8, 8, 1), tmp_path / "bad.png")
    s = plots.smooth(np.array([1.0, np.nan, 3.0]), beta=0.5)
    assert s[0] == 1.0 and s[1] == 1.0 and 1.0 < s[2] < 3.0


def test_report_embeds_and_links_plots(tmp_path):
    (tmp_path / "plots").mkdir()
    png = tmp_path / "plots" / "loss.png"
    plots.plot_lr([0, 1], [1.0, 0.5], png)
    out = write_report(tmp_path / "report.html", "Run <1>", sections=[("Summary", html_table([{"acc": 0.5}]))],
                       plots=[("Loss & co", png), ("missing", tmp_path / "nope.png")])
    text = out.read_text()
    assert "<title>Run &lt;1&gt;</title>" in text and "Loss &amp; co" in text
    assert 'href="plots/loss.png"' in text and text.count("data:image/png;base64,") == 1
    assert "nope.png" not in text


def test_dead_relu_and_saturation_statistics():
    model = nn.Sequential(nn.Linear(4, 6, seed=0), nn.ReLU(), nn.Linear(6, 5, seed=1), nn.Tanh())
    model[0].bias.data[:3] = -100.0  # three units can never fire
    model[2].weight.data *= 1000.0   # tanh driven into saturation
    x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    stats = diag.activation_stats(model, x)
    assert [s["name"] for s in stats] == ["relu 1", "tanh 1"]
    assert stats[0]["dead_fraction"] == pytest.approx(0.5) and stats[0]["units"] == 6
    assert stats[1]["saturated_fraction"] > 0.9
    warn = diag.warnings_for({"activations": stats, "parameters": [
        {"name": "w", "shape": [4, 6], "update_ratio": 0.5}]})
    assert any("update/weight ratio" in w for w in warn) and any("saturated" in w for w in warn)


def test_parameter_stats_update_ratio():
    p = Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    before = diag.snapshot([("w", p)])
    p.data -= 0.001
    p.grad = np.full((2, 2), 3.0, dtype=np.float32)
    (row,) = diag.parameter_stats([("w", p)], before)
    assert row["weight_norm"] == pytest.approx(2 * 0.999, rel=1e-6)
    assert row["grad_norm"] == pytest.approx(6.0) and row["update_ratio"] == pytest.approx(1e-3, rel=1e-3)


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import io

    monkeypatch.setenv("COLUMNS", "200")  # a StringIO has no terminal size: a wide one, so nothing is cut off

    import chainrule.nn.functional as F
    from chainrule.data import DataLoader, make_spiral
    from chainrule.optim import SGD
    from chainrule.train import ProgressBar, Trainer

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    X, y = make_spiral(20, 3, 0.1, 0)
    for stream, expect in ((Terminal(), True), (io.StringIO(), False)):
        model = nn.MLP([2, 4, 3], seed=0)
        bar = ProgressBar(stream=stream, refresh_every=1, mininterval=0, delay=0)
        Trainer(model, F.cross_entropy, SGD(model.parameters(), lr=0.1), DataLoader(X, y, batch_size=10),
                epochs=2, callbacks=[bar]).fit()
        text = stream.getvalue()
        assert ("epoch 2/2" in text and "samples/s" in text and "lr 0.1" in text) == expect, text
    assert not ProgressBar(enabled=False, stream=Terminal()).enabled


HOSTILE = ["<script>alert(1)</script>", "a & b", r"$\frac{1$", 'say "hi"']  # the third breaks mathtext


def test_example_order_puts_mistakes_first_and_keeps_some_correct_ones():
    y_true = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    y_pred = np.array([0, 2, 2, 1, 1, 2, 0, 0, 2, 0])  # mistakes at 1, 3, 7
    order = plots.example_order(y_true, y_pred, 6)
    assert sorted(order[:3].tolist()) == [1, 3, 7] and all(y_true[order[3:]] == y_pred[order[3:]])
    assert len(plots.example_order(y_true, y_pred, 4)) == 4  # at most half mistakes when both kinds exist
    assert sum(y_true[plots.example_order(y_true, y_pred, 4)] != y_pred[plots.example_order(y_true, y_pred, 4)]) == 2
    all_wrong = plots.example_order(np.zeros(5, int), np.ones(5, int), 3)
    assert len(all_wrong) == 3


def test_run_report_leads_with_pictures_and_escapes_class_names(tmp_path):
    from chainrule.runs.outputs import write_run_report
    from chainrule.train import RunFolder

    run = RunFolder(tmp_path / "run").create()
    run.plots_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    cm = confusion_matrix(y_true, y_pred, 4)
    figures = []
    # Given in another order than the report's: it puts curves, confusion, per class, examples, templates first.
    for name, draw in [
        ("weights", lambda p: plots.plot_weights(rng.standard_normal((8 * 8 * 3, 4)), (8, 8, 3), p, titles=HOSTILE)),
        ("examples", lambda p: plots.plot_examples(rng.integers(0, 255, (60, 8, 8, 3), dtype=np.uint8), y_true,
                                                   y_pred, HOSTILE, p)),
        ("per_class", lambda p: plots.plot_per_class(dict(zip(HOSTILE, [0.5, 0.1, None, 1.0])), p)),
        ("confusion", lambda p: plots.plot_confusion(cm, HOSTILE, p)),
        ("loss", lambda p: plots.plot_loss([1, 2, 3], [2.0, 1.0, 0.5], p)),
        ("accuracy", lambda p: plots.plot_accuracy([1, 2], [0.5, 0.6], [0.4, 0.5], p)),
        ("update_ratio", lambda p: plots.plot_update_ratios([1, 2], {"0.weight": [1e-2, 1e-3]}, p)),
    ]:
        png = run.plots_dir / f"{name}.png"
        draw(png)
        assert _is_png(png), name
        figures.append((f"{name} <caption>", png))
    summary = {"model": "mlp", "data": "folder:x", "val_acc": 0.25, "num_train": 100, "num_val": 60,
               "per_class_val_acc": dict(zip(HOSTILE, [0.5, 0.1, None, 1.0]))}
    text = write_run_report(run, summary, {"model": "mlp"}, figures).read_text()
    assert text.index("<img") < text.index("<table")  # pictures first, then the tables
    assert 'class="headline"' in text and "25.00%" in text[:text.index("<img")]
    pos = [text.index(f'href="plots/{n}.png"') for n in ("accuracy", "loss", "confusion", "per_class", "examples",
                                                         "weights", "update_ratio")]
    assert pos == sorted(pos)
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "a &amp; b" in text
    assert "&lt;caption&gt;" in text and "<caption>" not in text


def test_activation_maps_picture(tmp_path):
    from pathlib import Path

    from chainrule.train.activation_plots import _resize_nearest, plot_activation_maps

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 8, 8, 3)).astype(np.uint8)
    maps = [rng.normal(size=(3, 5, 4, 4)), rng.normal(size=(3, 2, 2, 2))]
    out = plot_activation_maps(images, maps, tmp_path / "act.png", names=["b1", "b2"], channels=4)
    assert Path(out).stat().st_size > 1000
    up = _resize_nearest(np.arange(4.0).reshape(1, 1, 2, 2), 4, 4)
    np.testing.assert_array_equal(up[0, 0], [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    with pytest.raises(ValueError, match="one \\(n, C, H, W\\) array per block"):
        plot_activation_maps(images, [maps[0][:2]], tmp_path / "bad.png")


def test_progress_eta_is_at_most_what_a_time_budget_has_left():
    """A run with a time budget ends when the budget is spent, however many epochs it allows: the ETA is the
    smaller of the rate's estimate and the budget's remainder (a 100-epoch bound must not show hours)."""
    import io

    from chainrule.progress import Progress

    left = [30.0]
    bar = Progress(1000, "training", "steps", stream=io.StringIO(), enabled=True, time_left=lambda: left[0])
    bar.start -= 10.0  # 10 s in, 10 of 1000 steps done: the rate says 990 s to go
    bar.set(10)
    assert bar.eta() == pytest.approx(30.0)
    left[0] = 5000.0  # the budget is not the limit: the rate's estimate is
    assert bar.eta() == pytest.approx(990.0, rel=1e-3)
    left[0] = -1.0  # spent (the last step may run past it)
    assert bar.eta() == 0.0
    bar.close()
    unbounded = Progress(1000, "training", "steps", stream=io.StringIO(), enabled=True)
    unbounded.start -= 10.0
    unbounded.set(10)
    assert unbounded.eta() == pytest.approx(990.0, rel=1e-3)
    unbounded.close()


def test_progress_bar_takes_its_eta_bound_from_the_trainers_time_budget():
    import io

    import chainrule.nn.functional as F
    from chainrule.data import DataLoader, make_spiral
    from chainrule.optim import SGD
    from chainrule.train import ProgressBar, TimeBudget, Trainer

    class Spy:  # the ETA the bar would show after each step
        def __init__(self):
            self.etas = []

        def on_step_end(self, trainer):
            self.etas.append(bar._bar.eta())

    X, y = make_spiral(20, 3, 0.1, 0)
    model = nn.MLP([2, 4, 3], seed=0)
    bar = ProgressBar(stream=io.StringIO(), refresh_every=1, mininterval=0, delay=0)
    budget = TimeBudget(0.3)
    trainer = Trainer(model, F.cross_entropy, SGD(model.parameters(), lr=0.1), DataLoader(X, y, batch_size=10),
                      epochs=100_000, callbacks=[budget, bar, spy := Spy()])
    trainer.fit()
    assert budget.spent and spy.etas and all(e is not None and e <= 0.3 for e in spy.etas[1:])
