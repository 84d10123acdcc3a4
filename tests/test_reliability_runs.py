"""Run folders under faults, with real processes: one writer per folder (exclusive create + lock), nothing
half-made, failed runs marked, SIGINT / SIGTERM checkpoint and exit 130 / 143, a full disk names the file and keeps
the last good checkpoint, damaged or edited checkpoints and configs are refused on resume."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

# 13 steps per epoch of 128 digits samples; a checkpoint every 4 steps and at each epoch end.
ARGS = ["train", "--data", "digits", "--model", "mlp", "--hidden", "32", "--epochs", "3", "--batch-size", "128",
        "--checkpoint-every", "4", "-q"]

# The real CLI in a child process, with one fault injected at optimizer step N (a Trainer callback):
#   pause N FILE   write FILE, then wait until FILE.go exists (another process acts meanwhile)
#   slow N FILE    write FILE, then sleep 0.1 s after every step (a signal arrives mid-run)
#   fail N         raise RuntimeError at step N
#   fsize N BYTES  from step N on, files may not grow beyond BYTES (RLIMIT_FSIZE, as `ulimit -f`)
#   setup          raise MemoryError while the model is built (before any step)
HOOK = textwrap.dedent("""
    import os, resource, sys, time
    from pathlib import Path
    from chainrule.train import trainer as T
    mode, rest = sys.argv[1], sys.argv[2:]
    at = int(rest.pop(0)) if mode != "setup" else 0
    arg = rest.pop(0) if mode in ("pause", "slow", "fsize") else None
    init = T.Trainer.__init__
    class Hook:
        def on_step_end(self, trainer):
            if mode == "slow" and trainer.step >= at:
                Path(arg).touch()
                time.sleep(0.1)
            if trainer.step != at:
                return
            if mode == "pause":
                Path(arg + ".part").write_text(str(os.getpid()))
                os.replace(arg + ".part", arg)
                while not Path(arg + ".go").exists():
                    time.sleep(0.02)
            elif mode == "fail":
                raise RuntimeError("injected failure")
            elif mode == "fsize":
                resource.setrlimit(resource.RLIMIT_FSIZE, (int(arg), resource.RLIM_INFINITY))
    def patched(self, *args, **kwargs):
        if mode == "setup":
            raise MemoryError("Unable to allocate 4.00 TiB for an array")
        init(self, *args, **kwargs)
        self.callbacks.append(Hook())
    T.Trainer.__init__ = patched
    from chainrule.cli import main
    sys.exit(main(rest))
""")


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _start(argv, cwd):
    return subprocess.Popen([sys.executable, *argv], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _weights(run: Path):
    import chainrule.classifiers as classifiers

    return [p.data.tobytes() for p in classifiers.load(run / "model.npz").model_.parameters()]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    from conftest import run_chainrule

    tmp = tmp_path_factory.mktemp("straight")
    r = run_chainrule([*ARGS, "--out", "a"], tmp)
    assert r.returncode == 0, r.stderr
    return tmp / "a"


# ---- one writer -----------------------------------------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_holders_pid(tmp_path, chainrule_process, straight):
    """While one `train --out b` runs, another `train --out b` and a `train --resume b` exit 1 ("b is in use by
    pid N") and write nothing; the first finishes, and its run is the uninterrupted one."""
    flag = tmp_path / "paused"
    first = _start(["-c", HOOK, "pause", "6", str(flag), *ARGS, "--out", "b"], tmp_path)
    _wait_for(flag, first)
    pid = int(flag.read_text())
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "b").rglob("*")}
    for argv in ([*ARGS, "--out", "b"], ["train", "--resume", "b", "-q"]):
        r = chainrule_process(argv, tmp_path)
        assert r.returncode == 1, (argv, r.returncode, r.stderr)
        assert f"b is in use by pid {pid}" in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "b").rglob("*")} == before  # nothing touched
    Path(str(flag) + ".go").touch()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert _weights(tmp_path / "b") == _weights(straight)


CREATE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from chainrule.train import RunFolder
    from chainrule.utils.locking import FolderInUseError
    from chainrule.train.runfolder import RunExistsError
    go = float(sys.argv[2])
    while time.time() < go:
        pass
    try:
        RunFolder(sys.argv[1]).create()
    except (FolderInUseError, RunExistsError) as e:
        print("refused", type(e).__name__, e)
    else:
        print("created", flush=True)
        deadline = time.time() + 120
        while not Path("release").exists() and time.time() < deadline:  # hold the folder until the others are done
            time.sleep(0.02)
