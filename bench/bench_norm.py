"""Batch norm, training forward + backward, at the airbench conv net's sizes (batch 256): chainrule's NumPy formula
vs its oneDNN kernels (``chainrule.backend._onednn_norm``) vs PyTorch CPU eager, float32, weight frozen at 1 and a
trained bias as ``nn.ConvNet`` has them. chainrule: the op's forward and its node's backward (gx, dbeta), what a
training step runs for a batch norm inside a net (``autograd.grad`` on the leaf x would add a copy of gx);
PyTorch: forward and ``torch.autograd.grad`` of x and the bias. Medians of ``--rounds`` (ms); ratios to PyTorch;
the load average.

    OMP_NUM_THREADS=2 python bench/bench_norm.py --threads 2 [--rounds 9] [--layout channels_last|nchw]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from chainrule import Tensor
from chainrule.backend import conv
from chainrule.nn import functional as F

SHAPES = [(256, 64, 16, 16), (256, 128, 8, 8), (256, 128, 4, 4)]


def median_ms(step, rounds: int) -> float:
    step()  # warm-up: plans created, buffers allocated
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def chainrule_step(x, gy):
    c = x.shape[1]
    w, b = np.ones(c, np.float32), Tensor(np.zeros(c, np.float32), requires_grad=True)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)

    def step():
        out = F.batch_norm(Tensor(x, requires_grad=True), rm, rv, w, b, True, 0.4, 1e-12)
        node = out._ctx
        type(node).backward(node, gy)  # the node's backward, as a training step runs it
    return step


def torch_step(x, gy, layout: str):
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    tx, tg = (torch.from_numpy(np.ascontiguousarray(a)).contiguous(memory_format=fmt) for a in (x, gy))
    bn = torch.nn.BatchNorm2d(x.shape[1], eps=1e-12, momentum=0.4)
    bn.weight.requires_grad_(False)

    def step():
        xt = tx.detach().requires_grad_()
        torch.autograd.grad(bn(xt), [xt, bn.bias], tg)
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--layout", choices=["channels_last", "nchw"], default="channels_last")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    before = conv.info()["conv_requested"]
    print(f"threads {args.threads}, layout {args.layout}, load before {os.getloadavg()}")
    print(f"{'shape':>20} {'numpy ms':>9} {'onednn ms':>9} {'torch ms':>9} {'numpy/torch':>11} {'onednn/torch':>12}")
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x, gy = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
        if args.layout == "channels_last":
            x, gy = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) for a in (x, gy))
        ms = {}
        for backend in ("numpy", "onednn"):  # the batch norm kernels follow the convolution backend
            conv.select_conv(backend)
            ms[backend] = median_ms(chainrule_step(x, gy), args.rounds)
        t_np, t_dnnl = ms["numpy"], ms["onednn"]
        t_torch = median_ms(torch_step(x, gy, args.layout), args.rounds)
        print(f"{str(shape):>20} {t_np:9.2f} {t_dnnl:9.2f} {t_torch:9.2f} {t_np / t_torch:11.2f} "
              f"{t_dnnl / t_torch:12.2f}")
    conv.select_conv(before)
    print(f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
