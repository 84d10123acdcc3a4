"""`chainrule train / evaluate / predict` end to end on tiny data, checking every file of the run folder; resuming a
finished run, extending it; kNN with --select-k; config-file layers."""

import base64
import csv
import json
import re

import numpy as np
import pytest

import chainrule.classifiers as classifiers
from chainrule.cli import main
from chainrule.train import load_checkpoint, read_metrics_csv

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib

PNG = b"\x89PNG\r\n\x1a\n"
TINY = ["--data", "digits", "--model", "mlp", "--hidden", "16", "--epochs", "2", "--batch-size", "128", "-q"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "digits-mlp"
    assert main(["train", *TINY, "--dropout", "0.1", "--seed", "3", "--out", str(run)]) == 0
    return run


def _png_ok(path):
    data = path.read_bytes()
    return data.startswith(PNG) and len(data) > 2000


def test_run_folder_has_every_file_and_each_is_valid(digits_run):
    run = digits_run
    names = sorted(p.name for p in run.iterdir())
    assert names == [".lock", "checkpoints", "config.toml", "metrics.csv", "metrics.jsonl", "model.npz", "plots",
                     "report.html", "summary.json"]
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["random_state"] == 3 and config["hidden_sizes"] == [16] and config["data"] == "digits"
    assert config["chainrule_version"] and config["epochs"] == 2 and config["dropout"] == 0.1
    assert config["format"] == 2 and config["estimator"] == "MLPClassifier" and config["norm"] == "none"

    rows = read_metrics_csv(run / "metrics.csv")
    steps = [r for r in rows if r["kind"] == "step"]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert len(steps) == 2 * 13 and [r["step"] for r in steps] == list(range(1, 27))  # 1617 / 128 -> 13 batches
    assert [r["epoch"] for r in epochs] == [1, 2] and all(0 <= r["val_acc"] <= 1 for r in epochs)
    assert all(np.isfinite(r["loss"]) and r["lr"] >= 0 and r["grad_norm"] > 0 for r in steps)
    with open(run / "metrics.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:3] == ["kind", "epoch", "step"]
    jl = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(jl) == len(rows) and jl[-1]["kind"] == "epoch" and "diagnostics" in jl[-1]

    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["estimator"] == "MLPClassifier"
    assert summary["epochs_completed"] == 2 and summary["steps"] == 26 and summary["num_val"] == 180
    assert summary["val_acc"] == epochs[-1]["val_acc"]  # the model is the last epoch's, as fit leaves it
    assert summary["best_val_acc"] == max(r["val_acc"] for r in epochs)
    assert summary["train_samples_per_s"] > 0 and summary["wall_time_s"] > 0
    assert np.sum(summary["confusion_matrix"]) == 180 and set(summary["per_class_val_acc"]) == set("0123456789")

    model = classifiers.load(run / "model.npz")  # the fitted estimator, loadable from Python
    assert type(model).__name__ == "MLPClassifier" and model.get_params()["hidden_sizes"] == [16]
    assert model.n_steps_ == 26 and model.random_state == 3

    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts[-2:] == ["step-00000013.npz", "step-00000026.npz"] and len(ckpts) in (2, 3)  # (+ best.npz)
    state = load_checkpoint(run / "checkpoints" / "step-00000026.npz")
    assert state["counters"]["step"] == 26 and state["config"]["params"]["random_state"] == 3
    assert state["config"]["estimator"] == "MLPClassifier" and state["metadata"]["kind"] == "chainrule.estimator.fit"
    assert state["loader"]["epoch"] == 2 and state["rng"]["model"]  # the dropout generator is in there

    plots = sorted(p.name for p in (run / "plots").iterdir())
    assert plots == ["accuracy.png", "confusion.png", "examples.png", "loss.png", "lr.png", "per_class.png",
                     "update_ratio.png", "weights.png"]
    assert all(_png_ok(run / "plots" / p) for p in plots)

    html = (run / "report.html").read_text()
    for p in plots:
        assert f'href="plots/{p}"' in html
        assert base64.b64encode((run / "plots" / p).read_bytes()).decode() in html
    assert "Validation accuracy per class" in html and "Diagnostics" in html


def test_evaluate_prints_and_writes_results(digits_run, capsys):
    assert main(["evaluate", str(digits_run), "--split", "val"]) == 0
    out = capsys.readouterr().out
    acc = float(re.search(r"accuracy: ([\d.]+)%", out).group(1))
    summary = json.loads((digits_run / "summary.json").read_text())
    assert acc == pytest.approx(100 * summary["val_acc"], abs=0.01)  # model.npz, the same split
    assert "per-class accuracy" in out and "<- predicted" in out
    result = json.loads((digits_run / "eval-val.json").read_text())
    assert result["num_samples"] == 180 and np.sum(result["confusion_matrix"]) == 180
    assert _png_ok(digits_run / "plots" / "confusion-val.png")
    # A checkpoint file works too, and the train split is available.
    assert main(["evaluate", str(digits_run / "checkpoints" / "step-00000013.npz"), "--split", "train"]) == 0
    assert "train split: 1617 samples" in capsys.readouterr().out


def test_predict_top3_on_image_files(digits_run, tmp_path, capsys):
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    paths = []
    for i in (0, 1):
        p = tmp_path / f"digit{i}.png"
        Image.fromarray((d.images[i] / 16 * 255).astype(np.uint8)).resize((24, 24)).save(p)
        paths.append(str(p))
    assert main(["predict", str(digits_run), *paths]) == 0
    out = capsys.readouterr().out
    assert out.count("  1. ") == 2 and out.count("  3. ") == 2 and "resized 24x24 -> 8x8" in out
    probs = [float(x) for x in re.findall(r"(\d+\.\d+)%", out)]
    assert len(probs) == 6 and all(0 <= p <= 100 for p in probs)
    assert main(["predict", str(digits_run), paths[0], "--top", "10"]) == 0
    top10 = [float(x) for x in re.findall(r"(\d+\.\d+)%", capsys.readouterr().out)]
    assert sum(top10) == pytest.approx(100, abs=0.05) and top10 == sorted(top10, reverse=True)


def test_resume_of_a_finished_run_says_it_is_complete(digits_run, capsys):
    before = (digits_run / "checkpoints" / "step-00000026.npz").read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(digits_run), "-q"]) == 0
    assert "is complete (2 epoch(s), 26 steps); nothing to resume" in capsys.readouterr().out
    assert (digits_run / "checkpoints" / "step-00000026.npz").read_bytes() == before
    assert len(read_metrics_csv(digits_run / "metrics.csv")) == 28


