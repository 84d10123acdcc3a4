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

Each of the four measurements (chainrule's step, PyTorch's step, and each one's products alone) lives in its own
process (one library and one thread pool per process, and its own memory high-water mark). The processes take
turns: each runs a few steps while the others wait, for many turns in an alternating order, so load from other users
of the machine falls on all of them alike. The table shows medians over all timed steps and the range of the speed
ratio over turns. Timings on a shared machine are noisy: compare ratios from one run.

``--precision bf16`` measures the same step with bfloat16 products and float32 master weights on both sides:
chainrule on its ``onednn`` GEMM backend with ``set_float32_matmul_precision("medium")`` (float32 arrays, both
operands rounded to bfloat16 inside every product), PyTorch under ``torch.autocast("cpu", dtype=torch.bfloat16)``
(its linear layers cast input and weight to bfloat16 every step); ``--precision both`` prints float32 and bfloat16
rows from one run. The float32 rows use the GEMM backend ``CHAINRULE_GEMM`` selects (numpy by default).

    python bench/bench_step.py [--threads 2] [--turns 20] [--steps 5] [--net big|small|all] [--json out.json]
    python bench/bench_step.py --precision both --net big      # needs pip install onednn-cpu-gomp
    OPENBLAS_NUM_THREADS=1 python bench/bench_step.py --breakdown --steps 50   # where chainrule's time goes
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


def _torch_step(sizes, x, y, threads, bf16=False):
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
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
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


def _operands(shapes):
    """Random float32 (a, b, trans_a, trans_b) for each (M, K, N, trans_a, trans_b), stored as chainrule stores them."""
    import numpy as np

    rng = np.random.default_rng(1)
    operands = []
    for m, k, n, ta, tb in shapes:
        a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
        operands.append((a, b, ta, tb))
    return operands


def _chainrule_gemms(shapes):
    """A function running the given products through chainrule's GEMM, on fresh outputs as in the step."""
    from chainrule import backend

    operands = _operands(shapes)
    return lambda: [backend.gemm(a, b, trans_a=ta, trans_b=tb) for a, b, ta, tb in operands]


def _gemm_step(sizes, x, y, threads, *, torch_layout: bool, bf16: bool = False):
    """The step's products alone, on fresh outputs as in the step; weights (in, out), or (out, in) for torch."""
    shapes = gemm_shapes(sizes, x.shape[0])
    if not torch_layout:
        return _chainrule_gemms(shapes)
    torch = _torch_setup(threads)
    # PyTorch keeps W as (out, in): forward x @ W^T, backward dx = g @ W, dW = g^T @ x (its own layouts).
    ops = []
    for a, b, ta, tb in _operands(shapes):
        ta_, tb_ = torch.from_numpy(a), torch.from_numpy(b)
        if not ta and not tb:  # forward: b is W^T, a view of the (out, in) weight
            ops.append((ta_, tb_.T.contiguous().T))
        elif ta:  # dW^T = g^T @ x: (out, N) @ (N, in)
            ops.append((tb_.T, ta_))
        else:  # dx = g @ W with W (out, in)
            ops.append((ta_, tb_.T.contiguous()))
    if bf16:  # as under autocast: both float32 operands cast to bfloat16 for every product
        return lambda: [torch.mm(a.bfloat16(), b.bfloat16()) for a, b in ops]
    return lambda: [torch.mm(a, b) for a, b in ops]


def breakdown(net: str, steps: int) -> None:
    """Where chainrule's step time goes, in this process: each phase of the step, and its matrix products alone."""
    from chainrule import nn, optim
    from chainrule.nn import functional as F

    sizes, n = NETS[net]
    x, y = _batch(sizes, n)
    model = nn.MLP(sizes, seed=0)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    shapes = gemm_shapes(sizes, n)
    fwd_gemms = _chainrule_gemms(shapes[: len(sizes) - 1])
    bwd_gemms = _chainrule_gemms(shapes[len(sizes) - 1 :])
    names = ("forward", "loss", "backward", "optimizer", "whole step", "forward GEMMs alone", "backward GEMMs alone")
    phases: dict[str, list[float]] = {name: [] for name in names}
    for i in range(steps + 3):
        t = [time.perf_counter()]
        opt.zero_grad()
        scores = model(x)
        t.append(time.perf_counter())
        loss = F.cross_entropy(scores, y)
        t.append(time.perf_counter())
        loss.backward()
        t.append(time.perf_counter())
        opt.step()
        t.append(time.perf_counter())
        fwd_gemms()
        t.append(time.perf_counter())
        bwd_gemms()
        t.append(time.perf_counter())
        if i >= 3:  # warm-up steps are not timed
            d = [1e3 * (b - a) for a, b in zip(t, t[1:])]
            for name, ms in zip(names, d[:4] + [t[4] * 1e3 - t[0] * 1e3] + d[4:]):
                phases[name].append(ms)
    print(f"# chainrule, MLP({sizes}), N={n}: ms per phase over {steps} steps (min, median)")
    for name, ms in phases.items():
        print(f"{name:<24}{min(ms):9.3f}{statistics.median(ms):9.3f}")


def serve(kind: str, net: str, threads: int, precision: str = "float32") -> None:
    """Worker process: set up one measurement, then answer the parent's commands on stdin, one JSON line each.

    "run N" times N steps (list of seconds); "stats" reports peak training memory and the GEMM backend.
    """
    sizes, n = NETS[net]
    x, y = _batch(sizes, n)
    bf16 = precision == "bf16"
    if kind.startswith("torch"):
        _torch_setup(threads)
    else:
        import chainrule.nn  # noqa: F401  (imported before the baseline: code is not training memory)
        import chainrule.optim  # noqa: F401
        from chainrule import backend

        if bf16:
            backend.select("onednn")
            backend.set_float32_matmul_precision("medium")
    rss0, _ = _rss_kib()
    exact_peak = _reset_peak()
    if kind == "chainrule":
        step = _chainrule_step(sizes, x, y, threads)
    elif kind == "torch":
        step = _torch_step(sizes, x, y, threads, bf16)
    else:
        step = _gemm_step(sizes, x, y, threads, torch_layout=kind == "torch-gemm", bf16=bf16)
    for _ in range(3):
        step()
    print(json.dumps({"ready": kind}), flush=True)
    for line in sys.stdin:
        cmd, *arg = line.split()
        if cmd == "run":
            times = []
            for _ in range(int(arg[0])):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            print(json.dumps(times), flush=True)
        elif cmd == "stats":
            _, peak = _rss_kib()
            gemm = "torch"
            if kind.startswith("chainrule"):
                from chainrule import backend

                info = backend.info()
                gemm = info["gemm"] + (" bf16" if info["float32_matmul_precision"] == "medium" else "")
            print(json.dumps({"peak_mib": (peak - rss0) / 1024, "exact_peak": exact_peak, "gemm": gemm}), flush=True)


class Worker:
    """The parent's handle on one ``serve`` process."""

    def __init__(self, kind: str, net: str, threads: int, env: dict[str, str], precision: str = "float32"):
        self.kind = kind
        cmd = [sys.executable, __file__, "--serve", kind, net, "--threads", str(threads), "--precision", precision]
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ask(None)  # wait for "ready"

    def ask(self, command: str | None):
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"bench_step: the {self.kind} worker died (its error is above)")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def measure(net: str, threads: int, turns: int, steps: int, env: dict[str, str], precision: str = "float32") -> dict:
    """Run the four measurements of one net in turns; times per kind, per-turn medians, and stats."""
    workers = [Worker(kind, net, threads, env, precision)
               for kind in ("chainrule-gemm", "chainrule", "torch", "torch-gemm")]
    times: dict[str, list[float]] = {w.kind: [] for w in workers}
    per_turn: dict[str, list[float]] = {w.kind: [] for w in workers}
    try:
        for t in range(turns):
            for w in workers if t % 2 == 0 else workers[::-1]:
                time.sleep(0.3)  # let the previous process's BLAS threads stop spinning and sleep
                ts = w.ask(f"run {steps}")
                times[w.kind] += ts
                per_turn[w.kind].append(statistics.median(ts))
        stats = {w.kind: w.ask("stats") for w in workers}
    finally:
        for w in workers:
            w.close()
    return {"times": times, "per_turn": per_turn, "stats": stats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--turns", type=int, default=20)
    p.add_argument("--steps", type=int, default=5, help="steps per turn")
    p.add_argument("--net", choices=["big", "small", "all"], default="all")
    p.add_argument("--precision", choices=["float32", "bf16", "both"], default="float32",
                   help="float32 products, bfloat16 products with float32 weights (chainrule: onednn backend, "
                   "precision 'medium'; torch: CPU autocast), or both (default float32)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--breakdown", action="store_true",
                   help="instead: time the phases of chainrule's step against their products alone (uses the "
                   "current OMP/OPENBLAS_NUM_THREADS; --steps steps)")
    p.add_argument("--serve", nargs=2, metavar=("KIND", "NET"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1], args.threads, args.precision)
        return
    if args.breakdown:
        for net in NETS if args.net == "all" else [args.net]:
            breakdown(net, args.steps)
        return

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([sys.path[0], os.environ.get("PYTHONPATH", "")]))
    nets = list(NETS) if args.net == "all" else [args.net]
    precisions = ["float32", "bf16"] if args.precision == "both" else [args.precision]
    if "bf16" in precisions:
        from chainrule import backend

        why = backend.bf16_unavailable()
        if why:  # e.g. a CPU (or VM) that shows only AVX2: say so instead of failing in the workers
            if args.precision == "bf16":
                sys.exit(f"--precision bf16: bfloat16 products are unavailable here: {why}")
            print(f"bf16 skipped: {why}")
            precisions = ["float32"]
    load0 = os.getloadavg()[0]
    results = {(net, prec): measure(net, args.threads, args.turns, args.steps, env, prec)
               for net in nets for prec in precisions}

    gemms = sorted({r["stats"]["chainrule"]["gemm"] for r in results.values()})
    print(f"# training step, SGD momentum, float32 weights; {args.threads} threads; {platform.machine()}, "
          f"{os.cpu_count()} cores; chainrule GEMM: {', '.join(gemms)}; torch bf16 rows: CPU autocast; "
          f"{args.turns} turns x {args.steps} steps each; load average {load0:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; shared machine: timings are noisy, compare ratios")
    print(f"{'net':<42}{'chainrule ms':>13}{'torch ms':>10}{'speed ratio':>12}{'(turns)':>12}{'GEMM share':>11}"
          f"{'torch GEMM share':>17}{'chainrule MiB':>14}{'torch MiB':>10}{'mem ratio':>10}")
    summary = {}
    for (net, prec), r in results.items():
        sizes, n = NETS[net]
        ms = {kind: 1e3 * statistics.median(ts) for kind, ts in r["times"].items()}
        c, t, cg, tg = ms["chainrule"], ms["torch"], ms["chainrule-gemm"], ms["torch-gemm"]
        cm, tm = r["stats"]["chainrule"]["peak_mib"], r["stats"]["torch"]["peak_mib"]
        # Each turn's chainrule and torch steps ran back to back: their ratio saw the same load.
        turns = sorted(b / a for a, b in zip(r["per_turn"]["chainrule"], r["per_turn"]["torch"]))
        lo, hi = turns[len(turns) // 10], turns[-1 - len(turns) // 10]
        gemm = r["stats"]["chainrule"]["gemm"]
        summary[f"{net} {prec}"] = dict(sizes=sizes, batch=n, threads=args.threads, gemm=gemm, precision=prec,
                                        chainrule_ms=c, torch_ms=t,
                                        speed_ratio=t / c, speed_ratio_turns=turns, gemm_ms=cg, gemm_share=cg / c,
                                        torch_gemm_ms=tg, torch_gemm_share=tg / t, chainrule_peak_mib=cm,
                                        torch_peak_mib=tm, mem_ratio=cm / tm)
        label = f"MLP({sizes}), N={n}" + (", bf16" if prec == "bf16" else "")
        print(f"{label:<42}{c:13.2f}{t:10.2f}{t / c:11.2f}x{f'{lo:.2f}-{hi:.2f}':>12}{cg / c:10.0%} {tg / t:16.0%}"
              f"{cm:14.1f}{tm:10.1f}{cm / tm:9.2f}x")
    print("# speed ratio = torch ms / chainrule ms (chainrule's throughput relative to PyTorch's); (turns): its 10th-"
          "90th percentile over turns; GEMM share = the step's matrix products timed alone / the step; MiB = peak "
          "resident memory of training above the process's footprint before the model was built")
    if not all(r["stats"]["chainrule"]["exact_peak"] for r in results.values()):
        print("# note: peak RSS could not be reset here, so the memory columns include the import footprint")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
