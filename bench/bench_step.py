"""One training step (forward, backward, SGD-momentum update; float32) of two MLPs: chainrule vs PyTorch CPU eager.

Nets: ``MLP([3072, 1024, 1024, 10])`` on batches of 256 and CS231n's two-layer net ``MLP([3072, 100, 10])`` on
batches of 200 (ReLU, softmax cross-entropy, SGD lr=1e-3 momentum=0.9). For each net it reports

- ms per step (median) of chainrule and of PyTorch with the same thread count, and the throughput ratio
  torch_ms / chainrule_ms (>= 1 means chainrule is at least as fast);
- the GEMM share: the same matrix products as chainrule's step (same shapes and layouts, same GEMM backend),
  timed alone, as a fraction of chainrule's step time (and likewise for PyTorch's products and step);
- peak memory of training: the highest resident set size during the steps minus the resident set size before the
  model was built (so imports do not count; parameters, gradients, optimizer state, activations and library
  workspaces do).

Every measurement runs in a fresh subprocess (one library and one thread pool per process, and a clean memory
high-water mark). In each round the processes whose times are divided by each other run back to back, in an order
that alternates between rounds, so load from other users of the machine falls on both alike; the table shows medians
over rounds and the range of the per-round speed ratio. Timings on a shared machine are noisy: compare ratios from
one run.

    python bench/bench_step.py [--threads 2] [--rounds 5] [--steps 20] [--net big|small|all]
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

NETS = {"big": ([3072, 1024, 1024, 10], 256), "small": ([3072, 100, 10], 200)}
LR, MOMENTUM = 1e-3, 0.9
KINDS = ("chainrule", "torch", "chainrule-gemm", "torch-gemm")


# ---- memory: the resident set and its high-water mark, from /proc (Linux) or getrusage ----------------------------


def _rss_kib() -> tuple[int, int]:
    """(current RSS, peak RSS since the last reset) in KiB."""
    try:
        with open("/proc/self/status") as f:
            fields = {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmRSS", "VmHWM"))}
        return fields["VmRSS"], fields["VmHWM"]
    except (OSError, KeyError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---- the steps ----------------------------------------------------------------------------------------------------


def _batch(sizes: list[int], n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], size=n)
    return x, y


def _chainrule_step(sizes, x, y, threads):
    from chainrule import nn, optim
    from chainrule.nn import functional as F

    model = nn.MLP(sizes, seed=0)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def _torch_setup(threads):
    import torch

    torch.set_num_threads(threads)
    return torch


def _torch_step(sizes, x, y, threads):
    torch = _torch_setup(threads)
    torch.manual_seed(0)
    layers = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(d_in, d_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()

    return step


def gemm_shapes(sizes: list[int], n: int) -> list[tuple[int, int, int, bool, bool]]:
    """(M, K, N, trans_a, trans_b) of the products of one step with weights stored (in, out): op(a) is (M, K).

    Forward: x_i (n, d_i) @ W_i (d_i, d_i+1). Backward, last layer first: dW_i = x_i^T g (trans_a) and, except for
    the first layer (whose input needs no gradient), dx_i = g W_i^T (trans_b).
    """
    pairs = list(zip(sizes[:-1], sizes[1:]))
    fwd = [(n, d_in, d_out, False, False) for d_in, d_out in pairs]
    bwd = []
    for i in reversed(range(len(pairs))):
        d_in, d_out = pairs[i]
        bwd.append((d_in, n, d_out, True, False))
        if i > 0:
            bwd.append((n, d_out, d_in, False, True))
    return fwd + bwd


def _gemm_step(sizes, x, y, threads, *, torch_layout: bool):
    """The step's products alone, on fresh outputs as in the step; weights (in, out), or (out, in) for torch."""
    import numpy as np

    rng = np.random.default_rng(1)
    operands = []
    for m, k, n, ta, tb in gemm_shapes(sizes, x.shape[0]):
        a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
        operands.append((a, b, ta, tb))
    if torch_layout:
        torch = _torch_setup(threads)
        # PyTorch keeps W as (out, in): forward x @ W^T, backward dx = g @ W, dW = g^T @ x (its own layouts).
        ops = []
        for a, b, ta, tb in operands:
            ta_, tb_ = torch.from_numpy(a), torch.from_numpy(b)
            if not ta and not tb:  # forward: b is W^T, a view of the (out, in) weight
                w = tb_.T.contiguous()
                ops.append((ta_, w.T))
            elif ta:  # dW^T = g^T @ x: (out, N) @ (N, in)
                ops.append((tb_.T, ta_))
            else:  # dx = g @ W with W (out, in)
                ops.append((ta_, tb_.T.contiguous()))
        return lambda: [torch.mm(a, b) for a, b in ops]
    from chainrule import backend

    return lambda: [backend.gemm(a, b, trans_a=ta, trans_b=tb) for a, b, ta, tb in operands]


