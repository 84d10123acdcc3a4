"""Exact resume for real: `chainrule train` processes SIGKILLed at random points (real child processes, no cleanup,
no atexit, no flushing), resumed in fresh processes, end with bit-identical parameters and metrics to a run that was
never interrupted, for the MLP, the conv net and the linear models; a corrupt latest checkpoint is survived; run folders of
chainrule 0.1 are refused with a message saying so."""

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import chainrule.classifiers as classifiers
from chainrule.cli import main
from chainrule.train import read_metrics_csv

FIXTURES = Path(__file__).parent / "fixtures" / "run_format1"
# Every RNG stream matters: dropout and flips + crops for the MLP, mirrored half-batches for the softmax
# classifier; the SVM's fractional epochs end inside an epoch (max_steps). 13 steps per epoch of 128 samples.
RUNS = {
    "mlp": ["--model", "mlp", "--hidden", "32", "--dropout", "0.2", "--augment", "true", "--epochs", "3",
            "--batch-size", "128"],
    "softmax": ["--model", "softmax", "--augment", "flip", "--optimizer", "sgd", "--epochs", "3",
                "--batch-size", "128"],
    "svm": ["--model", "svm", "--optimizer", "adam", "--lr", "1e-3", "--epochs", "2.5", "--batch-size", "128"],
    # alternating flips + translations, Lookahead's slow weights, batch norm's running statistics
    "cnn": ["--model", "cnn", "--channels", "4,8", "--epochs", "3", "--batch-size", "128", "--whiten-images", "200"],
}
STEPS = {"mlp": 39, "softmax": 36, "svm": 30, "cnn": 39}  # the linear models drop an epoch's last partial batch
COMMON = ["train", "--data", "digits", "--checkpoint-every", "4", "--keep-checkpoints", "2", "-q"]

# Runs the real CLI in a child process that SIGKILLs itself right after optimizer step `kill_at`: whatever the last
# checkpoint on disk is, that is what the resume gets.
KILLER = textwrap.dedent("""
    import os, signal, sys
    from chainrule.train import trainer as T
    kill_at = int(sys.argv[1])
    init = T.Trainer.__init__
    class Kill:
        def on_step_end(self, trainer):
            if trainer.step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.callbacks.append(Kill())
    T.Trainer.__init__ = patched
    from chainrule.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted runs, one per model."""
    from conftest import run_chainrule

    tmp = tmp_path_factory.mktemp("straight")
    for name, args in RUNS.items():
        r = run_chainrule([*COMMON, *args, "--out", name], tmp)
        assert r.returncode == 0, r.stderr
    return tmp


def _same_run(a: Path, b: Path) -> None:
    """Bit-identical fitted estimators and the same metrics, row for row."""
    ea, eb = classifiers.load(a / "model.npz"), classifiers.load(b / "model.npz")
    wa = [p.data for p in ea.model_.parameters()] if hasattr(ea, "model_") else [ea.W_, ea.b_]
    wb = [p.data for p in eb.model_.parameters()] if hasattr(eb, "model_") else [eb.W_, eb.b_]
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        assert x.tobytes() == y.tobytes()  # bit for bit
    assert list(ea.loss_curve_) == list(eb.loss_curve_)
    keys = ("kind", "epoch", "step", "loss", "lr", "grad_norm", "val_acc", "val_loss")
    ma, mb = read_metrics_csv(a / "metrics.csv"), read_metrics_csv(b / "metrics.csv")
    assert [tuple(m[k] for k in keys) for m in ma] == [tuple(m[k] for k in keys) for m in mb]
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (a, b))
    assert sa["val_acc"] == sb["val_acc"] and sa["steps"] == sb["steps"] and sb["status"] == "complete"


@pytest.mark.parametrize("name", list(RUNS))
def test_sigkill_at_random_steps_then_resume_is_bit_identical(name, straight, tmp_path, chainrule_process):
    rng = np.random.default_rng(sum(map(ord, name)))  # random kill points, the same on every run of the suite
    kills = sorted(rng.choice(np.arange(2, STEPS[name]), size=2 if name == "mlp" else 1, replace=False).tolist())
    r = chainrule_process(["-c", KILLER, str(kills[0]), *COMMON, *RUNS[name], "--out", "b"], tmp_path)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
    for kill_at in kills[1:]:  # killed again while resuming
        r = chainrule_process(["-c", KILLER, str(kill_at), "train", "--resume", "b", "-q"], tmp_path)
        assert r.returncode == -signal.SIGKILL, (kill_at, r.returncode, r.stderr)
    r = chainrule_process(["train", "--resume", "b"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "resuming b from step-" in r.stderr or "training it from the start" in r.stderr
    _same_run(straight / name, tmp_path / "b")


def test_sigkill_from_outside_at_random_times(straight, tmp_path, chainrule_process):
    """kill -9 at a random moment (mid-step, mid-checkpoint-write, mid-startup), as often as it takes."""
    from conftest import ROOT

    rng = np.random.default_rng(7)
    args = [*COMMON[:-1], *RUNS["mlp"], "--checkpoint-every", "1", "--out", "b", "-q"]
    env_path = str(ROOT)
    for _ in range(6):
        # Killed before it wrote config.toml, it is not a run yet: start it again; afterwards, resume it.
        argv = ["train", "--resume", "b", "-q"] if (tmp_path / "b" / "config.toml").is_file() else args
        proc = subprocess.Popen([sys.executable, "-m", "chainrule", *argv], cwd=tmp_path,
                                env={**__import__("os").environ, "PYTHONPATH": env_path},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(float(rng.uniform(1.0, 6.0)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        if proc.returncode == 0:
            break
    summary = tmp_path / "b" / "summary.json"
    if not summary.is_file() or json.loads(summary.read_text()).get("status") != "complete":
        started = (tmp_path / "b" / "config.toml").is_file()
        r = chainrule_process(["train", "--resume", "b", "-q"] if started else args, tmp_path)
        assert r.returncode == 0, r.stderr
    _same_run(straight / "mlp", tmp_path / "b")


def test_corrupt_latest_checkpoint_falls_back_and_still_matches(straight, tmp_path, chainrule_process):
    r = chainrule_process(["-c", KILLER, "22", *COMMON, *RUNS["mlp"], "--out", "b"], tmp_path)
    assert r.returncode == -signal.SIGKILL
    kept = [p.name for p in sorted((tmp_path / "b" / "checkpoints").glob("step-*"))]
    assert kept == ["step-00000016.npz", "step-00000020.npz"]
    latest = tmp_path / "b" / "checkpoints" / "step-00000020.npz"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 3])  # truncated
    r = chainrule_process(["train", "--resume", "b"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "warning: skipping checkpoint step-00000020.npz" in r.stderr and "falling back to step-00000016" in \
        r.stderr
    _same_run(straight / "mlp", tmp_path / "b")


@pytest.mark.parametrize("command", [["evaluate", "{run}"], ["predict", "{run}", "{image}"],
                                     ["train", "--resume", "{run}"], ["evaluate", "{run}/checkpoints/best.npz"]])
@pytest.mark.parametrize("model", ["mlp", "knn"])
def test_run_folders_of_chainrule_0_1_fail_with_a_clear_message(command, model, tmp_path, capsys):
    """tests/fixtures/run_format1: run folders written by the code before the one-stack change."""
    run = tmp_path / model
    shutil.copytree(FIXTURES / model, run)
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (8, 8)).save(image)
    capsys.readouterr()
    assert main([c.format(run=run, image=image) for c in command] + ["-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "was written by chainrule 0.1 (run-folder format 1" in err, err
    assert "train it again" in err.lower()
