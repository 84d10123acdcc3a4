"""One training step of the airbench93-shaped conv net (float32, batch 256, 32x32): chainrule vs PyTorch CPU eager.

The net (issue: convolutional layers): 2x2 conv 3->24 + GELU; three groups of conv3x3 -> maxpool2 -> BatchNorm2d ->
GELU -> conv3x3 -> BatchNorm2d -> GELU with widths 64 / 128 / 128; maxpool 3; linear 128 -> 10. A step is forward,
softmax cross-entropy, backward and an SGD update (lr 0.01, momentum 0.9, nesterov). Convolutions before a batch
norm have no bias (as airbench's), the first one has.

Variants, all built in this one process and timed in alternating turns (each round runs every variant for
``--steps`` steps, in an order rotated every round, so load from other users of the machine falls on all alike):

- PyTorch NCHW float32, PyTorch channels_last float32 (model and batch converted once), and PyTorch channels_last
  under ``torch.autocast("cpu", torch.bfloat16)`` where the CPU has bfloat16 instructions (AVX-512 BF16 / AMX);
- chainrule with each convolution backend available (``numpy``: im2col + GEMM; ``onednn``: oneDNN's primitives)
  and GEMM backend (the linear layer: ``numpy`` = NumPy's OpenBLAS, ``onednn`` = oneDNN's matmul on the same OpenMP
  pool as its convolutions), and in bfloat16 (``set_float32_matmul_precision("medium")``) where the CPU has it.

It reports ms per step and images/s (medians over rounds), the ratio to PyTorch's faster float32 layout (the median
of per-round ratios: >= 1 means chainrule is at least as fast), and with ``--memory`` the peak memory of each
variant in its own process (the resident-set high-water mark (VmHWM) of two steps above the process's size after the
model is built and one step has run, the process's whole peak, imports included, and for chainrule tracemalloc's
peak of NumPy's allocations during a step). ``--layers`` adds per-layer
forward / backward times beside PyTorch's (every layer of the net, and each convolution's three kernels: forward,
gradient of the input, gradient of the weights). The header prints the machine (CPU model, ISA flags, oneDNN's
ISA), the threads, the OpenMP runtimes loaded and the load average before and after.

    python bench/bench_conv.py                   # full: steps, per-layer, memory (a few minutes on 2 cores)
    python bench/bench_conv.py --quick           # a smoke run: fewer rounds, batch 64
    python bench/bench_conv.py --threads 2 --rounds 9 --steps 2 --layers --memory --json out.json
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

LR, MOMENTUM = 0.01, 0.9
WIDTHS = (64, 128, 128)


def spec() -> list[tuple]:
    """The net as (kind, *arguments) rows, shared by both libraries' builders."""
    rows: list[tuple] = [("conv", 3, 24, 2, 0, True), ("gelu",)]
    c = 24
    for width in WIDTHS:
        rows += [("conv", c, width, 3, 1, False), ("maxpool", 2), ("bn", width), ("gelu",),
                 ("conv", width, width, 3, 1, False), ("bn", width), ("gelu",)]
        c = width
    return rows + [("maxpool", 3), ("flatten",), ("linear", c, 10)]


def layer_name(row: tuple) -> str:
    kind = row[0]
    if kind == "conv":
        return f"conv{row[3]}x{row[3]} {row[1]}->{row[2]}"
    if kind == "maxpool":
        return f"maxpool{row[1]}"
    if kind == "bn":
        return f"batchnorm2d {row[1]}"
    if kind == "linear":
        return f"linear {row[1]}->{row[2]}"
    return kind


# ---- machine ------------------------------------------------------------------------------------------------------


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def has_bf16(flags: set[str]) -> bool:
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def loaded_libraries(*names: str) -> list[str]:
    """Paths of the shared libraries mapped into this process whose file name contains one of ``names``."""
    found = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if path.startswith("/") and any(n in Path(path).name for n in names):
                    found.add(path)
    except OSError:
        pass
    return sorted(found)


