"""Issue 14's lever study: the 3072-1024-1024-10 ZCA recipe of bench_mlp.py, one lever changed at a time, at a FIXED
number of epochs (so results do not depend on the machine's load), on fixed splits of the 50,000 training images.

Splits (``splits()``; stratified, from ``chainrule.data.train_val_indices``):

- ``val`` = bench_mlp.py's validation split: ``train_val_indices(y, 5000, seed=0)[1]`` (5,000 images);
- ``holdout`` = 5,000 images drawn from the other 45,000: ``rest = train_val_indices(y, 5000, seed=0)[0]``,
  ``rest[train_val_indices(y[rest], 5000, seed=14)[1]]`` -- never scored while tuning (``--final`` only);
- ``train`` = the remaining 40,000 images (tuning runs train here and are scored on ``val``);
- ``--final`` trains on ``train`` + ``val`` (45,000) and scores on ``holdout``.

Indices refer to the order of ``load_image_folder(archive)`` (classes in folder order, files sorted).

The training loop is written out here (not ``MLPClassifier``) so that levers the estimator does not have yet --
mixup, affine warps, EMA, test-time flips, residual and bottleneck layers, bf16 products -- can be tried without
touching it; the baseline (``--config '{}'``) is the estimator's ``best_zca`` recipe: ZCAWhiten(eps=1) fitted on the
training images, the whitened images flipped and 4-px crop-shifted (zero = mean padding), MLP 3072-1024-1024-10
with batch norm, Nesterov SGD lr 0.1 momentum 0.9, weight decay 1e-3 on weight matrices only, batch 256, cosine
decay per step to 0 over the run.

    python bench/ablate_mlp.py --epochs 20 --config '{"bf16": true}' --tag bf16   # one row, JSON to stdout
    python bench/ablate_mlp.py --augment-bench                                  # warp vs FlipCrop per batch
    python bench/ablate_mlp.py --fused-bench                                    # backend.fused vs code in use
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/ablate_mlp.py --loop-bench   # whole steps, 3 variants

Every run prints one JSON line: config, split, epochs, validation accuracy (plain, with EMA weights, with test-time
flips), training time, samples/s, load average before and after, date.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-train-jpeg.tar.gz"

DEFAULTS = dict(
    hidden=[1024, 1024],       # hidden widths; an entry "res:W" adds a residual block of width W (2 layers)
    bottleneck=0,              # > 0: a linear layer 3072 -> bottleneck (no norm, no activation) first (Z-Lin style)
    norm="batch", activation="relu", dropout=0.0, input_dropout=0.0,
    lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3, batch_size=256, warmup_epochs=0.0,
    label_smoothing=0.0, mixup=0.0,  # mixup: Beta(a, a) mixing of whitened inputs and of the loss (0: off)
    zca_eps=1.0,
    augment="flipcrop",        # "flipcrop" (the estimator's), "affine", "none"
    crop=4,                    # flipcrop padding, or affine translate (pixels)
    degrees=0.0, scale=0.0, shear=0.0, nearest=False,  # affine ranges; nearest-pixel sampling instead of bilinear
    ema=[],                    # EMA decays of parameters and buffers, each scored (acc_ema_<decay>); [] off
    ema_every=1,
    bf16=False,                # GEMMs on oneDNN with bfloat16 products (fp32 master weights)
    seed=0,
    eval_every=0,              # > 0: also score val every k epochs (the "curve" of the result; not used to select)
)


def splits(y: np.ndarray) -> dict[str, np.ndarray]:
    """The three index sets of the module docstring (sorted int arrays into the archive's order)."""
    from chainrule.data import train_val_indices

    rest, val = train_val_indices(y, 5000, seed=0)
    keep, hold = train_val_indices(y[rest], 5000, seed=14)
    return {"train": rest[keep], "val": val, "holdout": rest[hold]}


# ---- model --------------------------------------------------------------------------------------------------------


def build_model(cfg: dict, d_in: int, n_classes: int, seed: int):
    from chainrule import nn
    from chainrule.nn import init
    from chainrule.nn.activations import ReLU
    from chainrule.nn.dropout import Dropout
    from chainrule.nn.linear import Linear
    from chainrule.nn.module import Module, Sequential
    from chainrule.nn.normalization import BatchNorm1d, LayerNorm

    rng = np.random.default_rng(seed)

    def linear(i, o, gain="relu"):
        layer = Linear(i, o, seed=rng)
        layer.weight.data[...] = init.kaiming_normal(layer.weight.shape, gain, rng=rng, dtype=np.float32)
        layer.bias.data[...] = 0
        return layer

    def norm(width):
        return {"batch": BatchNorm1d, "layer": LayerNorm}[cfg["norm"]](width) if cfg["norm"] else None

    class Residual(Module):
        def __init__(self, width):
            super().__init__()
            self.body = Sequential(*[m for m in (linear(width, width), norm(width), ReLU(),
                                                  linear(width, width), norm(width)) if m is not None])
            self.body[-1].weight.data[...] = 0 if cfg["norm"] == "batch" else self.body[-1].weight.data
            self.act = ReLU()

        def forward(self, x):
            return self.act(x + self.body(x))

    layers = []
    if cfg["input_dropout"]:
        layers.append(Dropout(cfg["input_dropout"], seed=rng.spawn(1)[0]))
    width = d_in
    if cfg["bottleneck"]:
        layers.append(linear(width, cfg["bottleneck"], "linear"))
        width = cfg["bottleneck"]
    for h in cfg["hidden"]:
        if isinstance(h, str) and h.startswith("res:"):
            w = int(h[4:])
            if w != width:
                layers += [m for m in (linear(width, w), norm(w), ReLU()) if m is not None]
                width = w
            layers.append(Residual(w))
            continue
        layers += [m for m in (linear(width, h), norm(h), nn.ReLU() if cfg["activation"] == "relu"
                               else nn.mlp.ACTIVATIONS[cfg["activation"]]()) if m is not None]
        if cfg["dropout"]:
            layers.append(Dropout(cfg["dropout"], seed=rng.spawn(1)[0]))
        width = h
    layers.append(linear(width, n_classes, "linear"))
    return Sequential(*layers)


# ---- one run ------------------------------------------------------------------------------------------------------


def run(cfg: dict, epochs: int, final: bool, verbose: bool) -> dict:
    from chainrule import backend
    from chainrule.data import load_image_folder
    from chainrule.data.augment import FlipCrop
    from chainrule.data.loader import DataLoader
    from chainrule.data.warp import RandomAffine
    from chainrule.data.whitening import ZCAWhiten
    from chainrule.nn import functional as F
    from chainrule.optim import SGD
    from chainrule.tensor import Tensor
    from chainrule.train.averaging import EMA
    from chainrule.train.evaluation import predict_scores

    if cfg["bf16"]:
        backend.select("onednn")
        backend.set_float32_matmul_precision("medium")
    ds = load_image_folder(ARCHIVE)
    X, y = ds.X_train, np.asarray(ds.y_train)
    idx = splits(y)
    train_idx = np.sort(np.concatenate([idx["train"], idx["val"]])) if final else idx["train"]
    test_idx = idx["holdout"] if final else idx["val"]
    load0 = os.getloadavg()[0]
    t_fit = time.perf_counter()
    zca = ZCAWhiten(eps=cfg["zca_eps"]).fit(X[train_idx])
    Xtr = zca.transform(X[train_idx])  # (N, 32, 32, 3) float32
    Xte = zca.transform(X[test_idx])
    prep_s = time.perf_counter() - t_fit
    ytr, yte = y[train_idx].astype(np.int64), y[test_idx].astype(np.int64)

    model = build_model(cfg, 3072, 10, cfg["seed"])
    params = model.parameters()
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg["weight_decay"]},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    opt = SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["nesterov"])
    if cfg["augment"] == "flipcrop":
        aug = FlipCrop(cfg["crop"])
    elif cfg["augment"] == "affine":
        aug = RandomAffine(cfg["degrees"], cfg["scale"], cfg["shear"], cfg["crop"], flip=True, nearest=cfg["nearest"])
    else:
        aug = None
    flatten = lambda b: np.ascontiguousarray(b.reshape(len(b), -1), dtype=np.float32)  # noqa: E731
    loader = DataLoader(Xtr, ytr, cfg["batch_size"], shuffle=True, drop_last=True, seed=cfg["seed"] + 1,
                        augment=aug, transform=flatten)
    emas = [EMA(model, d, cfg["ema_every"]) for d in cfg["ema"]]

    def accuracy(flip_avg: bool) -> float:
        s = predict_scores(model, Xte.reshape(len(Xte), -1))
        if flip_avg:
            s = s + predict_scores(model, np.ascontiguousarray(Xte[:, :, ::-1]).reshape(len(Xte), -1))
        return float(np.mean(s.argmax(1) == yte))

    mix_rng = np.random.default_rng(cfg["seed"] + 2)
    total = epochs * len(loader)
    warm = int(round(cfg["warmup_epochs"] * len(loader)))
    step = 0
    t0 = time.perf_counter()
    history = []
    for epoch in range(epochs):
        model.train()
        te = time.perf_counter()
        losses = []
        for xb, yb in loader:
            lr = cfg["lr"] * (step + 1) / warm if step < warm else \
                cfg["lr"] * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
            for g in opt.param_groups:
                g["lr"] = lr
            if cfg["mixup"]:
                lam = float(mix_rng.beta(cfg["mixup"], cfg["mixup"]))
                perm = mix_rng.permutation(len(xb))
                xb = lam * xb + (1 - lam) * xb[perm]
                scores = model(Tensor(xb))
                loss = F.cross_entropy(scores, yb, label_smoothing=cfg["label_smoothing"]) * lam + \
                    F.cross_entropy(scores, yb[perm], label_smoothing=cfg["label_smoothing"]) * (1 - lam)
            else:
                scores = model(Tensor(xb))
                loss = F.cross_entropy(scores, yb, label_smoothing=cfg["label_smoothing"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            for ema in emas:
                ema.update()
            losses.append(float(loss.data))
            step += 1
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "s": time.perf_counter() - te})
        if cfg["eval_every"] and (epoch + 1) % cfg["eval_every"] == 0 and epoch + 1 < epochs:
            te = time.perf_counter()
            history[-1]["acc_tta"] = accuracy(True)
            for ema in emas:
                with ema.swapped():
                    history[-1][f"acc_ema_{ema.decay:g}_tta"] = accuracy(True)
            t0 += time.perf_counter() - te  # scoring is not training time
        if verbose:
            extra = "".join(f" {k} {v:.4f}" for k, v in history[-1].items() if k.startswith("acc"))
            print(f"# epoch {epoch + 1} loss {history[-1]['loss']:.4f} {history[-1]['s']:.1f}s "
                  f"load {os.getloadavg()[0]:.2f}{extra}", file=sys.stderr, flush=True)
    train_s = time.perf_counter() - t0

    result = {"acc": accuracy(False), "acc_tta": accuracy(True)}
    for ema in emas:
        with ema.swapped():
            result.update({f"acc_ema_{ema.decay:g}": accuracy(False), f"acc_ema_{ema.decay:g}_tta": accuracy(True)})
    samples = step * cfg["batch_size"]
    curve = [h for h in history if any(k.startswith("acc") for k in h)]
    return dict(result, split="holdout" if final else "val", n_train=len(train_idx), epochs=epochs, curve=curve,
                train_s=train_s, prep_s=prep_s, samples_per_s=samples / train_s, final_loss=history[-1]["loss"],
                load=[load0, os.getloadavg()[0]], date=time.strftime("%Y-%m-%d %H:%M"),
                gemm=backend.info()["gemm"], precision=backend.info()["float32_matmul_precision"],
                threads=os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"))


def augment_bench(repeats: int = 50) -> None:
    from chainrule.data.augment import FlipCrop
    from chainrule.data.warp import RandomAffine

    x = np.random.default_rng(0).standard_normal((256, 32, 32, 3)).astype(np.float32)
    for name, aug in (("FlipCrop(4)", FlipCrop(4)), ("RandomAffine(10, 0.1, 0.1, 4)", RandomAffine(10, 0.1, 0.1, 4))):
        rng = np.random.default_rng(1)
        aug(x, rng)
        t = time.perf_counter()
        for _ in range(repeats):
            aug(x, rng)
        print(f"{name:<32} {(time.perf_counter() - t) / repeats * 1e3:6.2f} ms per batch of 256 float32 images; "
              f"load {os.getloadavg()[0]:.2f}")


def fused_bench(repeats: int = 30) -> None:
    """chainrule.backend.fused against the NumPy code it replaces (the fallback): the SGD update of the
    3072-1024-1024-10 net with batch norm (Nesterov, weight decay on matrices), and a batch's gather + FlipCrop +
    flatten (256 of 20,000 float32 images, ``FlipCrop.take``)."""
    from chainrule import nn
    from chainrule.backend import fused
    from chainrule.data.augment import FlipCrop
    from chainrule.optim import SGD

    def timed(fn, kernel: bool) -> float:
        fused.AVAILABLE = kernel
        fn()
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - t) / repeats * 1e3

    available = fused.AVAILABLE
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 32, 32, 3)).astype(np.float32)
    idx = rng.permutation(len(X))[:256]
    take = lambda: FlipCrop(4).take(X, idx, rng).reshape(256, -1)  # noqa: E731
    now, new = timed(take, False), timed(take, available)
    print(f"batch: gather + FlipCrop + flatten {now:6.2f} ms, fused {new:6.2f} ms ({now / new:.1f}x); "
          f"load {os.getloadavg()[0]:.2f}")
    model = nn.MLP([3072, 1024, 1024, 10], norm="batch", seed=0)
    ps = model.parameters()
    for p in ps:
        p.grad = rng.standard_normal(p.shape).astype(np.float32)
    opt = SGD([{"params": [p for p in ps if p.ndim >= 2], "weight_decay": 1e-3},
               {"params": [p for p in ps if p.ndim < 2], "weight_decay": 0.0}], lr=1e-4, momentum=0.9, nesterov=True)
    opt.step()  # the momentum buffers
    now, new = timed(opt.step, False), timed(opt.step, available)
    fused.AVAILABLE = available
    print(f"SGD Nesterov + weight decay, {sum(p.size for p in ps):,} parameters: NumPy {now:6.2f} ms, fused "
          f"{new:6.2f} ms ({now / new:.1f}x); load {os.getloadavg()[0]:.2f}")