""")


def test_runs_created_at_the_same_moment_get_one_folder(tmp_path):
    """Six processes create one run folder at the same instant: exactly one gets it; the others are refused
    (in use, naming the pid), never sharing it."""
    go = time.time() + 1.5
    procs = [_start(["-c", CREATE, "x", repr(go)], tmp_path) for _ in range(6)]
    deadline = time.monotonic() + 120
    while sum(p.poll() is None for p in procs) > 1 and time.monotonic() < deadline:  # the five refused ones end
        time.sleep(0.02)
    (tmp_path / "release").touch()
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    results = [o.strip() for o, _ in outs]
    assert sum(r == "created" for r in results) == 1, results
    assert all(r == "created" or "is in use by pid" in r for r in results), results
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [".lock", "checkpoints", "plots"]
    assert not [p for p in tmp_path.iterdir() if p.name not in ("x", "release")]  # no staging folders left


# ---- nothing half-made; failures marked ---------------------------------------------------------------------


def test_usage_error_found_late_leaves_no_folder(tmp_path, chainrule_process):
    r = chainrule_process(["train", "--data", "digits", "--model", "knn", "--k", "5000", "--out", "k", "-q"],
                          tmp_path)
    assert r.returncode == 2 and "k=5000 is larger than the training set (1617 samples)" in r.stderr, r.stderr
    assert not (tmp_path / "k").exists()


def test_failure_while_setting_up_removes_the_new_folder(tmp_path, chainrule_process):
    r = chainrule_process(["-c", HOOK, "setup", *ARGS, "--out", "m"], tmp_path)
    assert r.returncode == 1 and "Unable to allocate 4.00 TiB" in r.stderr, r.stderr
    assert not (tmp_path / "m").exists()
    r = chainrule_process([*ARGS, "--epochs", "1", "--out", "m"], tmp_path)  # the same --out is free
    assert r.returncode == 0, r.stderr


def test_failure_later_marks_the_run_failed_and_resume_says_so(tmp_path, chainrule_process, straight):
    r = chainrule_process(["-c", HOOK, "fail", "10", *ARGS, "--out", "f"], tmp_path)
    assert r.returncode == 1 and "injected failure" in r.stderr, r.stderr
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == "injected failure"
    r = chainrule_process([*ARGS, "--out", "f"], tmp_path)  # not a new run: --resume it
    assert r.returncode == 2 and "already holds a run; continue it with --resume f" in r.stderr
    r = chainrule_process(["train", "--resume", "f"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "f failed earlier (injected failure); continuing it" in r.stderr
    assert _weights(tmp_path / "f") == _weights(straight)


# ---- signals --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_checkpoint_then_resume_exactly(sig, code, tmp_path, chainrule_process, straight):
    """A signal from outside mid-run: the step in progress finishes, a checkpoint of it is written and named, the
    exit code is 128 + the signal; the resumed run is bit-identical to the uninterrupted one."""
    flag = tmp_path / "running"
    proc = _start(["-c", HOOK, "slow", "3", str(flag), *ARGS, "--out", "s"], tmp_path)
    _wait_for(flag, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, (proc.returncode, err)
    assert f"interrupted by {sig.name}: stopped after step" in err and "continue with chainrule train --resume s" \
        in err, err
    named = tmp_path / err.split(", checkpoint ")[1].split(";")[0]
    assert named.parent == tmp_path / "s" / "checkpoints" and named.is_file(), err
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["status"] == "interrupted"
    r = chainrule_process(["train", "--resume", "s", "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert _weights(tmp_path / "s") == _weights(straight)


# ---- a full disk ----------------------------------------------------------------------------------------------


def test_a_full_disk_names_the_file_keeps_the_last_checkpoint_and_leaves_no_temp_file(tmp_path, chainrule_process,
                                                                                       straight):
    """`ulimit -f` from step 10 on: the next checkpoint cannot be written. The error names it and the last good
    checkpoint (step 8), no temp file is left, and after freeing space the resume is exact."""
    r = chainrule_process(["-c", HOOK, "fsize", "10", "2000", *ARGS, "--out", "d"], tmp_path)
    assert r.returncode == 1, r.stderr
    assert "File too large" in r.stderr and "step-00000012.npz" in r.stderr, r.stderr
    assert "the last good checkpoint, d/checkpoints/step-00000008.npz, is intact" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1
    assert not [p for p in (tmp_path / "d").rglob("*.tmp")]
    r = chainrule_process(["train", "--resume", "d", "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert _weights(tmp_path / "d") == _weights(straight)


# ---- checked checkpoints and configs on resume -------------------------------------------------------------


def _killed_run(tmp_path, chainrule_process, name="c"):
    r = chainrule_process(["-c", HOOK, "fail", "10", *ARGS, "--out", name], tmp_path)
    assert r.returncode == 1, r.stderr
    ckpts = sorted((tmp_path / name / "checkpoints").glob("step-*.npz"))
    assert [p.name for p in ckpts] == ["step-00000004.npz", "step-00000008.npz"]
    return ckpts


def _edit(path: Path, edit) -> None:
    """Rewrite a checkpoint as a hand (or another tool) would: valid zip and CRCs, manifest untouched."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    doc = json.loads(arrays["__meta__"].tobytes())
    edit(doc, arrays)
    arrays["__meta__"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _weight_key(arrays):
    return next(k for k in arrays if k.startswith("model/") and k.endswith("weight"))


@pytest.mark.parametrize("tamper", ["value", "int8", "counters"])
def test_a_changed_checkpoint_is_refused_naming_it_and_the_intact_one(tamper, tmp_path, chainrule_process):
    ckpts = _killed_run(tmp_path, chainrule_process)

    def edit(doc, arrays):
        key = _weight_key(arrays)
        if tamper == "value":
            arrays[key] = arrays[key] * np.float32(1.01)
        elif tamper == "int8":
            arrays[key] = arrays[key].astype(np.int8)
        else:
            doc["state"]["counters"]["step"] = -5
    _edit(ckpts[-1], edit)
    r = chainrule_process(["train", "--resume", "c", "-q"], tmp_path)
    assert r.returncode == 1, r.stderr
    assert "step-00000008.npz" in r.stderr and "changed after it was written" in r.stderr, r.stderr
    assert "The earlier checkpoint step-00000004.npz is intact" in r.stderr, r.stderr


def test_resealed_checkpoint_with_bad_counters_or_dtypes_is_refused(tmp_path):
    """Behind the manifest, the state itself is checked (a file re-sealed by a tool, or a bug): negative steps,
    epochs beyond the history, int8 weights are refused with the entry named."""
    from chainrule.train.checkpoint import CheckpointManager, CheckpointIntegrityError
    from chainrule.train.resume import check_trainer_state
    from chainrule.utils.serial import seal

    import chainrule.classifiers as classifiers
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    manager = CheckpointManager(tmp_path / "ck", keep_last=5)
    classifiers.MLPClassifier(hidden_sizes=(8,), epochs=2, batch_size=512, random_state=0).fit(
        X[:600].astype(np.float32), y[:600], checkpoints=manager)
    (step, latest), = manager.steps()[-1:]
    for change, message in [(lambda d, a: d["state"]["counters"].update(step=-5), "counters.step must be an integer"),
                            (lambda d, a: d["state"]["counters"].update(epoch=99), "counters.epoch is 99"),
                            (lambda d, a: a.update({_weight_key(a): a[_weight_key(a)].astype(np.int8)}),
                             "weights and moments are floating-point arrays")]:
        path = tmp_path / "bad.npz"
        path.write_bytes(latest.read_bytes())

        def edit(doc, arrays, change=change):
            change(doc, arrays)
            doc.update(seal(doc, arrays))
        _edit(path, edit)
        from chainrule.train.checkpoint import load_checkpoint
        with pytest.raises(CheckpointIntegrityError, match=message):
            load_checkpoint(path, validate=check_trainer_state)


def test_edited_config_is_refused_on_resume_naming_the_setting_and_both_values(tmp_path, chainrule_process):
    _killed_run(tmp_path, chainrule_process)
    config = tmp_path / "c" / "config.toml"
    text = config.read_text()
    config.write_text(text.replace("lr = 0.001", "lr = 0.5"))
    r = chainrule_process(["train", "--resume", "c", "-q"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "lr (checkpoint has 0.001, this estimator 0.5)" in r.stderr, r.stderr
    config.write_text(text.replace("val_size = 0.1", "val_size = 0.2"))  # a run setting: another split
    r = chainrule_process(["train", "--resume", "c", "-q"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "val_size (run has 0.1, requested 0.2)" in r.stderr, r.stderr
    config.write_text(text.replace("epochs = 3", "epochs = 4"))  # documented as changeable: extends the run
    r = chainrule_process(["train", "--resume", "c", "-q"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["epochs_completed"] == 4


def test_a_comparison_folder_has_one_writer(tmp_path, chainrule_process):
    """While `compare --out c` runs, a second `compare --out c` exits 1 naming its pid and touches nothing (before,
    only each model's subfolder was locked); the first finishes."""
    flag = tmp_path / "paused"
    argv = ["compare", "--data", "digits", "--models", "mlp", "--epochs", "2", "--random-tries", "0", "--out", "c",
            "-q"]
    first = _start(["-c", HOOK, "pause", "3", str(flag), *argv], tmp_path)
    _wait_for(flag, first)
    pid = int(flag.read_text())
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "c").rglob("*")}
    assert (tmp_path / "c" / ".lock").read_text().strip() == str(pid)
    r = chainrule_process(argv, tmp_path)
    assert r.returncode == 1 and f"c is in use by pid {pid}" in r.stderr, (r.returncode, r.stderr)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "c").rglob("*")} == before  # nothing touched
    Path(str(flag) + ".go").touch()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert (tmp_path / "c" / "comparison.csv").is_file()
    r = chainrule_process(argv, tmp_path)  # a finished comparison is kept: not locked, not overwritten
    assert r.returncode == 2 and "c exists and is not empty; choose another --out" in r.stderr, r.stderr