def machine(threads: int) -> dict:
    import numpy as np
    import torch

    from chainrule import backend

    flags = cpu_flags()
    isa = sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma", "avx_vnni"))
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_model(), "cores": os.cpu_count(), "isa_flags": " ".join(isa), "threads": threads,
            "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "load_before": os.getloadavg()}
    try:
        from chainrule.backend import _onednn_conv

        prims, why = _onednn_conv.primitives()
        info["onednn"] = (f"{prims.dnnl.version} ({prims.dnnl.path}), ISA {prims.dnnl.isa()}, bf16 conv: "
                          f"{prims.bf16_problem() or 'available'}") if prims else why
    except ImportError as e:
        info["onednn"] = str(e)
    info["gemm"] = backend.info()["gemm"]
    return info


# ---- PyTorch ------------------------------------------------------------------------------------------------------


def torch_net(torch, rows):
    layers = []
    for row in rows:
        kind = row[0]
        if kind == "conv":
            layers.append(torch.nn.Conv2d(row[1], row[2], row[3], padding=row[4], bias=row[5]))
        elif kind == "gelu":
            layers.append(torch.nn.GELU())
        elif kind == "maxpool":
            layers.append(torch.nn.MaxPool2d(row[1]))
        elif kind == "bn":
            layers.append(torch.nn.BatchNorm2d(row[1]))
        elif kind == "flatten":
            layers.append(torch.nn.Flatten())
        else:
            layers.append(torch.nn.Linear(row[1], row[2]))
    return torch.nn.Sequential(*layers)


def torch_step(x, y, layout: str, bf16: bool):
    import torch

    torch.manual_seed(0)
    model = torch_net(torch, spec())
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        xt = xt.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()

    return step


# ---- chainrule ----------------------------------------------------------------------------------------------------


def chainrule_missing() -> str:
    """Why chainrule cannot build the net here ("" when it can): the spatial ops it needs."""
    from chainrule import nn

    missing = [name for name in ("Conv2d", "MaxPool2d", "BatchNorm2d") if not hasattr(nn, name)]
    return f"chainrule.nn lacks {', '.join(missing)} on this checkout" if missing else ""


def conv_backends() -> list[str]:
    from chainrule.backend import conv

    found = []
    for name in ("numpy", "onednn"):
        try:
            conv.select_conv(name)
            found.append(name)
        except RuntimeError:
            pass
    conv.select_conv("numpy")
    return found


def chainrule_net(rows, seed: int = 0):
    from chainrule import nn

    layers = []
    for row in rows:
        kind = row[0]
        if kind == "conv":
            layers.append(nn.Conv2d(row[1], row[2], row[3], padding=row[4], bias=row[5]))
        elif kind == "gelu":
            layers.append(nn.GELU())
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(row[1]))
        elif kind == "bn":
            layers.append(nn.BatchNorm2d(row[1]))
        elif kind == "flatten":
            layers.append(nn.Flatten())
        else:
            layers.append(nn.Linear(row[1], row[2]))
    return nn.Sequential(*layers)


class Backends:
    """Selects chainrule's convolution / GEMM backends and precision for one variant's turn, and restores them."""

    def __init__(self, conv: str, gemm: str, bf16: bool):
        self.conv, self.gemm, self.bf16 = conv, gemm, bf16

    def __enter__(self):
        from chainrule import backend
        from chainrule.backend import conv

        conv.select_conv(self.conv)
        backend.select(self.gemm)
        if self.bf16:
            backend.set_float32_matmul_precision("medium")

    def __exit__(self, *exc):
        from chainrule import backend

        backend.set_float32_matmul_precision("highest")


def chainrule_step(x, y, conv: str, gemm: str, bf16: bool):
    from chainrule import optim
    from chainrule.nn import functional as F

    import numpy as np

    np.random.seed(0)
    model = chainrule_net(spec())
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)
    backends = Backends(conv, gemm, bf16)

    def step():
        with backends:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()

    return step


# ---- variants -----------------------------------------------------------------------------------------------------