def test_a_finished_run_is_extended_by_a_larger_epochs(tmp_path, capsys):
    """--resume RUN --epochs N continues from the last step with the schedule rebuilt for N epochs: the cosine of
    the longer run from that step on (docs/cli.md), and the extended run says so in config.toml."""
    run = tmp_path / "ext"
    args = ["--data", "digits", "--hidden", "8", "--batch-size", "256", "--schedule", "cosine", "--no-diagnostics",
            "-q"]
    assert main(["train", *args, "--epochs", "2", "--out", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "4", "-q"]) == 0
    rows = read_metrics_csv(run / "metrics.csv")
    steps = [r for r in rows if r["kind"] == "step"]
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1, 2, 3, 4] and len(steps) == 4 * 7
    lr = [r["lr"] for r in steps]
    from chainrule.optim.schedules import cosine

    # Steps 15..28 follow the 4-epoch cosine (28 steps) at their step numbers; steps 1..14 the 2-epoch one.
    assert lr[14:] == pytest.approx([cosine(s, 1e-3, 28) for s in range(14, 28)], rel=1e-6)
    assert lr[:14] == pytest.approx([cosine(s, 1e-3, 14) for s in range(14)], rel=1e-6)
    assert tomllib.loads((run / "config.toml").read_text())["epochs"] == 4
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_completed"] == 4 and summary["steps"] == 28 and summary["status"] == "complete"
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "-q"]) == 0
    assert "is complete (4 epoch(s), 28 steps)" in capsys.readouterr().out


def test_spiral_run_draws_the_decision_boundary(tmp_path, capsys):
    run = tmp_path / "spiral"
    assert main(["train", "--data", "spiral", "--model", "mlp", "--hidden", "50", "--weight-decay", "1e-3",
                 "--lr", "0.02", "--epochs", "40", "--batch-size", "64", "--no-diagnostics", "--out", str(run),
                 "-q"]) == 0
    assert _png_ok(run / "plots" / "decision_boundary.png")
    assert not (run / "plots" / "weights.png").exists()  # 2-D points are not images
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_train_acc"] > 0.85  # the two-layer net separates the spiral
    assert "validation accuracy" in capsys.readouterr().out


