"""Exact resume for real: a `chainrule train` process killed with SIGKILL mid-training, resumed in a fresh process,
ends with bit-identical parameters to a run that was never interrupted; a corrupt latest checkpoint is survived."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from chainrule.train import load_checkpoint, read_metrics_csv

ROOT = Path(__file__).resolve().parents[1]
# Dropout and augmentation (flips + crops) make every RNG stream matter; 13 steps per epoch, checkpoints every 4.
ARGS = ["train", "--data", "digits", "--model", "mlp", "--hidden", "32", "--dropout", "0.2", "--augment",
        "--epochs", "3", "--batch-size", "128", "--checkpoint-every", "4", "--keep-checkpoints", "2", "-q"]
FINAL = "step-00000039.npz"

# Runs the real CLI in a child process that SIGKILLs itself right after optimizer step `kill_at`: no cleanup,
# no atexit, no flushing; whatever the last checkpoint on disk is, that is what resume gets.
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


def _run(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def _weights(run, name=FINAL):
    return load_checkpoint(run / "checkpoints" / name)["model"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("straight")
    r = _run(["-m", "chainrule", *ARGS, "--out", "a"], tmp)
    assert r.returncode == 0, r.stderr
    return tmp / "a"


def _killed(tmp_path, kill_at):
    r = _run(["-c", KILLER, str(kill_at), *ARGS, "--out", "b"], tmp_path)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
    return tmp_path / "b"


def test_sigkill_then_resume_is_bit_identical(straight, tmp_path):
    run = _killed(tmp_path, kill_at=18)  # epoch 2, two steps after the checkpoint at step 16
    kept = [p.name for p in sorted((run / "checkpoints").glob("step-*"))]
    assert kept == ["step-00000013.npz", "step-00000016.npz"]  # the end of epoch 1 and step 16
    r = _run(["-m", "chainrule", "train", "--resume", "b"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "resuming b from step-00000016.npz (step 16, epoch 1 of 3)" in r.stderr
    a, b = _weights(straight), _weights(run)
    assert list(a) == list(b)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k  # bit for bit
    for k, v in _weights(straight, "best.npz").items():
        assert np.array_equal(v, _weights(run, "best.npz")[k])
    # The metrics of the resumed run are the straight run's (rows logged by the killed process after step 16
    # are replaced, not duplicated).
    ma, mb = read_metrics_csv(straight / "metrics.csv"), read_metrics_csv(run / "metrics.csv")
    assert [(m["kind"], m["step"], m["loss"]) for m in ma] == [(m["kind"], m["step"], m["loss"]) for m in mb]


def test_corrupt_latest_checkpoint_falls_back_and_still_matches(straight, tmp_path):
    run = _killed(tmp_path, kill_at=22)  # the last two checkpoints: steps 16 and 20
    latest = run / "checkpoints" / "step-00000020.npz"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 3])  # truncated
    r = _run(["-m", "chainrule", "train", "--resume", "b"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "warning: skipping checkpoint step-00000020.npz" in r.stderr and "falling back to step-00000016" in \
        r.stderr
    a, b = _weights(straight), _weights(run)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
