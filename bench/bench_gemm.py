"""GEMM throughput of the matrix products in the benchmark training steps: NumPy vs MKL vs oneDNN vs PyTorch.

The products are those of one forward + backward pass of ``MLP([3072, 1024, 1024, 10])`` on 256 samples and of
``MLP([3072, 100, 10])`` on 200 samples, with weights stored (in, out) as in ``chainrule.nn.Linear``; backward
products use transposed views (no copies), as the engine does. Each implementation runs in its own subprocess (one
BLAS thread pool per process), several rounds in rotating order so that load from other users of the machine hits
all of them alike; the table shows medians over rounds.

Implementations: ``numpy``, ``mkl`` and ``onednn`` are chainrule's GEMM backends (``chainrule.backend.select``) in
float32; ``onednn-bf16`` is the onednn backend with ``set_float32_matmul_precision("medium")``: float32 arrays in and
out, both operands rounded to bfloat16 inside every call (the conversion is timed); ``torch`` is ``torch.mm`` in
float32 and ``torch-bf16`` what PyTorch's CPU autocast does for a product: cast both float32 operands to bfloat16,
then a bfloat16 ``torch.mm`` (oneDNN inside; its result is bfloat16). ``--net big512`` adds the big net at 512.

    python bench/bench_gemm.py [--threads 2] [--rounds 5] [--reps 20] [--impls numpy,onednn-bf16,torch-bf16]
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
SHAPES["MLP([3072, 1024, 1024, 10]), N=512"] = [
    (label, 512 if m == 256 else m, 512 if k == 256 else k, n, ta, tb)
    for label, m, k, n, ta, tb in SHAPES["MLP([3072, 1024, 1024, 10]), N=256"]]
NET_NAMES = {"big": "MLP([3072, 1024, 1024, 10]), N=256", "small": "MLP([3072, 100, 10]), N=200",
             "big512": "MLP([3072, 1024, 1024, 10]), N=512"}
IMPLS = ("numpy", "mkl", "onednn", "onednn-bf16", "torch", "torch-bf16")


def _operands(m, k, n, ta, tb, rng):
    import numpy as np

    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    return a, b


def worker(impl: str, reps: int, nets: list[str]) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    if impl.startswith("torch"):
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

        def make(a, b, ta, tb, m, n):
            ta_, tb_ = torch.from_numpy(a), torch.from_numpy(b)
            a_ = ta_.T if ta else ta_
            b_ = tb_.T if tb else tb_
            if impl == "torch-bf16":
                return lambda: torch.mm(a_.bfloat16(), b_.bfloat16())
            out = torch.empty(m, n)
            return lambda: torch.mm(a_, b_, out=out)
    else:
        from chainrule import backend

        name = impl.removesuffix("-bf16")
        assert backend.select(name) == name, backend.info()
        if impl.endswith("-bf16"):
            backend.set_float32_matmul_precision("medium")

        def make(a, b, ta, tb, m, n):
            out = np.empty((m, n), dtype=np.float32)
            return lambda: backend.gemm(a, b, trans_a=ta, trans_b=tb, out=out)

    result = {}
    for net in nets:
        shapes = SHAPES[net]
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
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    p.add_argument("--nets", default="big,small", help="comma-separated: big, small, big512 (default big,small)")
    p.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    args = p.parse_args()
    try:
        nets = [NET_NAMES[n] for n in args.nets.split(",")]
    except KeyError as e:
        sys.exit(f"unknown net {e}; choose from {sorted(NET_NAMES)}")
    if args.worker:
        print(json.dumps(worker(args.worker, args.reps, nets)))
        return

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([sys.path[0], os.environ.get("PYTHONPATH", "")]))
    runs: dict[str, list[dict]] = {impl: [] for impl in IMPLS}
    available = []
    for impl in args.impls.split(","):  # probe: mkl needs the mkl wheel, onednn onednn-cpu-gomp, torch torch
        if impl not in IMPLS:
            sys.exit(f"unknown implementation {impl!r}; choose from {IMPLS}")
        name = impl.removesuffix("-bf16")
        probe = ("import torch" if name == "torch" else
                 f"from chainrule import backend; assert backend.select({name!r}) == {name!r}")
        ok = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode == 0
        if ok:
            available.append(impl)
        else:
            print(f"# {impl}: not available, skipped")
    load0 = os.getloadavg()[0]
    for r in range(args.rounds):
        order = available[r % len(available):] + available[: r % len(available)]
        for impl in order:
            out = subprocess.run([sys.executable, __file__, "--worker", impl, "--reps", str(args.reps),
                                  "--nets", args.nets],
                                 env=env, capture_output=True, text=True, check=True)
            runs[impl].append(json.loads(out.stdout))

    med = {impl: {key: statistics.median(run[key] for run in runs[impl]) for key in runs[impl][0]}
           for impl in available}
    print(f"# GEMM throughput, float32 arrays (bf16: rounded inside each call), {args.threads} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; median of {args.rounds} rounds x "
          f"{args.reps} reps; load average before {load0:.2f}, after {os.getloadavg()[0]:.2f}")
    base = "numpy" if "numpy" in available else available[0]
    cols = "".join(f"{impl + ' GF/s':>17}" for impl in available)
    ratios = "".join(f"{impl + ' /' + base:>17}" for impl in available if impl != base)
    for net in nets:
        shapes = SHAPES[net]
        print(f"\n## {net}  (GF/s, then speed relative to {base}: {base} time / time)\n"
              f"{'product':<24}{'M x K x N':>16}{cols}{ratios}")
        total = {impl: 0.0 for impl in available}
        for label, m, k, n, _, _ in shapes:
            key = f"{net}|{label}"
            flops = 2.0 * m * k * n
            row = f"{label:<24}{f'{m}x{k}x{n}':>16}"
            for impl in available:
                total[impl] += med[impl][key]
                row += f"{flops / med[impl][key] / 1e9:17.1f}"
            row += "".join(f"{med[base][key] / med[impl][key]:17.2f}" for impl in available if impl != base)
            print(row)
        row = f"{'all (ms per step)':<24}{'':>16}" + "".join(f"{total[i] * 1e3:17.2f}" for i in available)
        row += "".join(f"{total[base] / total[i]:17.2f}" for i in available if i != base)
        print(row)


if __name__ == "__main__":
    main()