def worker(kind: str, net: str, threads: int, steps: int) -> dict:
    sizes, n = NETS[net]
    x, y = _batch(sizes, n)
    if kind.startswith("torch"):
        _torch_setup(threads)
    else:
        import chainrule.nn  # noqa: F401  (imported before the baseline: code is not training memory)
        import chainrule.optim  # noqa: F401
    rss0, _ = _rss_kib()
    exact_peak = _reset_peak()
    if kind == "chainrule":
        step = _chainrule_step(sizes, x, y, threads)
    elif kind == "torch":
        step = _torch_step(sizes, x, y, threads)
    else:
        step = _gemm_step(sizes, x, y, threads, torch_layout=kind == "torch-gemm")
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    rss1, peak = _rss_kib()
    info = {}
    if kind.startswith("chainrule"):
        from chainrule import backend

        info = backend.info()
    return {"ms": 1e3 * statistics.median(times), "peak_mib": (peak - rss0) / 1024, "exact_peak": exact_peak,
            "gemm": info.get("gemm", "torch"), "blas_threads": info.get("threads")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--net", choices=["big", "small", "all"], default="all")
    p.add_argument("--json", help="also write the medians to this file")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "NET"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.threads, args.steps)))
        return

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([sys.path[0], os.environ.get("PYTHONPATH", "")]))
    nets = list(NETS) if args.net == "all" else [args.net]
    runs = {(net, kind): [] for net in nets for kind in KINDS}
    for r in range(args.rounds):
        for net in nets:
            # Pairs that are divided by each other run back to back, and which goes first alternates.
            order = ["chainrule-gemm", "chainrule", "torch", "torch-gemm"]
            order = order if r % 2 == 0 else order[::-1]
            for kind in order:
                cmd = [sys.executable, __file__, "--worker", kind, net, "--threads", str(args.threads),
                       "--steps", str(args.steps)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"{kind} {net} failed:\n{out.stderr}")
                runs[net, kind].append(json.loads(out.stdout))

    def med(net, kind, key):
        return statistics.median(run[key] for run in runs[net, kind])

    first = runs[nets[0], "chainrule"][0]
    print(f"# training step, float32, SGD momentum; {args.threads} threads; {platform.machine()}, "
          f"{os.cpu_count()} cores; chainrule GEMM: {first['gemm']}; medians of {args.rounds} rounds x "
          f"{args.steps} steps, each in a fresh process; shared machine: timings are noisy, compare ratios")
    print(f"{'net':<34}{'chainrule ms':>13}{'torch ms':>10}{'speed ratio':>12}{'(per round)':>14}{'GEMM share':>11}"
          f"{'torch GEMM share':>17}{'chainrule MiB':>14}{'torch MiB':>10}{'mem ratio':>10}")
    summary = {}
    for net in nets:
        sizes, n = NETS[net]
        c, t = med(net, "chainrule", "ms"), med(net, "torch", "ms")
        cg, tg = med(net, "chainrule-gemm", "ms"), med(net, "torch-gemm", "ms")
        cm, tm = med(net, "chainrule", "peak_mib"), med(net, "torch", "peak_mib")
        summary[net] = dict(sizes=sizes, batch=n, chainrule_ms=c, torch_ms=t, speed_ratio=t / c,
                            gemm_ms=cg, gemm_share=cg / c, torch_gemm_ms=tg, torch_gemm_share=tg / t,
                            chainrule_peak_mib=cm, torch_peak_mib=tm, mem_ratio=cm / tm)
        # The same round's chainrule and torch processes ran back to back: their ratio sees the same load.
        per_round = [b["ms"] / a["ms"] for a, b in zip(runs[net, "chainrule"], runs[net, "torch"])]
        summary[net]["speed_ratio_per_round"] = per_round
        label = f"MLP({sizes}), N={n}"
        spread = f"{min(per_round):.2f}-{max(per_round):.2f}"
        print(f"{label:<34}{c:13.2f}{t:10.2f}{t / c:11.2f}x{spread:>14}{cg / c:10.0%} {tg / t:16.0%}"
              f"{cm:14.1f}{tm:10.1f}{cm / tm:9.2f}x")
    if not first["exact_peak"]:
        print("# note: peak RSS could not be reset here, so the memory columns include the import footprint")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
