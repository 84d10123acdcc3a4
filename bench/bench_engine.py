"""Engine overhead: forward + backward of a chain of 10,000 tiny elementwise ops, chainrule vs PyTorch CPU eager.

With 16-element tensors the arithmetic is negligible, so the time per op is the autograd machinery itself: creating
the node, dispatching forward, and visiting the node in backward. The chain cycles through four ops, so it exercises
tensor-tensor, tensor-scalar and unary ops, and leaf gradient accumulation (``w`` and ``b`` are reused by every
cycle, like the weights of an RNN):

    y = y * w;   y = y + b;   y = tanh(y);   y = y * 0.5;   ...;   loss = y.sum()

Both engines run in the same invocation, alternating, each in a fresh interpreter per repeat that imports only
NumPy and itself, as its users run it. (In one shared interpreter, chainrule's Python objects would also pay for
Python's garbage collector scanning the ~150,000 objects that importing torch creates; ``--in-process`` measures
that setting.) Reported: medians in microseconds per op and the ratio chainrule / PyTorch (below 1: chainrule is
faster). Goal: total ratio at or below 1.

Run:  python bench/bench_engine.py [--ops 10000] [--repeats 7] [--in-process]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
SIZE = 16
ENGINES = ("chainrule", "pytorch")


def chainrule_chain(n_ops: int) -> tuple[float, float, list[float]]:
    """Seconds for forward and for backward of the chain in chainrule, and dL/dx (to check the engines agree)."""
    import chainrule as cr

    rng = np.random.default_rng(0)
    x = cr.Tensor(rng.standard_normal(SIZE).astype(np.float32), requires_grad=True)
    w = cr.Tensor(np.full(SIZE, 1.5, dtype=np.float32), requires_grad=True)
    b = cr.Tensor(np.full(SIZE, 0.1, dtype=np.float32), requires_grad=True)
    t0 = time.perf_counter()
    y = x
    for _ in range(n_ops // 4):
        y = y * w
        y = y + b
        y = y.tanh()
        y = y * 0.5
    loss = y.sum()
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, x.grad.tolist()


def pytorch_chain(n_ops: int) -> tuple[float, float, list[float]]:
    """The same chain in PyTorch eager on the CPU."""
    import torch

    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal(SIZE).astype(np.float32), requires_grad=True)
    w = torch.full((SIZE,), 1.5, dtype=torch.float32, requires_grad=True)
    b = torch.full((SIZE,), 0.1, dtype=torch.float32, requires_grad=True)
    t0 = time.perf_counter()
    y = x
    for _ in range(n_ops // 4):
        y = y * w
        y = y + b
        y = y.tanh()
        y = y * 0.5
    loss = y.sum()
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, x.grad.tolist()


CHAINS = {"chainrule": chainrule_chain, "pytorch": pytorch_chain}


def setup(engine: str) -> None:
    if engine == "pytorch":
        import torch

        torch.set_num_threads(1)  # tiny tensors: intra-op threads only add overhead, and the machine is shared
    CHAINS[engine](400)  # warm up: imports, allocator, torch's dispatcher


def worker(engine: str, n_ops: int, runs: int) -> None:
    """Timed runs of one engine in this interpreter, printed as JSON (used by the subprocess mode)."""
    setup(engine)
    print(json.dumps([CHAINS[engine](n_ops) for _ in range(runs)]))


def collect(n_ops: int, repeats: int, runs_per_process: int, in_process: bool) -> dict[str, list]:
    runs: dict[str, list] = {e: [] for e in ENGINES}
    if in_process:
        for e in ENGINES:
            setup(e)
    for _ in range(repeats):  # alternate, so that load from other processes hits both engines alike
        for e in ENGINES:
            if in_process:
                runs[e].extend(CHAINS[e](n_ops) for _ in range(runs_per_process))
            else:
                cmd = [sys.executable, __file__, "--worker", e, "--ops", str(n_ops), "--runs", str(runs_per_process)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs[e].extend(json.loads(out))
    return runs


def machine() -> str:
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = "load average %.2f %.2f %.2f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} logical cores, no GPU used, {platform.system()} {platform.release()}, {load}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=10_000, help="ops in the chain (rounded down to a multiple of 4)")
    parser.add_argument("--repeats", type=int, default=7, help="alternating rounds per engine")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per round (one interpreter)")
    parser.add_argument("--in-process", action="store_true", help="run both engines in this one interpreter")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n_ops = max(4, args.ops - args.ops % 4)
    if args.worker:
        worker(args.worker, n_ops, args.runs)
        return

    runs = collect(n_ops, args.repeats, args.runs, args.in_process)
    got, ref = np.array(runs["chainrule"][0][2]), np.array(runs["pytorch"][0][2])
    if not np.allclose(got, ref, rtol=1e-4, atol=1e-6):
        raise SystemExit(f"the engines disagree on dL/dx: max difference {np.max(np.abs(got - ref)):.3g}")

    import torch

    import chainrule as cr

    mode = "both in this one interpreter" if args.in_process else "each engine in its own fresh interpreter"
    print(f"machine: {machine()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
          f"(1 intra-op thread), chainrule {cr.__version__}")
    print(f"chain of {n_ops} elementwise ops on float32 tensors of {SIZE} elements, forward + backward; {mode}; "
          f"median of {len(runs['chainrule'])} runs ({args.repeats} alternating rounds of {args.runs})")
    print(f"{'engine':<10} {'forward us/op':>14} {'backward us/op':>15} {'total us/op':>12}")
    results = {}
    for e, rs in runs.items():
        fwd = statistics.median(r[0] for r in rs) / n_ops * 1e6
        bwd = statistics.median(r[1] for r in rs) / n_ops * 1e6
        total = statistics.median(r[0] + r[1] for r in rs) / n_ops * 1e6
        results[e] = (fwd, bwd, total)
        print(f"{e:<10} {fwd:>14.2f} {bwd:>15.2f} {total:>12.2f}")
    c, t = results["chainrule"], results["pytorch"]
    print(f"ratio chainrule/pytorch: forward {c[0] / t[0]:.2f}, backward {c[1] / t[1]:.2f}, "
          f"total {c[2] / t[2]:.2f} (goal: total <= 1.00)")


if __name__ == "__main__":
    main()
