"""Issue 14's measured runs: a ``chainrule train --config`` file's MLPClassifier, fitted through the Python API on the
fixed splits of ``bench/ablate_mlp.py`` (whole ``fit`` timed, whitening included), scored with the estimator's own
``score``; the machine's load sampled every 30 s during the run.

    python bench/best_mlp.py --config configs/cifar10-mlp-best.toml --split val --tag best_val
    python bench/best_mlp.py --config configs/cifar10-mlp-best.toml --split val --set '{"batch_size": 512}' --tag bs512
    python bench/best_mlp.py --config configs/cifar10-mlp-best.toml --split final --set '{"random_state": 1}'
    python bench/best_mlp.py --idle        # exit 0 if the machine is idle now (load < 0.3, no other python jobs)

Splits (``ablate_mlp.splits()``): ``--split val`` trains on ``train`` (40,000 images) and scores ``val`` (5,000);
``--split final`` trains on ``train`` + ``val`` (45,000) and scores the untouched ``holdout`` (5,000) -- run it only
for the final figure, with the configuration chosen on ``val``.

Load: besides ``os.getloadavg()`` (which counts this run's own threads: a 2-thread fit alone shows ~2), every
sample records ``others_cpu``, the cores that other processes used over the last 30 s (all CPU time in /proc/stat
minus this process's own, /proc/self/stat), which is what says whether the run had the machine to itself.
Each run prints one JSON line (and appends it to ``--out``): the parameters changed, split, accuracy, fit and train
time, epochs and steps reached, samples/s, the load samples, the GEMM backend and thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from ablate_mlp import ARCHIVE, report, splits  # noqa: E402  (the fixed splits of the lever study)

LOAD_EVERY_S = 30.0


def _cpu_ticks() -> tuple[int, int]:
    """(busy ticks of the whole machine, ticks of this process incl. its threads and waited-for children)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    with open("/proc/self/stat") as f:
        mine = f.read().rsplit(")", 1)[1].split()
    return busy, sum(int(v) for v in mine[11:15])  # utime, stime, cutime, cstime


class LoadSampler:
    """Every ``every`` seconds (in a thread): the 1-minute load average and the cores other processes used."""

    def __init__(self, every: float = LOAD_EVERY_S):
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._hz = os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        t0, (busy0, mine0) = time.monotonic(), _cpu_ticks()
        last = t0
        while not self._stop.wait(self.every):
            now, (busy, mine) = time.monotonic(), _cpu_ticks()
            others = max(0.0, ((busy - busy0) - (mine - mine0)) / self._hz / (now - last))
            self.samples.append({"t": round(now - t0, 1), "load1": os.getloadavg()[0], "others_cpu": round(others, 3)})
            last, busy0, mine0 = now, busy, mine

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        others = [s["others_cpu"] for s in self.samples]
        return {"load_samples": self.samples, "others_cpu_max": max(others, default=None),
                "others_cpu_mean": float(np.mean(others)) if others else None,
                "busy_samples": sum(o > 0.7 for o in others)}


def other_jobs() -> list[str]:
    """Command lines of other users' python / pytest processes (not this one, not its parent shell)."""
    found = []
    me = {os.getpid(), os.getppid()}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) in me:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if ("python" in cmd or "pytest" in cmd) and "best_mlp.py --idle" not in cmd:
            found.append(f"{pid} {cmd[:150]}")
    return found


def estimator_params(config_path: str) -> dict:
    """The MLPClassifier parameters of a ``chainrule train --config`` file (its run settings dropped)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from chainrule.commands import params as P

    table = tomllib.loads(Path(config_path).read_text())
    names = P.signature("mlp")
    return {k: (tuple(v) if k == "hidden_sizes" else v) for k, v in table.items() if k in names}


def run(params: dict, split: str) -> dict:
    from chainrule import backend
    from chainrule.classifiers import MLPClassifier
    from chainrule.data import load_image_folder

    ds = load_image_folder(ARCHIVE)
    X, y = ds.X_train, np.asarray(ds.y_train)
    idx = splits(y)
    if split == "final":
        train_idx, test_idx = np.sort(np.concatenate([idx["train"], idx["val"]])), idx["holdout"]
    else:
        train_idx, test_idx = idx["train"], idx["val"]
    X_train, y_train = np.ascontiguousarray(X[train_idx]), y[train_idx]
    X_test, y_test = np.ascontiguousarray(X[test_idx]), y[test_idx]
    est = MLPClassifier(**params)
    load0 = os.getloadavg()[0]
    with LoadSampler() as sampler:
        est.fit(X_train, y_train)
        t0 = time.perf_counter()
        acc = est.score(X_test, y_test)
        score_s = time.perf_counter() - t0
        plain = est.set_params(test_time_flip=False).score(X_test, y_test) if params.get("test_time_flip") else acc
    epochs_done = est.n_steps_ * min(est.batch_size, len(X_train)) / len(X_train)
    return dict(split=split, n_train=len(train_idx), n_test=len(test_idx), acc=acc, acc_no_flip=plain,
                fit_s=est.fit_time_, train_s=est.train_time_, prep_s=est.fit_time_ - est.train_time_,
                epochs=round(epochs_done, 2), n_iter=est.n_iter_, steps=est.n_steps_,
                samples_per_s=est.n_steps_ * est.batch_size / est.train_time_, score_s=score_s,
                final_loss=est.loss_curve_[-1], stop_reason=est.stop_reason_, load_before=load0,
                **sampler.summary(), gemm=backend.info()["gemm"],
                threads=os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or "default",
                date=time.strftime("%Y-%m-%d %H:%M"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(HERE.parent / "configs" / "cifar10-mlp-best.toml"))
    p.add_argument("--set", default="{}", help="JSON overrides of the config's estimator parameters")
    p.add_argument("--split", choices=("val", "final"), default="val")
    p.add_argument("--tag", default="")
    p.add_argument("--out", default=str(HERE / "results" / "best_mlp.jsonl"))
    p.add_argument("--idle", action="store_true", help="exit 0 if the machine is idle now, 1 (and say why) if not")
    args = p.parse_args()
    if args.idle:
        load, jobs = os.getloadavg()[0], other_jobs()
        if load < 0.3 and not jobs:
            print(f"idle: load {load:.2f}")
            return
        sys.exit(f"busy: load {load:.2f}; {len(jobs)} python jobs" + "".join(f"\n  {j}" for j in jobs[:8]))
    overrides = json.loads(args.set)
    params = {**estimator_params(args.config), **overrides}
    report(dict(tag=args.tag, config=Path(args.config).name, changed=overrides, **run(params, args.split)), args.out)


if __name__ == "__main__":
    main()
