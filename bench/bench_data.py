"""Benchmark the data side: loading the shared CIFAR-10 JPEG archive, features, minibatches.

    python bench/bench_data.py                   # uses ../shared/data/cifar10-train-jpeg.tar.gz
    python bench/bench_data.py --archive PATH --json bench/results/data.json

Measures, in one run:
  1. load_image_folder on the 50,000-image archive with an empty cache (parallel decode), the
     same with num_workers=1 (the serial peer), and the cached load, both in this process and
     in a fresh process (which also pays for page-faulting 150 MB of new memory);
  2. hog + color_histogram_hsv on all 50,000 images, against CS231n's per-image features.py
     functions (scipy uniform_filter + matplotlib rgb_to_hsv) timed on a subset and
     extrapolated;
  3. one shuffled epoch of DataLoader (batch 128, uint8 -> float32) against
     torch.utils.data.DataLoader over a TensorDataset (if torch is installed).
Timings are wall-clock and noisy on a shared machine: compare the ratios from one run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chainrule.data import DataLoader, load_image_folder  # noqa: E402
from chainrule.features import color_histogram_hsv, extract_features, hog  # noqa: E402

DEFAULT_ARCHIVE = REPO.parent / "shared" / "data" / "cifar10-train-jpeg.tar.gz"


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def cs231n_hog_feature(im):
    from scipy.ndimage import uniform_filter

    image = np.dot(im[..., :3], [0.299, 0.587, 0.144])
    sx, sy = image.shape
    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    gx[:, :-1] = np.diff(image, n=1, axis=1)
    gy[:-1, :] = np.diff(image, n=1, axis=0)
    grad_mag = np.sqrt(gx ** 2 + gy ** 2)
    grad_ori = np.arctan2(gy, (gx + 1e-15)) * (180 / np.pi) + 90
    hist = np.zeros((sx // 8, sy // 8, 9))
    for i in range(9):
        temp_ori = np.where(grad_ori < 20 * (i + 1), grad_ori, 0)
        temp_ori = np.where(grad_ori >= 20 * i, temp_ori, 0)
        temp_mag = np.where(temp_ori > 0, grad_mag, 0)
        hist[:, :, i] = uniform_filter(temp_mag, size=(8, 8))[4::8, 4::8].T
    return hist.ravel()


def cs231n_color_histogram_hsv(im, nbin=10, xmin=0, xmax=255):
    import matplotlib.colors

    bins = np.linspace(xmin, xmax, nbin + 1)
    hsv = matplotlib.colors.rgb_to_hsv(im / xmax) * xmax
    imhist, edges = np.histogram(hsv[:, :, 0], bins=bins, density=True)
    return imhist * np.diff(edges)


def bench_loading(archive: Path, results: dict) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="chainrule-bench-") as tmp:
        os.environ["CHAINRULE_DATA"] = tmp
        ds, first = timed(load_image_folder, archive)
        _, cached = timed(load_image_folder, archive)
        code = ("import time, sys; sys.path.insert(0, %r); t = time.perf_counter(); "
                "from chainrule.data import load_image_folder; ds = load_image_folder(%r); "
                "print(time.perf_counter() - t)") % (str(REPO), str(archive))
        fresh = float(subprocess.run([sys.executable, "-c", code], check=True, text=True,
                                     capture_output=True, env=os.environ).stdout)
        _, serial = timed(load_image_folder, archive, num_workers=1, cache=False)
    results["load"] = {
        "images": len(ds.X_train), "first_load_parallel_s": first, "first_load_serial_s": serial,
        "cached_load_s": cached, "cached_load_fresh_process_s": fresh,
        "parallel_speedup_vs_serial": serial / first, "cached_speedup_vs_first": first / cached,
    }
    print(f"load {len(ds.X_train)} images: first {first:.2f} s (num_workers=1: {serial:.2f} s, "
          f"x{serial / first:.2f}); cached {cached:.3f} s in-process, {fresh:.3f} s in a fresh "
          f"process (import included)")
    return ds.X_train


def bench_features(X: np.ndarray, results: dict, subset: int) -> None:
    _, t_hog = timed(hog, X)
    _, t_col = timed(color_histogram_hsv, X)
    _, t_both = timed(extract_features, X)
    sub = X[:subset]
    _, t_ref_hog = timed(lambda: [cs231n_hog_feature(x) for x in sub])
    _, t_ref_col = timed(lambda: [cs231n_color_histogram_hsv(x) for x in sub])
    scale = len(X) / len(sub)
    peer = (t_ref_hog + t_ref_col) * scale
    results["features"] = {
        "images": len(X), "hog_s": t_hog, "color_hist_s": t_col, "extract_both_s": t_both,
        "cs231n_per_image_subset": len(sub), "cs231n_hog_extrapolated_s": t_ref_hog * scale,
        "cs231n_color_extrapolated_s": t_ref_col * scale, "speedup_vs_cs231n": peer / t_both,
    }
    print(f"features on {len(X)} images: hog {t_hog:.2f} s, colour {t_col:.2f} s, both via "
          f"extract_features {t_both:.2f} s; CS231n per-image (extrapolated from {len(sub)}) "
          f"hog {t_ref_hog * scale:.1f} s + colour {t_ref_col * scale:.1f} s "
          f"-> x{peer / t_both:.1f}")


def bench_loader(X: np.ndarray, results: dict, batch_size: int = 128) -> None:
    y = np.arange(len(X), dtype=np.int64) % 10
    loader = DataLoader(X, y, batch_size, seed=0)
    _, ours = timed(lambda: sum(len(b) for _, b in loader))
    entry = {"images": len(X), "batch_size": batch_size, "chainrule_epoch_s": ours}
    line = f"one shuffled epoch, batch {batch_size}: chainrule DataLoader {ours:.2f} s"
    try:
        import torch
        from torch.utils.data import DataLoader as TorchLoader, TensorDataset
    except ImportError:
        torch = None
    if torch is not None:
        torch.manual_seed(0)
        ds = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
        tl = TorchLoader(ds, batch_size=batch_size, shuffle=True)
        _, theirs = timed(lambda: sum(len(b) for xb, b in tl if xb.float() is not None))
        entry.update(torch_epoch_s=theirs, speedup_vs_torch=theirs / ours)
        line += f"; torch DataLoader(TensorDataset) {theirs:.2f} s -> x{theirs / ours:.1f}"
    results["loader"] = entry
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--subset", type=int, default=1000,
                        help="images timed with CS231n's per-image features (extrapolated)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "numpy": np.__version__, "platform": platform.platform(),
                                 "note": "wall-clock on a possibly shared machine"}}
    print(f"machine: {os.cpu_count()} cpus, {platform.platform()}, numpy {np.__version__}")
    if args.archive.is_file():
        X = bench_loading(args.archive, results)
    else:
        print(f"{args.archive} not found: skipping the loading benchmark, using random images")
        X = np.random.default_rng(0).integers(0, 256, size=(50_000, 32, 32, 3), dtype=np.uint8)
    bench_features(X, results, args.subset)
    bench_loader(X, results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
