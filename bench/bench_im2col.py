"""Convolution, the lecture's two ways and PyTorch's: naive loops vs im2col + GEMM vs torch (NCHW, channels_last).

For each layer shape: the forward pass, and forward + backward (input and weight gradients and the bias's), of

- ``naive``: ``chainrule.nn.reference_conv`` (loops over output positions; only on the small shapes: it takes
  seconds on the others),
- ``im2col``: ``chainrule.backend._im2col`` (NumPy windows + GEMM, chunked), on channels-last input (the layout it
  returns, so what the next layer of a net gets),
- ``torch``: ``torch.nn.functional.conv2d`` and autograd (oneDNN inside), on NCHW and on channels_last input,

all float32 (the naive loops in float64, as in the tests), each in its own process (one thread pool per process),
in alternating turns driven by this one (each round runs every implementation once, in rotating order), median of
the rounds. Ratios are time / im2col's time. The table's
header says the machine, thread count and load average (other jobs on the machine make absolute times noisy).

    python bench/bench_im2col.py [--threads 2] [--rounds 7] [--cpu-time] [--json]
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

# (label, x shape (N, C, H, W), weight shape (O, C, kh, kw), stride, padding, naive too)
LAYERS = [
    ("CS231n toy: 3->8, 3x3, 16x16, N=2", (2, 3, 16, 16), (8, 3, 3, 3), 1, 1, True),
    ("16->16, 3x3, 16x16, N=4", (4, 16, 16, 16), (16, 16, 3, 3), 1, 1, True),
    ("stride 2: 16->32, 3x3, 16x16, N=4", (4, 16, 16, 16), (32, 16, 3, 3), 2, 1, True),
    ("airbench conv 64->64, 3x3, 32x32, N=64", (64, 64, 32, 32), (64, 64, 3, 3), 1, 1, False),
    ("airbench conv 128->128, 3x3, 8x8, N=256", (256, 128, 8, 8), (128, 128, 3, 3), 1, 1, False),
    ("airbench stem 3->24, 2x2, 32x32, N=256", (256, 3, 32, 32), (24, 3, 2, 2), 1, 0, False),
]


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def _implementations(xs, ws, stride, padding, naive):
    import numpy as np
    import torch

    from chainrule.backend import _im2col
    from chainrule.backend.conv_geometry import ConvGeometry
    from chainrule.nn.reference_conv import conv2d_backward_naive, conv2d_naive

    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs, dtype=np.float32)
    w = rng.standard_normal(ws, dtype=np.float32) * 0.1
    b = rng.standard_normal(ws[0], dtype=np.float32)
    geom = ConvGeometry((stride, stride), ((padding, padding), (padding, padding)))
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels-last memory
    gy = _im2col.conv2d_forward(x_cl, w, b, geom)
    gy = np.ones_like(gy)  # channels-last like the forward's output

    def im2col_fwd():
        _im2col.conv2d_forward(x_cl, w, b, geom)

    def im2col_step():
        _im2col.conv2d_forward(x_cl, w, b, geom)
        _im2col.conv2d_backward_data(gy, w, xs[2:], geom)
        _im2col.conv2d_backward_weight(x_cl, gy, ws[2:], geom, True)

    impls = {"im2col": (im2col_fwd, im2col_step)}
    for layout, fmt in (("torch NCHW", torch.contiguous_format), ("torch channels_last", torch.channels_last)):
        xt = torch.from_numpy(x).contiguous(memory_format=fmt).requires_grad_()
        wt = torch.from_numpy(w).contiguous(memory_format=fmt).requires_grad_()
        bt = torch.from_numpy(b).requires_grad_()
        gt = torch.ones_like(torch.nn.functional.conv2d(xt, wt, bt, stride, padding))

        def fwd(xt=xt, wt=wt, bt=bt):
            with torch.no_grad():
                torch.nn.functional.conv2d(xt, wt, bt, stride, padding)

        def step(xt=xt, wt=wt, bt=bt, gt=gt):
            torch.autograd.grad(torch.nn.functional.conv2d(xt, wt, bt, stride, padding), (xt, wt, bt), gt)

        impls[layout] = (fwd, step)
    if naive:
        x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
        args = dict(stride=(stride, stride), padding=((padding, padding), (padding, padding)))
        g64 = np.ones(gy.shape)

        def naive_fwd():
            conv2d_naive(x64, w64, b64, **args)

        def naive_step():
            conv2d_naive(x64, w64, b64, **args)
            conv2d_backward_naive(g64, x64, w64, **args)

        impls["naive"] = (naive_fwd, naive_step)
    return impls


def worker(impl: str, clock) -> None:
    """Serve timings of ``impl`` over stdin/stdout: a line "layer part" runs that pass once and answers its
    seconds on ``clock``; the implementations of a layer are built when first asked for."""
    built: dict[int, tuple] = {}
    for line in sys.stdin:
        index, part = map(int, line.split())
        if index not in built:
            label, xs, ws, stride, padding, naive = LAYERS[index]
            built = {index: _implementations(xs, ws, stride, padding, naive)[impl]}  # one layer's arrays at a time
        fn = built[index][part]
        t0 = clock()
        fn()
        print(clock() - t0, flush=True)


def run(rounds: int, threads: int, cpu_time: bool) -> list[dict]:
    """Every implementation in its own process (one BLAS / OpenMP thread pool each: pools of two libraries
    alternating in one process slow each other down), driven in alternating turns from here."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    names = ["im2col", "torch NCHW", "torch channels_last", "naive"]
    extra = ["--cpu-time"] if cpu_time else []
    procs = {name: subprocess.Popen([sys.executable, __file__, "--worker", name, *extra], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, env=env) for name in names}

    def ask(name: str, index: int, part: int) -> float:
        procs[name].stdin.write(f"{index} {part}\n")
        procs[name].stdin.flush()
        return float(procs[name].stdout.readline())

    rows = []
    try:
        for index, (label, _, _, _, _, naive) in enumerate(LAYERS):
            here = names if naive else names[:3]
            for name in here:  # warm up (page faults, oneDNN primitive creation)
                ask(name, index, 0)
                ask(name, index, 1)
            times = {(name, part): [] for name in here for part in (0, 1)}
            for r in range(rounds if not naive else max(3, rounds // 2)):
                for name in here[r % len(here):] + here[:r % len(here)]:
                    for part in (0, 1):
                        times[(name, part)].append(ask(name, index, part))
            for part, what in ((0, "forward"), (1, "forward + backward")):
                med = {name: statistics.median(times[(name, part)]) * 1e3 for name in here}
                rows.append({"layer": label, "pass": what, "ms": med,
                             "ratio": {name: med[name] / med["im2col"] for name in here}})
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait()
    return rows


def table(rows: list[dict], header: str) -> str:
    cols = ["naive", "im2col", "torch NCHW", "torch channels_last"]
    lines = [header, "", "| layer | pass | " + " | ".join(f"{c} ms (x im2col)" for c in cols) + " |",
             "| --- | --- |" + " ---: |" * len(cols)]
    for row in rows:
        cells = [f"{row['ms'][c]:.2f} ({row['ratio'][c]:.2f})" if c in row["ms"] else "-" for c in cols]
        lines.append(f"| {row['layer']} | {row['pass']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="BLAS / torch threads (default: 2)")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds; the median is reported (default: 7)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time each pass by its process's CPU time instead of wall time: with --threads 1 it does "
                         "not count the time other jobs take the core away (a loaded machine)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        worker(args.worker, time.process_time if args.cpu_time else time.perf_counter)
        return
    import numpy as np
    import torch

    load_before = os.getloadavg()
    rows = run(args.rounds, args.threads, args.cpu_time)
    load_after = os.getloadavg()
    meta = {"machine": _machine(), "threads": args.threads, "numpy": np.__version__, "torch": torch.__version__,
            "load_avg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rounds": args.rounds,
            "clock": "process CPU time" if args.cpu_time else "wall time"}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}))
        return
    header = (f"{meta['machine']}; {args.threads} threads; NumPy {meta['numpy']}, PyTorch {meta['torch']}; "
              f"{meta['date']}; load average {load_before[0]:.1f} -> {load_after[0]:.1f}; median of "
              f"{args.rounds} alternating rounds (naive rows: {max(3, args.rounds // 2)}); {meta['clock']}; float32 "
              "(naive float64)")
    print(table(rows, header))


if __name__ == "__main__":
    main()