def loop_bench(turns: int = 8, steps: int = 10) -> None:
    """Whole training steps of the baseline loop (batch gather + FlipCrop + flatten, forward, backward, Nesterov
    SGD with weight decay) in variants, in one process, taking turns: float32 on the numpy GEMM; bf16 products on
    oneDNN; bf16 plus the single-pass kernels of ``chainrule.backend.fused`` for the batch and the update; and that
    plus the per-step gradient norm the Trainer computes (``total_grad_norm``, the finite check)."""
    from chainrule import backend, nn
    from chainrule.backend import fused
    from chainrule.data.augment import FlipCrop
    from chainrule.nn import functional as F
    from chainrule.optim import SGD
    from chainrule.optim.clip import total_grad_norm
    from chainrule.tensor import Tensor

    available = fused.AVAILABLE
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, len(X))
    model = nn.MLP([3072, 1024, 1024, 10], norm="batch", seed=0)
    ps = model.parameters()
    opt = SGD([{"params": [p for p in ps if p.ndim >= 2], "weight_decay": 1e-3},
               {"params": [p for p in ps if p.ndim < 2], "weight_decay": 0.0}], lr=1e-4, momentum=0.9, nesterov=True)
    flipcrop = FlipCrop(4)

    def step(norm: bool) -> None:
        idx = rng.integers(0, len(X), 256)
        xb = flipcrop.take(X, idx, rng).reshape(256, -1)
        loss = F.cross_entropy(model(Tensor(xb)), y[idx])
        opt.zero_grad()
        loss.backward()
        if norm:
            total_grad_norm(ps)
        opt.step()

    variants = {"float32 (numpy GEMM)": ("numpy", "highest", False, False),
                "bf16 (onednn)": ("onednn", "medium", False, False),
                "bf16 + fused batch and SGD": ("onednn", "medium", True, False),
                "bf16 + fused + grad norm": ("onednn", "medium", True, True)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    load0 = os.getloadavg()[0]
    for t in range(turns):
        for name in (list(variants) if t % 2 == 0 else list(variants)[::-1]):
            gemm, precision, fast, norm = variants[name]
            fused.AVAILABLE = fast and available
            backend.set_float32_matmul_precision("highest")
            backend.select(gemm)
            backend.set_float32_matmul_precision(precision)
            step(norm)  # warm (first turn: plans, kernels)
            t0 = time.perf_counter()
            for _ in range(steps):
                step(norm)
            times[name].append((time.perf_counter() - t0) / steps * 1e3)
    backend.set_float32_matmul_precision("highest")
    fused.AVAILABLE = available
    base = float(np.median(times["float32 (numpy GEMM)"]))
    print(f"# training loop steps, MLP 3072-1024-1024-10 + batch norm, N=256, threads "
          f"{os.environ.get('OMP_NUM_THREADS', 'default')}; median of {turns} turns x {steps} steps; load "
          f"{load0:.2f} -> {os.getloadavg()[0]:.2f}; fused kernels {'on' if available else 'unavailable'}")
    for name, ts in times.items():
        ms = float(np.median(ts))
        print(f"{name:<30} {ms:7.1f} ms/step  {256e3 / ms:7,.0f} samples/s  {base / ms:5.2f}x float32")


def table(path: str) -> None:
    """Markdown rows of the ablation table from a JSON-lines file of runs (``--out``)."""
    print("| tag | change from the baseline | split | epochs | acc | + flip TTA | best EMA (+TTA) | samples/s | "
          "GEMM | load before -> after | date |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        if r.get("failed"):
            print(f"| {r['tag']} | failed | | | | | | | | | |")
            continue
        emas = {k: v for k, v in r.items() if k.startswith("acc_ema_") and not k.endswith("_tta")}
        ema = "-"
        if emas:
            k = max(emas, key=emas.get)
            ema = f"{100 * emas[k]:.2f} ({100 * r[k + '_tta']:.2f}) @{k[8:]}"
        change = json.dumps({k: v for k, v in r["config"].items() if k not in ("bf16", "ema")}) or "{}"
        gemm = r["gemm"] + (" bf16" if r["precision"] == "medium" else "")
        print(f"| {r['tag']} | `{change}` | {r['split']} ({r['n_train']:,} train) | {r['epochs']} | "
              f"{100 * r['acc']:.2f} | {100 * r['acc_tta']:.2f} | {ema} | {r['samples_per_s']:,.0f} | {gemm}, "
              f"{r['threads']} thr | {r['load'][0]:.1f} -> {r['load'][1]:.1f} | {r['date']} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--config", default="{}", help="JSON overrides of DEFAULTS")
    p.add_argument("--tag", default="", help="a name for the row")
    p.add_argument("--final", action="store_true", help="train on train+val, score the untouched hold-out")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--augment-bench", action="store_true")
    p.add_argument("--fused-bench", action="store_true")
    p.add_argument("--loop-bench", action="store_true", help="whole steps: fp32 vs bf16 vs bf16 + fused kernels")
    p.add_argument("--out", help="append the JSON line to this file too")
    p.add_argument("--table", metavar="JSONL", help="print the markdown ablation rows of a file of runs, and exit")
    args = p.parse_args()
    if args.augment_bench:
        augment_bench()
        return
    if args.fused_bench:
        fused_bench()
        return
    if args.table:
        table(args.table)
        return
    if args.loop_bench:
        loop_bench()
        return
    overrides = json.loads(args.config)
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        sys.exit(f"unknown config keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg = dict(DEFAULTS, **overrides)
    report(dict(tag=args.tag, config=overrides, **run(cfg, args.epochs, args.final, args.verbose)), args.out)


def report(result: dict, out: str | None) -> None:
    """Print a run's result as one JSON line, and append it to ``out`` (a .jsonl file) if given."""
    line = json.dumps(result)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