def variants(bf16_cpu: bool, quick: bool, only_conv: list[str] | None = None) -> tuple[list[tuple[str, dict]], str]:
    """[(name, constructor arguments)], and why chainrule's rows are missing ("" when present); ``only_conv`` keeps
    chainrule's rows of those convolution backends."""
    out = [("torch NCHW fp32", dict(lib="torch", layout="nchw", bf16=False)),
           ("torch channels_last fp32", dict(lib="torch", layout="channels_last", bf16=False))]
    if bf16_cpu:
        out.append(("torch channels_last bf16 autocast", dict(lib="torch", layout="channels_last", bf16=True)))
    why = chainrule_missing()
    if why:
        return out, why
    convs = [c for c in conv_backends() if only_conv is None or c in only_conv]
    for conv in convs:
        gemms = ["numpy", "onednn"] if conv == "onednn" and not quick else ["numpy"]
        for gemm in gemms:
            out.append((f"chainrule conv={conv} gemm={gemm} fp32", dict(lib="chainrule", conv=conv, gemm=gemm,
                                                                          bf16=False)))
    if "onednn" in convs and bf16_cpu:
        out.append(("chainrule conv=onednn gemm=onednn bf16", dict(lib="chainrule", conv="onednn", gemm="onednn",
                                                                   bf16=True)))
    return out, ""


def build(kw: dict, x, y):
    if kw["lib"] == "torch":
        return torch_step(x, y, kw["layout"], kw["bf16"])
    return chainrule_step(x, y, kw["conv"], kw["gemm"], kw["bf16"])


def batch(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, size=n)


def measure_steps(names_kw, x, y, rounds: int, steps: int, warmup: int) -> dict[str, list[float]]:
    """{name: [median seconds per step of each round]}, the variants taking turns."""
    fns = {name: build(kw, x, y) for name, kw in names_kw}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for r in range(rounds):
        for name in order[r % len(order):] + order[:r % len(order)]:
            per = []
            for _ in range(steps):
                t0 = time.perf_counter()
                fns[name]()
                per.append(time.perf_counter() - t0)
            times[name].append(statistics.median(per))
        print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n.split(' fp32')[0]} {1e3 * t[-1]:.0f}"
                                                      for n, t in times.items()) + " ms", flush=True)
    return times


def step_table(times: dict[str, list[float]], n: int) -> tuple[str, list[dict]]:
    fp32_torch = [k for k in times if k.startswith("torch") and "fp32" in k]
    best = min(fp32_torch, key=lambda k: statistics.median(times[k]))
    rows, lines = [], ["| variant | ms / step | img/s | vs " + best + " (median of rounds, range) |",
                       "| --- | ---: | ---: | ---: |"]
    for name, ts in times.items():
        ratios = [b / t for b, t in zip(times[best], ts)]
        ms = 1e3 * statistics.median(ts)
        rows.append(dict(variant=name, ms=ms, img_s=n / (ms / 1e3), ratio=statistics.median(ratios),
                         ratio_min=min(ratios), ratio_max=max(ratios)))
        lines.append(f"| {name} | {ms:.0f} | {n / (ms / 1e3):.0f} | **{statistics.median(ratios):.2f}x** "
                     f"({min(ratios):.2f}-{max(ratios):.2f}) |")
    return "\n".join(lines), rows


# ---- per layer ----------------------------------------------------------------------------------------------------


def _median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def layer_inputs(x):
    """The input of every layer of the net (a PyTorch forward in float32), NCHW NumPy arrays."""
    import torch

    torch.manual_seed(0)
    model = torch_net(torch, spec())
    h, inputs = torch.from_numpy(x), []
    with torch.no_grad():
        for layer in model:
            inputs.append(h.contiguous().numpy())
            h = layer(h)
    return inputs


