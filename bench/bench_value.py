"""chainrule.Value vs micrograd: train a 2-16-16-1 MLP on 100 make_moons points, 100 full-batch steps.

The run is micrograd's demo.ipynb: max-margin loss, L2 regularisation 1e-4, SGD with the learning rate falling
from 1.0 to 0.1. Both engines start from the same weights (micrograd's, seed 1337), build graphs of the same shape
(chainrule.value_nn mirrors micrograd.nn) and must produce the same loss curve, which is checked.

Reported: seconds per run for each engine and the ratio (same process, same data), and where each engine's time
goes: the share spent in Python's cyclic garbage collector (timed with gc.callbacks during the runs), and the time
of a run with the collector disabled (garbage collected between steps, outside the timer).

    pip install micrograd==0.1.0 scikit-learn
    python bench/bench_value.py                 # about 4 minutes on 2 cores, most of it micrograd
    python bench/bench_value.py --steps 10      # a quick look
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chainrule import value_nn  # noqa: E402
from chainrule.value import Value  # noqa: E402


class GCTimer:
    """Adds up the time the cyclic garbage collector runs, via gc.callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections += 1

    def __enter__(self) -> "GCTimer":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self)


def train(value_cls, model, X, y, steps: int, collect_between_steps: bool = False) -> tuple[list[float], float]:
    """micrograd's demo loop; returns the losses and the seconds spent (untimed gc.collect() if asked)."""
    losses = []
    seconds = 0.0
    for k in range(steps):
        start = time.perf_counter()
        inputs = [list(map(value_cls, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        data_losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
        data_loss = sum(data_losses) * (1.0 / len(data_losses))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        total = data_loss + reg_loss
        model.zero_grad()
        total.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        losses.append(total.data)
        del inputs, scores, data_losses, data_loss, reg_loss, total
        seconds += time.perf_counter() - start
        if collect_between_steps:
            gc.collect()
    return losses, seconds


def set_weights(model, weights: list[float]) -> None:
    for p, w in zip(model.parameters(), weights):
        p.data = w
        p.grad = 0.0


def timed_runs(name, value_cls, model, init, X, y, steps, repeats):
    """Best of `repeats` runs with the collector on (GC time measured), then one run with it off."""
    runs = []
    for _ in range(repeats):
        set_weights(model, init)
        gc.collect()
        with GCTimer() as timer:
            losses, seconds = train(value_cls, model, X, y, steps)
        runs.append((seconds, timer.seconds, timer.collections, losses))
        print(f"  {name:10s} run: {seconds:8.2f} s  ({timer.seconds / seconds:5.1%} in GC, "
              f"{timer.collections} collections)", flush=True)
    seconds, gc_seconds, collections, losses = min(runs, key=lambda r: r[0])
    set_weights(model, init)
    gc.collect()
    gc.disable()
    try:
        _, seconds_no_gc = train(value_cls, model, X, y, steps, collect_between_steps=True)
    finally:
        gc.enable()
    print(f"  {name:10s} run with gc.disable(): {seconds_no_gc:8.2f} s", flush=True)
    return {"seconds": seconds, "gc_seconds": gc_seconds, "gc_fraction": gc_seconds / seconds,
            "collections": collections, "seconds_gc_disabled": seconds_no_gc,
            "all_seconds": [r[0] for r in runs], "losses": losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="chainrule runs (best is reported)")
    parser.add_argument("--micrograd-repeats", type=int, default=1, help="micrograd runs (slow)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    try:
        import micrograd.engine
        import micrograd.nn
        from sklearn.datasets import make_moons
    except ImportError as e:
        sys.exit(f"bench_value needs micrograd and scikit-learn: pip install micrograd==0.1.0 scikit-learn ({e})")

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs ({cpus} usable), Python {platform.python_version()}")
    if hasattr(os, "getloadavg"):
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other jobs add noise)")

    X, y = make_moons(n_samples=args.samples, noise=0.1, random_state=1)
    X = X.tolist()
    y = [float(2 * label - 1) for label in y]           # labels -1 / +1

    random.seed(1337)
    micro_model = micrograd.nn.MLP(2, [16, 16, 1])
    ours_model = value_nn.MLP(2, [16, 16, 1])
    init = [float(p.data) for p in micro_model.parameters()]
    print(f"task: MLP 2-16-16-1 ({len(init)} parameters), {args.samples} make_moons points, "
          f"{args.steps} full-batch steps")

    ours = timed_runs("chainrule", Value, ours_model, init, X, y, args.steps, args.repeats)
    micro = timed_runs("micrograd", micrograd.engine.Value, micro_model, init, X, y, args.steps,
                       args.micrograd_repeats)

    loss_gap = max(abs(a - b) for a, b in zip(ours["losses"], micro["losses"]))
    ratio = micro["seconds"] / ours["seconds"]
    print()
    print(f"{'engine':10s} {'s/run':>8s} {'ms/step':>8s} {'GC share':>9s} {'s/run, GC off':>14s}")
    for name, r in (("micrograd", micro), ("chainrule", ours)):
        print(f"{name:10s} {r['seconds']:8.2f} {1000 * r['seconds'] / args.steps:8.1f} "
              f"{r['gc_fraction']:9.1%} {r['seconds_gc_disabled']:14.2f}")
    print(f"chainrule.Value is {ratio:.1f}x faster than micrograd (goal: >= 2x)")
    print(f"final loss {ours['losses'][-1]:.6f} (both engines; largest difference over the run {loss_gap:.1e})")
    if loss_gap > 1e-9:
        sys.exit(f"the two engines disagree: loss curves differ by {loss_gap}")

    if args.json:
        results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "usable_cpus": cpus,
                               "python": platform.python_version()},
                   "steps": args.steps, "samples": args.samples, "speedup": ratio,
                   "chainrule": {k: v for k, v in ours.items() if k != "losses"},
                   "micrograd": {k: v for k, v in micro.items() if k != "losses"},
                   "final_loss": ours["losses"][-1]}
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
