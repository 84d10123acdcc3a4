"""MLPClassifier on CIFAR-10: validation accuracy, train and predict time, peak memory (issue 5's MLP targets).

Data: the 50,000 JPEG training images of ``../shared/data/cifar10-train-jpeg.tar.gz``, split 45,000 train /
5,000 validation (stratified, seed 0; ``chainrule.data.train_val_split``). Runs:

- ``two_layer``: CS231n's two-layer net 3072-100-10 (target >= 52.5% in <= 30 s of training; PyTorch CPU reference
  52.0-52.7% in ~33 s).
- ``features``: HOG + hue-histogram features (``features="hog_color"``) into an MLP (target >= 59%; PyTorch
  reference 59.0%, ~25 s of training, feature extraction ~41 s for 60,000 images).
- ``best``: the best raw-pixel MLP in a 10-minute budget on 2 cores (target >= 64.2%; PyTorch CPU reference
  3072-1024-1024-10 with batch norm, SGD Nesterov, cosine over the time budget, flips + padded crops: 44.6 epochs
  in 600 s). Run it on its own: ``--run best`` (``--budget`` shortens it for a smoke test).
- ``best_zca``: the same net and recipe on ZCA-whitened pixels (``preprocessing="zca"``), its training budget cut to
  575 s so that the whole ``fit`` (whitening included) stays within 10 minutes.

``--torch`` adds the same-run PyTorch CPU comparison for ``two_layer`` and ``features``: the identical recipe
(same preprocessed inputs, initialisation scheme, optimizer, weight decay on weight matrices only, cosine schedule,
batch size, epochs, flips) written in PyTorch, with the same thread count. Each measurement runs in a fresh
subprocess (one BLAS thread pool per process, a clean memory high-water mark); pairs run back to back so load from
other users of the machine falls on both alike. The machine is shared: the load average is printed before and after
each run, and train times under load are not the unloaded speed.

    python bench/bench_mlp.py                       # two_layer and features
    python bench/bench_mlp.py --run two_layer --torch
    python bench/bench_mlp.py --run best            # 10 minutes
    python bench/bench_mlp.py --run best_zca        # 10 minutes
    python bench/bench_mlp.py --augment-bench       # FlipCrop vs the straightforward NumPy version, per batch
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-train-jpeg.tar.gz"

CONFIGS = {
    "two_layer": dict(hidden_sizes=(100,), optimizer="adam", lr=1e-3, weight_decay=1e-4, batch_size=200,
                      epochs=15, schedule="cosine", augment="flip", random_state=0),
    "features": dict(features="hog_color", hidden_sizes=(1024,), dropout=0.3, optimizer="adam", lr=1e-3,
                     weight_decay=1e-4, batch_size=200, epochs=20, schedule="cosine", random_state=0),
    "best": dict(hidden_sizes=(1024, 1024), norm="batch", optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
                 weight_decay=1e-3, batch_size=256, epochs=1000, time_budget=600.0, schedule="cosine",
                 augment=True, random_state=0),
    # The same net on ZCA-whitened pixels (preprocessing="zca": whitened once, then flipped and cropped). The
    # whitening is fitted inside fit() (10-14 s on the bench machines), so the training budget is cut to 575 s to
    # keep the whole fit() within the 10 minutes.
    "best_zca": dict(hidden_sizes=(1024, 1024), norm="batch", optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
                     weight_decay=1e-3, batch_size=256, epochs=1000, time_budget=575.0, schedule="cosine",
                     augment=True, preprocessing="zca", random_state=0),
}


# ---- measurement helpers ------------------------------------------------------------------------------------------


def _rss_kib() -> tuple[int, int]:
    """(current RSS, peak RSS since the last reset) in KiB (Linux /proc; getrusage's lifetime peak elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            fields = {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmRSS", "VmHWM"))}
        return fields["VmRSS"], fields["VmHWM"]
    except (OSError, KeyError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def machine(threads: int | None = None) -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numpy as np

    from chainrule import backend

    return (f"{model}, {os.cpu_count()} cores, {platform.system()}; Python {platform.python_version()}, NumPy "
            f"{np.__version__}, chainrule GEMM {backend.info()['gemm']}; BLAS/torch threads: "
            f"{threads or os.environ.get('OPENBLAS_NUM_THREADS', 'library default')}")


def load_split(subset: int | None):
    """(X_train, y_train, X_val, y_val): uint8 images (N, 32, 32, 3), int labels; 45,000 / 5,000 stratified."""
    from chainrule.data import load_image_folder, train_val_split

    ds = load_image_folder(ARCHIVE)
    split = train_val_split(ds.X_train, ds.y_train, 5000, seed=0)
    X_train, y_train = split.X_train, split.y_train
    if subset:  # a random subset (the split keeps the archive's order, which is by class)
        import numpy as np

        keep = np.sort(np.random.default_rng(0).permutation(len(X_train))[:subset])
        X_train, y_train = X_train[keep], y_train[keep]
    return X_train, y_train, split.X_val, split.y_val


# ---- workers (one per process) ------------------------------------------------------------------------------------


def chainrule_worker(run: str, subset: int | None, budget: float | None, verbose: bool, seed: int | None) -> dict:
    from chainrule.classifiers.mlp import MLPClassifier

    X_train, y_train, X_val, y_val = load_split(subset)
    config = dict(CONFIGS[run], verbose=verbose)
    if budget is not None:
        config["time_budget"] = budget
    if seed is not None:
        config["random_state"] = seed
    rss0, _ = _rss_kib()
    _reset_peak()
    load0 = os.getloadavg()[0]
    cpu0 = time.process_time()
    model = MLPClassifier(**config).fit(X_train, y_train)
    cpu_s = time.process_time() - cpu0
    t0 = time.perf_counter()
    acc = model.score(X_val, y_val)
    predict_s = time.perf_counter() - t0
    _, peak = _rss_kib()
    return {"impl": "chainrule", "run": run, "val_acc": acc, "train_s": model.train_time_, "fit_s": model.fit_time_,
            "fit_cpu_s": cpu_s,
            "prep_s": model.fit_time_ - model.train_time_, "predict_s": predict_s, "epochs": model.n_iter_,
            "epochs_exact": model.n_steps_ * config["batch_size"] / len(X_train), "steps": model.n_steps_,
            "peak_mib": (peak - rss0) / 1024, "load": [load0, os.getloadavg()[0]], "config": _jsonable(config)}


def torch_worker(run: str, subset: int | None, threads: int) -> dict:
    """The chainrule recipe of ``run`` in PyTorch: the same inputs (the features and preprocessing are computed with
    chainrule and are not timed as training), Kaiming-normal init, Adam with L2 decay on the weight matrices, a
    per-step cosine schedule, shuffled batches, flips for ``augment="flip"``."""
    import numpy as np
    import torch

    from chainrule.features import HogColorFeatures
    from chainrule.data import Standardize

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = CONFIGS[run]
    X_train, y_train, X_val, y_val = load_split(subset)
    if cfg.get("features"):
        feats = HogColorFeatures()
        X_train, X_val = feats.transform(X_train), feats.transform(X_val)
    flat_train = X_train.reshape(len(X_train), -1)
    scaler = Standardize().fit(flat_train)
    rss0, _ = _rss_kib()
    _reset_peak()
    load0 = os.getloadavg()[0]
    t_start = time.perf_counter()
    flip = cfg.get("augment") == "flip"
    if flip:  # flip the uint8 images of each batch, then standardise (chainrule's order)
        images = torch.from_numpy(np.ascontiguousarray(X_train))
        mean = torch.from_numpy(scaler.mean_.astype(np.float32))
        std = torch.from_numpy(scaler.std_.astype(np.float32))
    else:
        Xt = torch.from_numpy(scaler.transform(flat_train).astype(np.float32))
    yt = torch.from_numpy(y_train.astype(np.int64))
    sizes = [flat_train.shape[1], *cfg["hidden_sizes"], 10]
    layers: list = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = torch.nn.Linear(d_in, d_out)
        last = i == len(sizes) - 2
        torch.nn.init.kaiming_normal_(lin.weight, nonlinearity="linear" if last else "relu")
        torch.nn.init.zeros_(lin.bias)
        layers.append(lin)
        if not last:
            layers.append(torch.nn.ReLU())
            if cfg.get("dropout"):
                layers.append(torch.nn.Dropout(cfg["dropout"]))
    model = torch.nn.Sequential(*layers)
    weights = [p for p in model.parameters() if p.ndim == 2]
    others = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.Adam([{"params": weights, "weight_decay": cfg["weight_decay"]},
                            {"params": others, "weight_decay": 0.0}], lr=cfg["lr"])
    n, batch = len(yt), cfg["batch_size"]
    steps_per_epoch = -(-n // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"] * steps_per_epoch)
    gen = torch.Generator().manual_seed(0)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(cfg["epochs"]):
        model.train()
        order = torch.randperm(n, generator=gen)
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            if flip:
                xb = images[idx]
                mask = torch.rand(len(idx), generator=gen) < 0.5
                xb[mask] = xb[mask].flip(2)
                xb = (xb.reshape(len(idx), -1).float() - mean) / std
            else:
                xb = Xt[idx]
            loss = torch.nn.functional.cross_entropy(model(xb), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    train_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    t1 = time.perf_counter()
    model.eval()
    with torch.no_grad():
        Xv = torch.from_numpy(scaler.transform(X_val.reshape(len(X_val), -1)).astype(np.float32))
        acc = float((model(Xv).argmax(1).numpy() == y_val).mean())
    predict_s = time.perf_counter() - t1
    _, peak = _rss_kib()
    return {"impl": "torch", "run": run, "val_acc": acc, "train_s": train_s, "fit_s": time.perf_counter() - t_start,
            "predict_s": predict_s, "epochs": cfg["epochs"], "train_cpu_s": cpu_s, "peak_mib": (peak - rss0) / 1024,
            "load": [load0, os.getloadavg()[0]], "torch": torch.__version__, "threads": threads}


def feature_time_worker() -> dict:
    """Seconds to extract HOG + hue-histogram features of all 50,000 images (the reference: ~41 s for 60,000)."""
    from chainrule.features import HogColorFeatures
    from chainrule.data import load_image_folder

    X = load_image_folder(ARCHIVE).X_train
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    HogColorFeatures().transform(X)
    return {"images": len(X), "seconds": time.perf_counter() - t0, "load": [load0, os.getloadavg()[0]]}


def augment_bench(batch: int = 256, repeats: int = 100) -> None:
    """FlipCrop (MLPClassifier's augmentation; chainrule.data.Augment's flip + crop share its code) against the
    straightforward NumPy version Augment used before (a boolean-mask flip, then np.pad and a fancy-index crop):
    the same output from the same generator state, per batch."""
    import numpy as np

    from chainrule.data.augment import FlipCrop

    def straightforward(images, gen, padding):
        flip = gen.random(len(images)) < 0.5
        out = images.copy()
        out[flip] = images[flip, :, ::-1]
        if not padding:
            return out
        n, h, w = out.shape[:3]
        padded = np.pad(out, [(0, 0), (padding, padding), (padding, padding), (0, 0)])
        dy = gen.integers(0, 2 * padding + 1, size=n)
        dx = gen.integers(0, 2 * padding + 1, size=n)
        rows = (dy[:, None] + np.arange(h))[:, :, None]
        cols = (dx[:, None] + np.arange(w))[:, None, :]
        return padded[np.arange(n)[:, None, None], rows, cols]

    rng = np.random.default_rng(0)
    for dtype in (np.uint8, np.float32):
        images = (rng.random((batch, 32, 32, 3)) * 255).astype(dtype)
        for padding in (0, 4):
            fns = (lambda x, g: straightforward(x, g, padding), FlipCrop(padding))
            outputs = [fn(images, np.random.default_rng(1)) for fn in fns]
            np.testing.assert_array_equal(outputs[0], outputs[1])
            times = []
            for fn in fns:
                gen = np.random.default_rng(1)
                t0 = time.perf_counter()
                for _ in range(repeats):
                    fn(images, gen)
                times.append((time.perf_counter() - t0) / repeats * 1e3)
            what = "flip" if padding == 0 else f"flip + {padding}-px crop"
            print(f"{what:<16} {batch} x 32x32x3 {np.dtype(dtype).name:<8} straightforward {times[0]:6.2f} ms, "
                  f"FlipCrop {times[1]:6.2f} ms ({times[0] / times[1]:.1f}x); load {os.getloadavg()[0]:.2f}")


def _jsonable(config: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


# ---- driver -------------------------------------------------------------------------------------------------------


def _spawn(args: list[str], env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"worker {args} failed:\n{out.stderr}")
    if out.stderr.strip():
        print(out.stderr.strip(), file=sys.stderr)
    *lines, last = out.stdout.strip().splitlines()
    for line in lines:  # the worker's epoch lines (--verbose)
        print("    " + line)
    return json.loads(last)


def _line(r: dict) -> str:
    prep = f", prep {r['prep_s']:.1f} s" if "prep_s" in r else ""
    cpu_what, cpu = ("fit", r["fit_cpu_s"]) if "fit_cpu_s" in r else ("train", r["train_cpu_s"])
    epochs = f"{r['epochs_exact']:.1f}" if "epochs_exact" in r else r["epochs"]
    with_features = " (incl. features)" if r["run"] == "features" and r["impl"] == "chainrule" else ""
    return (f"  {r['impl']:<9} val {100 * r['val_acc']:.2f}%  train {r['train_s']:.1f} s ({epochs} epochs; CPU time "
            f"of {cpu_what} {cpu:.1f} s){prep}, predict 5,000 {r['predict_s']:.2f} s{with_features}, "
            f"peak +{r['peak_mib']:.0f} MiB, load {r['load'][0]:.2f}->{r['load'][1]:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="two_layer,features",
                   help="comma-separated runs: two_layer, features, best (default: two_layer,features)")
    p.add_argument("--torch", action="store_true", help="also train the same recipe in PyTorch (two_layer, features)")
    p.add_argument("--threads", type=int, default=None, help="BLAS / torch threads (default: the library default)")
    p.add_argument("--subset", type=int, default=None, help="train on N random training images (smoke tests)")
    p.add_argument("--budget", type=float, default=None, help="override the time budget of 'best' (seconds)")
    p.add_argument("--feature-time", action="store_true", help="also time feature extraction for all 50,000 images")
    p.add_argument("--augment-bench", action="store_true",
                   help="time FlipCrop against the straightforward NumPy version")
    p.add_argument("--seed", type=int, default=None, help="override chainrule's random_state (default 0)")
    p.add_argument("--verbose", action="store_true", help="print chainrule's epoch lines")
    p.add_argument("--json", help="write all results to this file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        impl, _, run = args.worker.partition(":")
        if impl == "chainrule":
            result = chainrule_worker(run, args.subset, args.budget, args.verbose, args.seed)
        elif impl == "torch":
            result = torch_worker(run, args.subset, args.threads or os.cpu_count())
        else:
            result = feature_time_worker()
        print(json.dumps(result))
        return
    if args.augment_bench:
        augment_bench()
        return

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                   OPENBLAS_NUM_THREADS=str(args.threads))
    common = [f"--subset={args.subset}"] if args.subset else []
    common += [f"--budget={args.budget}"] if args.budget else []
    common += ["--verbose"] if args.verbose else []
    common += [f"--seed={args.seed}"] if args.seed is not None else []
    common += [f"--threads={args.threads}"] if args.threads else []
    print(f"# MLPClassifier on CIFAR-10 (45,000 train / 5,000 val, stratified, seed 0), "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n# {machine(args.threads)}\n# load average {os.getloadavg()}")
    results = []
    runs = [r.strip() for r in args.run.split(",") if r.strip()]
    for run in runs:
        if run not in CONFIGS:
            sys.exit(f"unknown run {run!r}; choose from {sorted(CONFIGS)}")
        shown = _jsonable(CONFIGS[run]) | ({"random_state": args.seed} if args.seed is not None else {})
        print(f"{run}: {shown}", flush=True)
        mine = _spawn([f"--worker=chainrule:{run}", *common], env)
        results.append(mine)
        print(_line(mine), flush=True)
        if args.torch and not run.startswith("best"):
            ref = _spawn([f"--worker=torch:{run}", *common], env)
            results.append(ref)
            print(_line(ref), flush=True)
            print(f"  same-run ratios: training speed torch/chainrule {ref['train_s'] / mine['train_s']:.2f}x, "
                  f"accuracy {100 * (mine['val_acc'] - ref['val_acc']):+.2f} points", flush=True)
    if args.feature_time:
        ft = _spawn(["--worker=features-time"], env)
        results.append(ft)
        print(f"feature extraction (HOG + hue histogram), {ft['images']:,} images: {ft['seconds']:.1f} s, "
              f"load {ft['load'][0]:.2f}->{ft['load'][1]:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(args.threads), "results": results}, indent=2))


if __name__ == "__main__":
    main()