def test_linear_svm_shows_one_template_per_class_and_config_file_layers(tmp_path):
    cfg = tmp_path / "svm.toml"
    cfg.write_text('model = "svm"\nepochs = 1\nbatch-size = 256\nlr = 0.5\nseed = 4\n')
    run = tmp_path / "svm"
    assert main(["train", "--config", str(cfg), "--lr", "0.01", "--out", str(run), "-q"]) == 0
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["model"] == "svm" and config["lr"] == 0.01 and config["batch_size"] == 256  # flags win
    assert config["data"] == "digits" and config["random_state"] == 4 and config["optimizer"] == "sgd"
    assert "hidden_sizes" not in config and config["reg"] == 0.1 and config["margin"] == 1.0  # LinearSVM's own
    assert _png_ok(run / "plots" / "weights.png")
    model = classifiers.load(run / "model.npz")
    assert type(model).__name__ == "LinearSVM" and model.W_.shape == (64, 10) and model.n_steps_ == 1617 // 256


def test_default_data_is_announced(tmp_path, capsys):
    run = tmp_path / "default"
    assert main(["train", "--model", "softmax", "--epochs", "1", "--out", str(run)]) == 0
    err = capsys.readouterr().err
    assert "no --data given: using the built-in offline dataset 'digits'" in err
    assert "epoch 1/1" in err  # progress is logged (no bar: not a terminal)


def test_knn_run_chooses_k_on_validation_then_evaluates_and_predicts(tmp_path, capsys):
    run = tmp_path / "knn"
    assert main(["train", "--model", "knn", "--select-k", "1,3,7", "--metric", "l1", "--out", str(run), "-q"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    accs = {int(k): v for k, v in summary["val_acc_by_k"].items()}
    assert set(accs) == {1, 3, 7} and summary["knn_k"] == max(accs, key=lambda k: (accs[k], -k))
    assert summary["val_acc"] == accs[summary["knn_k"]] > 0.9
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["k"] == summary["knn_k"] and config["select_k"] == [1, 3, 7] and config["metric"] == "l1"
    assert sorted(p.name for p in (run / "plots").iterdir()) == ["confusion.png", "examples.png", "knn_k.png",
                                                                 "per_class.png"]
    assert classifiers.load(run / "model.npz").k == summary["knn_k"]
    assert read_metrics_csv(run / "metrics.csv")[0]["val_acc"] == summary["val_acc"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "-q"]) == 0
    acc = float(re.search(r"accuracy: ([\d.]+)%", capsys.readouterr().out).group(1))
    assert acc == pytest.approx(100 * summary["val_acc"], abs=0.01)
    from PIL import Image

    img = tmp_path / "blank.png"
    Image.new("L", (8, 8)).save(img)
    assert main(["predict", str(run), str(img), "-q"]) == 0
    assert "fraction of the k=" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "-q"]) == 0
    assert "a KNearestNeighbor run has no training loop to continue" in capsys.readouterr().out


def test_conv_net_run_draws_its_filters_and_activation_maps_then_predicts(tmp_path, capsys):
    from PIL import Image
    from sklearn.datasets import load_digits

    run = tmp_path / "cnn"
    assert main(["train", "--model", "cnn", "--channels", "4,8", "--epochs", "1", "--batch-size", "128",
                 "--whiten-images", "200", "--augment", "false", "--test-time-flip", "false", "--out", str(run),
                 "-q"]) == 0
    for name in ("weights", "activations", "confusion", "per_class"):
        assert _png_ok(run / "plots" / f"{name}.png"), name
    report = (run / "report.html").read_text()
    assert report.index("weights.png") < report.index("activations.png") < report.index("Configuration")
    model = classifiers.load(run / "model.npz")
    assert type(model).__name__ == "ConvNetClassifier" and model.filter_shape() == (2, 2, 1)
    p = tmp_path / "digit.png"
    Image.fromarray((load_digits().images[0] / 16 * 255).astype(np.uint8)).save(p)
    capsys.readouterr()
    assert main(["predict", str(run), str(p)]) == 0
    assert capsys.readouterr().out.count("  1. ") == 1
