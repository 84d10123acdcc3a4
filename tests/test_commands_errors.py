"""Errors are one line with the right exit code: 2 for usage errors, 1 for failures; --debug adds the traceback."""

import json
import shutil

import numpy as np
import pytest

from chainrule.cli import main

QUICK = ["--data", "digits", "--epochs", "1", "--batch-size", "256", "-q"]


def _err(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "imagenet"], "unknown dataset spec 'imagenet'; expected one of cifar10, cifar10:PATH"),
    (["train", "--data", "folder:/no/such/dir"],
     "dataset path '/no/such/dir' (from --data folder:/no/such/dir) does not exist"),
    (["train", "--lr", "-1"], "MLPClassifier: lr must be a finite number > 0, got -1.0"),
    (["train", "--model", "svm", "--reg", "-1"], "LinearSVM: reg must be a finite number >= 0, got -1.0"),
    (["train", "--lr", "fast"], "--lr must be a number, got 'fast'"),
    (["train", "--model", "rnn"], "--model must be one of knn, svm, softmax, mlp, cnn; got 'rnn'"),
    (["train", "--optimizer", "adma"], "did you mean 'adam'?"),
    (["train", "--hidden", "100,x"], "--hidden-sizes/--hidden must be a comma-separated list of integers"),
    (["train", "--hidden", "100.7"], "--hidden-sizes/--hidden must be whole numbers, got 100.7 in '100.7'"),
    (["train", "--batch-size", "2.5"], "--batch-size must be a whole number, got 2.5"),
    (["train", "--epochs", "0"], "MLPClassifier: epochs must be an integer >= 1, got 0"),
    (["train", "--dropout", "1.5"], r"MLPClassifier: dropout must be in [0, 1), got 1.5"),
    (["train", "--model", "svm", "--hidden", "10"],
     "--model svm: hidden_sizes (a parameter of MLPClassifier) is not a parameter of LinearSVM (--model svm)"),
    (["train", "--features", "hog_color", "--augment", "true"], "use augment=False with features"),
    (["train", "--preprocessing", "mean"], "preprocessing must be one of ['standardize', 'center', 'zca', None]"),
    (["train", "--model", "mlp", "--select-k", "1,3"], "--select-k chooses a kNN's k; --model mlp has no k"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["evaluate", "/no/such/run"], "/no/such/run does not exist"),
    (["schedule", "cosine", "--steps", "0"], "--steps must be >= 1"),
    (["schedule", "cosin"], "unknown schedule 'cosin' (did you mean 'cosine'?)"),
    (["compare", "--models", "knn,rnn"], "--models must list some of knn, svm, softmax, mlp"),
])
def test_usage_errors_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    line = _err(capsys)
    assert line.startswith(f"chainrule {argv[0]}: error: ") and message in line, line