def per_layer(x, repeats: int, with_chainrule: bool, conv: str) -> tuple[str, list[dict]]:
    """Forward and backward ms of each layer alone: PyTorch channels_last and NCHW, chainrule (its ``conv``
    backend); turns alternate within each layer."""
    import numpy as np
    import torch

    rows_spec, inputs = spec(), layer_inputs(x)
    tmodel = torch_net(torch, rows_spec)
    cmodel = chainrule_net(rows_spec) if with_chainrule else None
    if with_chainrule:
        from chainrule import Tensor
        from chainrule.backend import conv as conv_backend

        conv_backend.select_conv(conv)
    out, lines = [], ["| layer | input | torch NCHW fwd / bwd | torch channels_last fwd / bwd | "
                      f"chainrule ({conv}) fwd / bwd | chainrule / torch best (fwd+bwd) |",
                      "| --- | --- | ---: | ---: | ---: | ---: |"]
    for i, row in enumerate(rows_spec):
        xin = inputs[i]
        res = {}
        for fmt in ("nchw", "channels_last"):
            layer = tmodel[i]
            if fmt == "channels_last" and xin.ndim == 4:
                layer = layer.to(memory_format=torch.channels_last)
                xt0 = torch.from_numpy(xin).contiguous(memory_format=torch.channels_last)
            else:
                xt0 = torch.from_numpy(xin)
            res[fmt] = _torch_layer_times(torch, layer, xt0, repeats)
        if with_chainrule:
            xc = xin if xin.ndim != 4 else np.ascontiguousarray(xin.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
            if i == 0:
                xc = xin  # the images arrive NCHW
            res["chainrule"] = _chainrule_layer_times(Tensor, cmodel[i], xc, repeats)
        best = min(sum(res["nchw"]), sum(res["channels_last"]))
        row_out = dict(layer=layer_name(row), input=list(xin.shape), **{k: v for k, v in res.items()})
        ratio = f"{sum(res['chainrule']) / best:.2f}" if with_chainrule else "-"
        ch = ("%.1f / %.1f" % tuple(1e3 * v for v in res["chainrule"])) if with_chainrule else "-"
        lines.append(f"| {layer_name(row)} | {tuple(xin.shape[1:])} | "
                     f"{1e3 * res['nchw'][0]:.1f} / {1e3 * res['nchw'][1]:.1f} | "
                     f"{1e3 * res['channels_last'][0]:.1f} / {1e3 * res['channels_last'][1]:.1f} | {ch} | {ratio} |")
        out.append(row_out)
    return "\n".join(lines), out


def _torch_layer_times(torch, layer, x0, repeats: int) -> tuple[float, float]:
    xin = x0.clone().requires_grad_(True)
    gy = None
    fwd, bwd = [], []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        y = layer(xin)
        t1 = time.perf_counter()
        if gy is None:
            gy = torch.ones_like(y)
        y.backward(gy)
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
    return statistics.median(fwd[1:]), statistics.median(bwd[1:])


def _chainrule_layer_times(Tensor, layer, x0, repeats: int) -> tuple[float, float]:
    import numpy as np

    gy = None
    fwd, bwd = [], []
    for _ in range(repeats + 1):
        xin = Tensor(x0, requires_grad=True)
        t0 = time.perf_counter()
        y = layer(xin)
        t1 = time.perf_counter()
        if gy is None:
            gy = np.ones_like(y.data)
        y.backward(gy)
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
    return statistics.median(fwd[1:]), statistics.median(bwd[1:])


def conv_kernels(x, repeats: int, layouts: bool) -> tuple[str, list[dict]]:
    """Each convolution of the net alone, its three kernels: oneDNN through chainrule (channels-last) beside
    PyTorch's ``aten.convolution`` / ``convolution_backward`` in channels_last and NCHW, turns alternating; with
    ``layouts`` also oneDNN with the activations in the layout the primitive picks (``format_tag any``: blocked),
    reordered in and out at every call."""
    import numpy as np
    import torch

    from chainrule.backend import _onednn_conv as oc
    from chainrule.backend.conv_geometry import ConvGeometry

    prims, why = oc.primitives()
    rows_spec, inputs = spec(), layer_inputs(x)
    extra = " oneDNN blocked (any) fwd / dgrad / wgrad |" if layouts else ""
    out, lines = [], ["| conv | input | torch NCHW fwd / dgrad / wgrad | torch channels_last fwd / dgrad / wgrad | "
                      "oneDNN via chainrule fwd / dgrad / wgrad | kernels | oneDNN / torch best |" + extra,
                      "| --- | --- | ---: | ---: | ---: | --- | ---: |" + (" ---: |" if layouts else "")]
    rng = np.random.default_rng(0)
    for i, row in enumerate(rows_spec):
        if row[0] != "conv":
            continue
        _, cin, cout, k, pad, bias = row
        xin = inputs[i]
        w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        b = np.zeros(cout, np.float32) if bias else None
        geom = ConvGeometry((1, 1), ((pad, pad), (pad, pad)))
        ho, wo = geom.output_size(xin.shape[2:], (k, k))
        gy = rng.standard_normal((xin.shape[0], cout, ho, wo)).astype(np.float32)
        cl = lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # noqa: E731
        x_cl, gy_cl = cl(xin), cl(gy)
        fns = {}
        for fmt in ("nchw", "channels_last"):
            mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
            xt = torch.from_numpy(xin).contiguous(memory_format=mf)
            wt = torch.from_numpy(w).contiguous(memory_format=mf)
            gyt = torch.from_numpy(gy).contiguous(memory_format=mf)
            bt = torch.from_numpy(b) if bias else None
            conv = torch.ops.aten.convolution
            back = torch.ops.aten.convolution_backward
            fns[fmt] = (
                lambda xt=xt, wt=wt, bt=bt: conv(xt, wt, bt, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1),
                lambda xt=xt, wt=wt, gyt=gyt: back(gyt, xt, wt, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1,
                                                   [True, False, False]),
                lambda xt=xt, wt=wt, gyt=gyt: back(gyt, xt, wt, [cout] if bias else None, [1, 1], [pad, pad],
                                                   [1, 1], False, [0, 0], 1, [False, True, bias]))
        for name, act in [("onednn", "nhwc")] + ([("onednn any", "any")] if layouts else []):
            def run(f, act=act):
                oc.ACTIVATIONS = act  # read when a plan is made, and part of the plan's key
                try:
                    return f()
                finally:
                    oc.ACTIVATIONS = "nhwc"
            fns[name] = (lambda run=run: run(lambda: prims.forward(x_cl, w, b, geom)),
                         lambda run=run: run(lambda: prims.backward_data(gy_cl, w, (xin.shape[2], xin.shape[3]),
                                                                         geom)),
                         lambda run=run: run(lambda: prims.backward_weight(x_cl, gy_cl, (k, k), geom, bias)))
        times = {name: [[], [], []] for name in fns}
        for f3 in fns.values():
            for f in f3:
                f()  # warm-up: JIT, plan cache
        names = list(fns)
        for r in range(repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                for j, f in enumerate(fns[name]):
                    t0 = time.perf_counter()
                    f()
                    times[name][j].append(time.perf_counter() - t0)
        med = {name: [statistics.median(t) for t in ts] for name, ts in times.items()}
        best = min(sum(med["nchw"]), sum(med["channels_last"]))
        impls = " / ".join(plan.impl for key, plan in prims.cache.items()
                           if key[1] == xin.shape and w.shape in key and geom in key and key[-1] == "nhwc")
        fmt3 = lambda v: " / ".join(f"{1e3 * t:.1f}" for t in v)  # noqa: E731
        lines.append(f"| {layer_name(row)} | {tuple(xin.shape[1:])} | {fmt3(med['nchw'])} | "
                     f"{fmt3(med['channels_last'])} | {fmt3(med['onednn'])} | {impls} | "
                     f"{sum(med['onednn']) / best:.2f} |" + (f" {fmt3(med['onednn any'])} |" if layouts else ""))
        out.append(dict(layer=layer_name(row), input=list(xin.shape), **med, impls=impls))
    return "\n".join(lines), out


# ---- memory (one process per variant) -----------------------------------------------------------------------------


def _rss_kib() -> tuple[int, int]:
    with open("/proc/self/status") as f:
        fields = {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmRSS", "VmHWM"))}
    return fields["VmRSS"], fields["VmHWM"]


def child_memory(name: str, kw: dict, n: int) -> None:
    """Run in a fresh process: one variant, one warm-up step, then the peak over two steps; prints JSON."""
    import tracemalloc

    x, y = batch(n)
    step = build(kw, x, y)
    step()
    _, hwm_first = _rss_kib()  # the process's peak so far: imports, build, the first step
    with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark to the current RSS
        f.write("5")
    rss0, _ = _rss_kib()
    tracemalloc.start()
    for _ in range(2):
        step()
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    _, hwm = _rss_kib()
    # (ru_maxrss is not used: Linux keeps it across execve, so a child reports its parent's peak if larger)
    print(json.dumps(dict(variant=name, rss_after_warmup_mib=rss0 / 1024, step_peak_above_mib=(hwm - rss0) / 1024,
                          process_peak_mib=max(hwm, hwm_first) / 1024,
                          tracemalloc_peak_mib=traced / 2**20 if kw["lib"] == "chainrule" else None)))


def memory(names_kw, n: int, threads: int) -> tuple[str, list[dict]]:
    rows, lines = [], ["| variant | RSS after build + 1 step (MiB) | step peak above it (MiB) | process peak (MiB) | "
                       "tracemalloc peak of a step (MiB) |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, kw in names_kw:
        cmd = [sys.executable, __file__, "--threads", str(threads), "--batch", str(n), "--child-memory",
               json.dumps([name, kw])]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            lines.append(f"| {name} | failed: {res.stderr.strip().splitlines()[-1:]} | | | |")
            continue
        d = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(d)
        tm = "-" if d["tracemalloc_peak_mib"] is None else f"{d['tracemalloc_peak_mib']:.0f}"
        lines.append(f"| {name} | {d['rss_after_warmup_mib']:.0f} | {d['step_peak_above_mib']:.0f} | "
                     f"{d['process_peak_mib']:.0f} | {tm} |")
    return "\n".join(lines), rows


# ---- main ---------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (medians over rounds)")
    ap.add_argument("--steps", type=int, default=2, help="steps per variant per round")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--layers", action="store_true", help="per-layer and per-kernel tables")
    ap.add_argument("--layer-repeats", type=int, default=7)
    ap.add_argument("--layouts", action="store_true", help="with --layers: oneDNN's blocked layouts (any) too")
    ap.add_argument("--memory", action="store_true", help="peak memory, one process per variant")
    ap.add_argument("--no-steps", action="store_true", help="skip the whole-step table")
    ap.add_argument("--conv", nargs="+", choices=("numpy", "onednn"), help="chainrule's conv backends to time "
                    "(default: every one available; the numpy im2col step takes ~4x oneDNN's)")
    ap.add_argument("--quick", action="store_true", help="smoke run: batch 64, 3 rounds, 1 step, tables small")
    ap.add_argument("--json", type=Path, help="write every number to this file")
    ap.add_argument("--markdown", type=Path, help="write the printed report (header and tables) to this file")
    ap.add_argument("--child-memory", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.batch, args.rounds, args.steps, args.warmup, args.layer_repeats = 64, 3, 1, 1, 3
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before NumPy, torch or oneDNN start their pools
    import torch

    torch.set_num_threads(args.threads)  # OpenMP: torch's libgomp, which oneDNN shares (one soname, one copy)
    if args.child_memory:
        name, kw = json.loads(args.child_memory)
        child_memory(name, kw, args.batch)
        return

    report: list[str] = []

    def say(*parts) -> None:
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        report.append(line)

    info = machine(args.threads)
    bf16_cpu = has_bf16(cpu_flags())
    names_kw, why = variants(bf16_cpu, args.quick, args.conv)
    info["openmp_runtimes"] = loaded_libraries("gomp", "iomp", "omp.so")
    info["blas_libraries"] = loaded_libraries("openblas", "mkl_rt", "libdnnl")
    say("# bench_conv: one training step of the airbench93-shaped net, batch", args.batch)
    for k, v in info.items():
        say(f"- {k}: {v}")
    if why:
        say(f"- chainrule rows: none ({why}); PyTorch rows and oneDNN's kernels only")
    if not bf16_cpu:
        say("- bf16 rows: none (the CPU shows neither avx512_bf16 nor amx_bf16)")
    x, y = batch(args.batch)
    result = dict(machine=info, batch=args.batch)

    if not args.no_steps:
        say(f"\n## Training step ({args.rounds} rounds x {args.steps} steps, alternating)")
        times = measure_steps(names_kw, x, y, args.rounds, args.steps, args.warmup)
        table, rows = step_table(times, args.batch)
        say(table)
        result["steps"] = rows
    if args.layers:
        say(f"\n## Convolution kernels alone (median of {args.layer_repeats}, ms)")
        table, rows = conv_kernels(x, args.layer_repeats, args.layouts)
        say(table)
        result["conv_kernels"] = rows
        say(f"\n## Per layer, forward / backward (median of {args.layer_repeats}, ms)")
        conv = "onednn" if not why and "onednn" in conv_backends() else "numpy"
        table, rows = per_layer(x, args.layer_repeats, not why, conv)
        say(table)
        result["layers"] = rows
    if args.memory:
        say("\n## Peak memory (one process per variant)")
        table, rows = memory(names_kw, args.batch, args.threads)
        say(table)
        result["memory"] = rows
    result["machine"]["load_after"] = os.getloadavg()
    say(f"\n- load average before {info['load_before']}, after {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.markdown:
        args.markdown.write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
