"""`chainrule schedule`, `chainrule gradcheck` and `chainrule compare`."""

import csv
import json
import re

import pytest

from chainrule.cli import main
from chainrule.optim.schedules import cosine

PNG = b"\x89PNG\r\n\x1a\n"


def test_schedule_preview_table_and_plot(tmp_path, capsys):
    png = tmp_path / "lr.png"
    assert main(["schedule", "cosine", "--lr", "0.1", "--steps", "1000", "--warmup", "100", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^\s+(\d+)\s+([\d.e+-]+)$", out, flags=re.M))
    assert len(rows) == 11 and set(rows) >= {"0", "999"}
    for step, lr in rows.items():
        assert float(lr) == pytest.approx(cosine(int(step), 0.1, 1000, 0.0, 100), rel=1e-5)
    assert png.read_bytes().startswith(PNG) and "plot: " in out
    assert main(["schedule", "step", "--lr", "1", "--steps", "10", "--milestones", "3,6", "--gamma", "0.5",
                 "--points", "10"]) == 0
    rows = re.findall(r"^\s+(\d+)\s+([\d.e+-]+)$", capsys.readouterr().out, flags=re.M)
    assert [float(v) for _, v in rows] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]


def test_gradcheck_passes_for_correct_gradients(capsys):
    assert main(["gradcheck", "--model", "mlp", "--hidden", "6,5", "--activation", "tanh", "--norm", "batch",
                 "--dropout", "0.3", "--samples", "15"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(\S+)\s+(\S+)\s+(\d+)\s+([\d.e+-]+)\s+([\d.e+-]+)\s+(ok|FAIL)$", out, flags=re.M)
    names = [r[0] for r in rows]
    assert names[:4] == ["0.weight", "0.bias", "1.weight", "1.bias"] and len(rows) == 10  # 3 Linear + 2 BatchNorm
    assert all(r[5] == "ok" for r in rows)
    # The bias before batch norm has a zero gradient (its relative error is noise); all others are accurate.
    assert all(float(r[3]) < 1e-6 for r in rows if r[0] not in ("0.bias", "4.bias"))
    assert all(float(r[4]) < 1e-8 for r in rows)
    assert main(["gradcheck", "--model", "svm", "--inputs", "5", "--classes", "3"]) == 0
    assert "all 2 parameters pass" in capsys.readouterr().out


def test_gradcheck_fails_on_a_wrong_gradient(monkeypatch, capsys):
    import numpy as np

    from chainrule.nn._functions import loss as loss_functions

    original = loss_functions.CrossEntropy.backward

    def wrong(ctx, grad):
        grads = original(ctx, grad)
        return (grads[0] * np.float64(1.01),) + tuple(grads[1:])  # 1% off: a typical backprop bug

    monkeypatch.setattr(loss_functions.CrossEntropy, "backward", staticmethod(wrong))
    assert main(["gradcheck", "--model", "softmax", "--reg", "0"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "relative error above --tol" in captured.err


def test_compare_writes_one_report(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--data", "spiral", "--models", "knn,softmax,mlp", "--epochs", "3",
                 "--random-tries", "200", "--out", str(out), "-q"]) == 0
    stdout = capsys.readouterr().out
    assert "random search over W" in stdout and "report:" in stdout
    with open(out / "comparison.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == [
        "random search over W", "k-nearest neighbour", "softmax classifier", "MLP (two-layer net)"]
    assert all(0 <= float(r["val_acc"]) <= 1 and float(r["train_time_s"]) >= 0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["rows"]) == 4 and summary["num_val"] == 30
    for sub in ("knn", "softmax", "mlp"):
        assert (out / sub / "report.html").is_file() and (out / sub / "plots" / "decision_boundary.png").is_file()
    html = (out / "report.html").read_text()
    assert 'href="plots/comparison.png"' in html and 'href="mlp/report.html"' in html
    assert html.count("data:image/png;base64,") >= 4
    assert (out / "plots" / "comparison.png").read_bytes().startswith(PNG)