def test_config_file_errors(tmp_path, capsys):
    bad_key = tmp_path / "a.toml"
    bad_key.write_text("epochz = 3\n")
    assert main(["train", "--config", str(bad_key)]) == 2
    line = _err(capsys)
    assert "unknown setting 'epochz'" in line and "did you mean 'epochs'" in line
    bad_toml = tmp_path / "b.toml"
    bad_toml.write_text("epochs = = 3\n")
    assert main(["train", "--config", str(bad_toml)]) == 2
    assert "is not valid TOML" in _err(capsys)
    assert main(["train", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in _err(capsys)
    wrong_type = tmp_path / "c.toml"
    wrong_type.write_text('epochs = "many"\n')
    assert main(["train", "--config", str(wrong_type)]) == 2
    assert "epochs (in " in _err(capsys)
    fractional = tmp_path / "d.toml"  # used to become [100]
    fractional.write_text("hidden = [100.7]\nbatch_size = 12.5\n")
    assert main(["train", "--config", str(fractional), "--dry-run"]) == 2
    assert "hidden = hidden_sizes (in " in (line := _err(capsys)) and "must be whole numbers, got 100.7 in [100.7]" \
        in line, line


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("errruns")
    assert main(["train", *QUICK, "--model", "mlp", "--hidden", "8", "--out", str(tmp / "mlp")]) == 0
    assert main(["train", *QUICK, "--model", "svm", "--out", str(tmp / "svm")]) == 0
    return tmp


def test_resume_with_a_different_config_names_the_keys(two_runs, capsys):
    capsys.readouterr()
    assert main(["train", "--resume", str(two_runs / "mlp"), "--lr", "0.5", "--hidden", "20", "-q"]) == 2
    line = _err(capsys)
    assert "different configuration" in line and "lr (run has 0.001, requested 0.5)" in line
    assert "hidden_sizes (run has 8, requested 20)" in line
    # Settings that do not change the arithmetic may differ.
    assert main(["train", "--resume", str(two_runs / "mlp"), "--keep-checkpoints", "5", "-q"]) == 0


def test_checkpoint_from_another_model_is_refused(two_runs, tmp_path, capsys):
    run = tmp_path / "mlp"
    shutil.copytree(two_runs / "mlp", run)
    svm_ckpt = sorted((two_runs / "svm" / "checkpoints").glob("step-*"))[-1]
    shutil.copy(svm_ckpt, run / "checkpoints" / "step-99999999.npz")
    (run / "summary.json").unlink()  # as if killed before the end
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "-q"]) == 1
    line = _err(capsys)
    assert "step-99999999.npz is a checkpoint of a LinearSVM fit, but this run trains a MLPClassifier" in line


def test_existing_run_folder_is_not_overwritten(two_runs, capsys):
    capsys.readouterr()
    assert main(["train", *QUICK, "--out", str(two_runs / "mlp")]) == 2
    assert "already holds a run; continue it with --resume" in _err(capsys)


def test_evaluate_errors(two_runs, tmp_path, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(two_runs / "mlp"), "--split", "test", "-q"]) == 2
    assert "digits is the run's own training data and has no test split; use --split val" in _err(capsys)
    assert main(["evaluate", str(two_runs / "mlp"), "--data", "spiral", "-q"]) == 2
    assert "trained on inputs of shape (8, 8, 1), but --data spiral has (2,)" in _err(capsys)
    np.savez(tmp_path / "foreign.npz", w=np.zeros(3))
    assert main(["evaluate", str(tmp_path / "foreign.npz"), "-q"]) == 1
    assert "foreign.npz is neither a chainrule checkpoint nor an estimator file" in _err(capsys)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 truncated")
    assert main(["evaluate", str(broken), "-q"]) == 1
    assert "corrupt or truncated" in _err(capsys)
    assert main(["predict", str(two_runs / "mlp"), str(tmp_path / "nope.png"), "-q"]) == 2
    assert "image" in _err(capsys)


@pytest.mark.parametrize("model", ["softmax", "mlp"])
def test_non_finite_training_writes_outputs_and_exits_1(tmp_path, capsys, model):
    run = tmp_path / "nan"
    assert main(["train", *QUICK, "--model", model, "--lr", "1e30", "--out", str(run)]) == 1
    line = _err(capsys)
    assert line.startswith("chainrule train: error: ") and "(epoch 1): the loss is" in line
    assert f"the run folder {run} holds the metrics and checkpoints up to the last finite step" in line
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["stop_reason"].startswith("non-finite")
    assert (run / "report.html").is_file() and (run / "metrics.csv").is_file()
    assert not (run / "model.npz").exists()


