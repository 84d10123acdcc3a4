"""Pooling and spatial batch norm, forward + backward, against PyTorch CPU eager in the same process.

The layers of the airbench-shaped conv net (issue: conv layers): MaxPool2d(2) after each conv group,
MaxPool2d(3) at the end, BatchNorm2d in training mode, plus 3x3/stride-2/padding-1 max pooling and 2x2 average
pooling. Each case runs in NCHW and in channels-last memory (chainrule: a transposed view of an NHWC buffer;
PyTorch: ``memory_format=torch.channels_last``), float32. chainrule runs once per convolution backend of
``--conv`` (``numpy``: max pooling's NumPy taps; ``onednn``: oneDNN's pooling primitive, ``chainrule.backend.
_onednn_pool``, where it applies; the other layers are NumPy either way). Turns alternate between the libraries;
the median of ``--repeats`` turns is reported with the ratio chainrule / PyTorch (below 1: chainrule is faster),
the thread count, and the load average before and after (the machine may be shared: quote the ratios).

    python bench/bench_pool.py [--batch 256] [--repeats 7] [--threads 2] [--conv numpy onednn] [--only max]
                               [--kernels] [--cpu-time] [--naive]

``--kernels`` times max pooling's two kernels instead of the layer (``pooling.max_taps`` + ``pooling.scatter_taps``,
the work of ``MaxPool2d`` inside a net), against ``torch.nn.functional.max_pool2d`` forward + backward: the layer
timing of a leaf input also holds the copy chainrule's engine makes of a leaf's gradient when it is a view (as a
channels-last or cropped gradient is), which a pooling layer inside a net does not pay.

``--naive`` also times the looped references of ``chainrule.nn.reference_spatial`` on a small input (they exist
to be read and tested against, not to be fast).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np


def _cases(batch: int):
    # name, (C, H, W), chainrule layer factory, torch layer factory
    from chainrule import nn
    import torch

    return [
        ("maxpool 2x2 s2", (64, 32, 32), lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2)),
        ("maxpool 2x2 s2", (128, 16, 16), lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2)),
        ("maxpool 2x2 s2", (128, 8, 8), lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2)),
        ("maxpool 3x3 s3", (128, 4, 4), lambda: nn.MaxPool2d(3), lambda: torch.nn.MaxPool2d(3)),
        ("maxpool 3x3 s2 p1", (64, 32, 32), lambda: nn.MaxPool2d(3, 2, 1), lambda: torch.nn.MaxPool2d(3, 2, 1)),
        ("avgpool 2x2 s2", (64, 32, 32), lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2)),
        ("batchnorm2d", (64, 16, 16), lambda: nn.BatchNorm2d(64), lambda: torch.nn.BatchNorm2d(64)),
    ]


CLOCK = [time.perf_counter]  # wall time; --cpu-time: time.process_time


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = CLOCK[0]()
        fn()
        times.append(CLOCK[0]() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--conv", nargs="+", default=["numpy", "onednn"], choices=["numpy", "onednn"],
                    help="chainrule's convolution backends to time (oneDNN's pooling runs under onednn)")
    ap.add_argument("--only", default="", help="only the layers whose name contains this, e.g. max")
    ap.add_argument("--kernels", action="store_true", help="max pooling's kernels, not the layer (see above)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="process CPU time instead of wall time (with --threads 1: time spent waiting for a core on a "
                         "loaded machine does not count)")
    ap.add_argument("--naive", action="store_true")
    args = ap.parse_args()
    if args.cpu_time:
        CLOCK[0] = time.process_time
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    import chainrule as cr
    from chainrule.backend import conv
    from chainrule.nn._functions import pooling

    backends = [b for b in args.conv if b == "numpy" or conv.select_conv("auto") == "onednn"]

    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
          f"batch {args.batch}, float32, median of {args.repeats} ({'CPU' if args.cpu_time else 'wall'} time"
          f"{', kernels' if args.kernels else ''}); NumPy {np.__version__}, torch {torch.__version__}")
    print(f"{'layer':<20} {'input (C,H,W)':<15} {'layout':<14} "
          + "".join(f"{b + ' ms':>11} {'ratio':>6} " for b in backends) + f"{'torch ms':>9}")
    rng = np.random.default_rng(0)
    for name, chw, ours_f, theirs_f in _cases(args.batch):
        if args.only not in name or (args.kernels and not name.startswith("maxpool")):
            continue
        x = rng.standard_normal((args.batch, *chw)).astype(np.float32)
        for layout in ("NCHW", "channels_last"):
            xa = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if layout != "NCHW" else x
            xt = torch.tensor(x)
            if layout != "NCHW":
                xt = xt.contiguous(memory_format=torch.channels_last)
            xt.requires_grad_(True)
            ours, theirs = ours_f(), theirs_f()
            xc = cr.Tensor(xa, requires_grad=True)
            up_c = np.ones(ours(xc).shape, np.float32)
            up_c = np.ascontiguousarray(up_c.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if layout != "NCHW" \
                else up_c
            up_t = torch.ones(theirs(xt).shape)
            if layout != "NCHW":
                up_t = up_t.contiguous(memory_format=torch.channels_last)

            window = ours(xc)._ctx.window  # (--kernels)

            def step_c(backend):
                conv.select_conv(backend)
                if args.kernels:
                    _, arg = pooling.max_taps(xa, window, want_arg=True)
                    pooling.scatter_taps(up_c, arg, window, layout != "NCHW")
                    return
                xc.grad = None
                ours(xc).backward(up_c)

            def step_t():
                xt.grad = None
                theirs(xt).backward(up_t)

            tc: dict = {b: [] for b in backends}
            tt = []
            for _ in range(args.repeats):  # alternating turns
                for b in backends:
                    tc[b].append(_time(lambda: step_c(b), 1))
                tt.append(_time(step_t, 1))
            mt = statistics.median(tt) * 1e3
            cols = "".join(f"{statistics.median(tc[b]) * 1e3:11.2f} {statistics.median(tc[b]) * 1e3 / mt:6.2f} "
                           for b in backends)
            print(f"{name:<20} {str(chw):<15} {layout:<14} {cols}{mt:9.2f}", flush=True)
    conv.select_conv("auto")
    if args.naive:
        from chainrule.nn import functional as F
        from chainrule.nn.reference_spatial import max_pool_naive

        x = rng.standard_normal((4, 8, 16, 16))
        fast = _time(lambda: F.max_pool2d(x, 3, 2, 1), 3)
        naive = _time(lambda: max_pool_naive(x, None, (3, 3), (2, 2), (1, 1)), 1)
        print(f"naive max_pool (4, 8, 16, 16) 3x3 s2 p1: {naive * 1e3:.1f} ms, fast {fast * 1e3:.2f} ms "
              f"({naive / fast:.0f}x)")
    print(f"# load average {load0:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
