"""GEMM throughput of the matrix products in the two benchmark training steps: NumPy vs MKL (ctypes) vs PyTorch.

The products are those of one forward + backward pass of ``MLP([3072, 1024, 1024, 10])`` on 256 samples and of
``MLP([3072, 100, 10])`` on 200 samples, with weights stored (in, out) as in ``chainrule.nn.Linear``; backward
products use transposed views (no copies), as the engine does. Each implementation runs in its own subprocess (one
BLAS thread pool per process), several rounds in rotating order so that load from other users of the machine hits
all of them alike; the table shows medians over rounds.

    python bench/bench_gemm.py [--threads 2] [--rounds 5] [--reps 20]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

# (label, M, K, N, trans_a, trans_b): op(a) is (M, K), op(b) is (K, N).
SHAPES = {
    "MLP([3072, 1024, 1024, 10]), N=256": [
        ("fwd  X @ W1", 256, 3072, 1024, False, False),
        ("fwd  H1 @ W2", 256, 1024, 1024, False, False),
        ("fwd  H2 @ W3", 256, 1024, 10, False, False),
        ("bwd  dW3 = H2^T @ dS", 1024, 256, 10, True, False),
        ("bwd  dH2 = dS @ W3^T", 256, 10, 1024, False, True),
        ("bwd  dW2 = H1^T @ dZ2", 1024, 256, 1024, True, False),
        ("bwd  dH1 = dZ2 @ W2^T", 256, 1024, 1024, False, True),
        ("bwd  dW1 = X^T @ dZ1", 3072, 256, 1024, True, False),
    ],
    "MLP([3072, 100, 10]), N=200": [
        ("fwd  X @ W1", 200, 3072, 100, False, False),
        ("fwd  H @ W2", 200, 100, 10, False, False),
        ("bwd  dW2 = H^T @ dS", 100, 200, 10, True, False),
        ("bwd  dH = dS @ W2^T", 200, 10, 100, False, True),
        ("bwd  dW1 = X^T @ dZ", 3072, 200, 100, True, False),
    ],
}
IMPLS = ("numpy", "mkl", "torch")


def _operands(m, k, n, ta, tb, rng):
    import numpy as np

    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    return a, b


def worker(impl: str, reps: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    if impl == "torch":
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

        def make(a, b, ta, tb, m, n):
            ta_, tb_ = torch.from_numpy(a), torch.from_numpy(b)
            a_ = ta_.T if ta else ta_
            b_ = tb_.T if tb else tb_
            out = torch.empty(m, n)
            return lambda: torch.mm(a_, b_, out=out)
    else:
        from chainrule import backend

        assert backend.select(impl) == impl, backend.info()

        def make(a, b, ta, tb, m, n):
            out = np.empty((m, n), dtype=np.float32)
            return lambda: backend.gemm(a, b, trans_a=ta, trans_b=tb, out=out)

    result = {}
    for net, shapes in SHAPES.items():
        for label, m, k, n, ta, tb in shapes:
            fn = make(*_operands(m, k, n, ta, tb, rng), ta, tb, m, n)
            for _ in range(3):
                fn()
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            result[f"{net}|{label}"] = statistics.median(times)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.reps)))
        return

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([sys.path[0], os.environ.get("PYTHONPATH", "")]))
    runs: dict[str, list[dict]] = {impl: [] for impl in IMPLS}
    available = []
    for impl in IMPLS:  # probe: mkl needs the mkl wheel, torch needs torch
        probe = ("import torch" if impl == "torch" else
                 f"from chainrule import backend; assert backend.select({impl!r}) == {impl!r}")
        ok = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode == 0
        if ok:
            available.append(impl)
        else:
            print(f"# {impl}: not available, skipped")
    for r in range(args.rounds):
        order = available[r % len(available):] + available[: r % len(available)]
        for impl in order:
            out = subprocess.run([sys.executable, __file__, "--worker", impl, "--reps", str(args.reps)],
                                 env=env, capture_output=True, text=True, check=True)
            runs[impl].append(json.loads(out.stdout))

    med = {impl: {key: statistics.median(run[key] for run in runs[impl]) for key in runs[impl][0]}
           for impl in available}
    print(f"# GEMM throughput, float32, {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; median of {args.rounds} rounds x {args.reps} reps")
    cols = "".join(f"{impl + ' GF/s':>12}" for impl in available)
    ratios = "".join(f"{impl + '/torch':>12}" for impl in available if impl != "torch" and "torch" in available)
    for net, shapes in SHAPES.items():
        print(f"\n## {net}\n{'product':<24}{'M x K x N':>18}{cols}{ratios}")
        total = {impl: 0.0 for impl in available}
        flops_total = 0.0
        for label, m, k, n, _, _ in shapes:
            key = f"{net}|{label}"
            flops = 2.0 * m * k * n
            flops_total += flops
            row = f"{label:<24}{f'{m}x{k}x{n}':>18}"
            for impl in available:
                total[impl] += med[impl][key]
                row += f"{flops / med[impl][key] / 1e9:12.1f}"
            if "torch" in available:
                row += "".join(f"{med['torch'][key] / med[impl][key]:12.2f}" for impl in available if impl != "torch")
            print(row)
        row = f"{'all (ms per step)':<24}{'':>18}" + "".join(f"{total[i] * 1e3:12.2f}" for i in available)
        if "torch" in available:
            row += "".join(f"{total['torch'] / total[i]:12.2f}" for i in available if i != "torch")
        print(row)


if __name__ == "__main__":
    main()
