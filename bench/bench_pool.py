"""Pooling and spatial batch norm, forward + backward, against PyTorch CPU eager in the same process.

The layers of the airbench-shaped conv net (issue: conv layers): MaxPool2d(2) after each conv group,
MaxPool2d(3) at the end, BatchNorm2d in training mode, plus 3x3/stride-2/padding-1 max pooling and 2x2 average
pooling. Each case runs in NCHW and in channels-last memory (chainrule: a transposed view of an NHWC buffer;
PyTorch: ``memory_format=torch.channels_last``), float32. Turns alternate between the two libraries; the median of
``--repeats`` turns is reported with the ratio chainrule / PyTorch (below 1: chainrule is faster), the thread
count, and the load average before and after (the machine may be shared: quote the ratios).

    python bench/bench_pool.py [--batch 256] [--repeats 7] [--threads 2] [--naive]

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
        ("maxpool 3x3 s3", (128, 4, 4), lambda: nn.MaxPool2d(3), lambda: torch.nn.MaxPool2d(3)),
        ("maxpool 3x3 s2 p1", (64, 32, 32), lambda: nn.MaxPool2d(3, 2, 1), lambda: torch.nn.MaxPool2d(3, 2, 1)),
        ("avgpool 2x2 s2", (64, 32, 32), lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2)),
        ("batchnorm2d", (64, 16, 16), lambda: nn.BatchNorm2d(64), lambda: torch.nn.BatchNorm2d(64)),
    ]


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--naive", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    import chainrule as cr

    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
          f"batch {args.batch}, float32, median of {args.repeats}; NumPy {np.__version__}, torch {torch.__version__}")
    print(f"{'layer':<20} {'input (C,H,W)':<15} {'layout':<14} {'chainrule ms':>12} {'torch ms':>9} {'ratio':>6}")
    rng = np.random.default_rng(0)
    for name, chw, ours_f, theirs_f in _cases(args.batch):
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

            def step_c():
                xc.grad = None
                ours(xc).backward(up_c)

            def step_t():
                xt.grad = None
                theirs(xt).backward(up_t)

            tc, tt = [], []
            for _ in range(args.repeats):  # alternating turns
                tc.append(_time(step_c, 1))
                tt.append(_time(step_t, 1))
            mc, mt = statistics.median(tc) * 1e3, statistics.median(tt) * 1e3
            print(f"{name:<20} {str(chw):<15} {layout:<14} {mc:12.2f} {mt:9.2f} {mc / mt:6.2f}", flush=True)
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