def test_debug_shows_the_traceback(capsys):
    assert main(["train", "--data", "imagenet", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().endswith(
        "expected one of cifar10, cifar10:PATH, folder:PATH, digits, spiral")


def test_help_version_and_no_command(capsys):
    assert main([]) == 2
    assert "train" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("chainrule ")
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--batch-size" in out and "--resume" in out and "--config" in out


def test_real_process_exit_codes(chainrule_process, tmp_path):
    r = chainrule_process(["train", "--lr", "-1"], tmp_path, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "chainrule train: error: MLPClassifier: lr must be a finite number > 0, got -1.0"
    assert r.stdout == ""


def test_resume_without_any_checkpoint_starts_the_run_over(two_runs, tmp_path, capsys):
    from chainrule.train import load_checkpoint

    run = tmp_path / "early"
    shutil.copytree(two_runs / "mlp", run)
    for p in (run / "checkpoints").iterdir():  # as if killed before its first checkpoint
        p.unlink()
    (run / "summary.json").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert "has no checkpoint to continue from: training it from the start" in capsys.readouterr().err
    final = sorted((two_runs / "mlp" / "checkpoints").glob("step-*"))[-1].name
    a = load_checkpoint(two_runs / "mlp" / "checkpoints" / final)["model"]
    b = load_checkpoint(run / "checkpoints" / final)["model"]
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_mixed_image_sizes_suggest_the_image_size_flag_which_works(tmp_path, capsys):
    """The size-mismatch error names a fix the CLI can take (--image-size HxW); with it, the run trains at that size
    and `evaluate` scores the folder at the run's size."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "mixed" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (12 if i == 5 else 8, 8, 3), dtype=np.uint8)).save(
                tmp_path / "mixed" / c / f"{i}.png")
    data = ["--data", f"folder:{tmp_path / 'mixed'}", "--model", "softmax", "--epochs", "1", "--val-size", "4", "-q"]
    assert main(["train", *data, "--out", str(tmp_path / "a")]) == 2
    err = _err(capsys)
    assert "cat/0.png is 8x8 and" in err and "pass --image-size 8x8" in err, err
    assert not (tmp_path / "a").exists()
    assert main(["train", *data, "--image-size", "8x8", "--out", str(tmp_path / "a")]) == 0
    assert 'image_size = "8x8"' in (tmp_path / "a" / "config.toml").read_text()
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "a"), "-q"]) == 0
    assert main(["train", "--data", "digits", "--image-size", "8", "--dry-run", "-q"]) == 2
    assert "--image-size resizes the images of folder:PATH data" in _err(capsys)
    space = tmp_path / "space.toml"
    space.write_text("lr = [0.001, 0.01]\n")
    search = ["tune", *data[:4], "--space", str(space), "--jobs", "1", "--val-size", "4", "-q"]
    assert main([*search, "--out", str(tmp_path / "s")]) == 2
    assert "pass --image-size 8x8" in _err(capsys)
    assert main([*search, "--image-size", "8x8", "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert main(["train", "--from-search", str(tmp_path / "s"), "--epochs", "1", "--val-size", "4",
                 "--out", str(tmp_path / "b"), "-q"]) == 0
    assert 'image_size = "8x8"' in (tmp_path / "b" / "config.toml").read_text()


@pytest.mark.parametrize("model", ["mlp", "knn"])
def test_a_one_class_folder_is_refused_by_the_cli_as_by_the_python_api(model, tmp_path, capsys):
    """The CLI used to train a one-class folder and report "validation accuracy 100.00%". Now both front ends
    refuse it with the estimator's own rule and message, and no run folder is left."""
    from PIL import Image

    from chainrule.classifiers import get_spec
    from chainrule.data import load_image_folder

    (tmp_path / "only" / "cat").mkdir(parents=True)
    for i in range(12):
        Image.new("RGB", (8, 8), (i, 2 * i, 3 * i)).save(tmp_path / "only" / "cat" / f"{i}.png")
    ds = load_image_folder(tmp_path / "only")
    with pytest.raises(ValueError) as api:
        get_spec(model).estimator_class().fit(ds.X_train, ds.y_train)
    capsys.readouterr()
    assert main(["train", "--data", f"folder:{tmp_path / 'only'}", "--model", model, "--out",
                 str(tmp_path / "r"), "-q"]) == 2
    err = _err(capsys)
    assert err == f"chainrule train: error: {api.value}", (err, str(api.value))
    assert "needs samples of at least 2 classes" in err
    assert not (tmp_path / "r").exists()
