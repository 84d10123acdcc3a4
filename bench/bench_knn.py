"""k-nearest neighbours on CIFAR-10: accuracy and speed of chainrule's KNearestNeighbor against scikit-learn.

    python bench/bench_knn.py                      # everything (about 5 minutes on 2 cores)
    python bench/bench_knn.py --quick              # smaller scikit-learn subsets

Data: the shared JPEG archive (50,000 images), split by ``chainrule.data.train_val_split`` (stratified, seed 0)
into 40,000 training and 10,000 validation images: the issue's time targets are for 10,000 queries against
50,000 training images, so the timed runs do 80% of that work (the report also scales the times by 1.25).

Each measurement runs in its own subprocess, so the peak memory (ru_maxrss) is that phase's alone:

- ``l2`` / ``l1``: fit, then ``predict_many`` for k in {1, 3, 5, 10, 20} on all 10,000 validation images (one
  distance pass), accuracy per k. The L2 phase also checks the float32 GEMM ranking against exact distances
  (float64 GEMM, exact for uint8 pixels) on 500 queries.
- ``cv``: CS231n's 5-fold cross-validation of k on 5,000 training images, then the chosen k on the validation set.
- ``sklearn-l2`` / ``sklearn-l1``: KNeighborsClassifier(algorithm="brute") on a subset of queries (it is slow:
  ~59 s per k for L2 and ~22 min for L1 on all 10,000), timed and extrapolated linearly to 10,000 queries.
- ``numpy-l1``: chainrule's NumPy fallback for L1 (no numba), on a subset, to show what the compiled kernel buys.

Results go to stdout and into the "kNN" section of bench/RESULTS_classifiers.md. The machine's 2 cores are shared
with other work while this runs, so absolute times are noisy: the ratios within one run are the better guide.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-train-jpeg.tar.gz"
KS = [1, 3, 5, 10, 20]


def load_split(data: str, n_val: int = 10_000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from chainrule.data import load_image_folder, train_val_split

    ds = load_image_folder(data)
    X_tr, y_tr, X_val, y_val = train_val_split(ds.X_train, ds.y_train, n_val, seed=0)
    return np.ascontiguousarray(X_tr), y_tr, np.ascontiguousarray(X_val), y_val


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# ---- phases (each runs in a fresh process) -------------------------------------------------------------------------


def phase_chainrule(metric: str, data: str) -> dict:
    from chainrule.classifiers import KNearestNeighbor, _kernels

    X_tr, y_tr, X_val, y_val = load_split(data)
    base_mib = peak_mib()
    knn = KNearestNeighbor(metric=metric)
    t0 = time.perf_counter()
    knn.fit(X_tr, y_tr)
    fit_s = time.perf_counter() - t0
    knn.predict_many(X_val[:8], KS)  # compile (or load the cached) kernels outside the timing
    t0 = time.perf_counter()
    preds = knn.predict_many(X_val, KS)
    predict_s = time.perf_counter() - t0
    out = {"metric": metric, "fit_s": fit_s, "predict_all_k_s": predict_s,
           "acc": {k: float(np.mean(p == y_val)) for k, p in preds.items()},
           "peak_mib": peak_mib(), "data_mib": base_mib, "kernels": _kernels.info()}
    # Accuracy with more training data: the 45,000 / 5,000 split the other benchmarks use.
    X45, y45, X5, y5 = load_split(data, 5_000)
    preds = KNearestNeighbor(metric=metric).fit(X45, y45).predict_many(X5, KS)
    out["acc_45k"] = {k: float(np.mean(p == y5)) for k, p in preds.items()}
    if metric == "l2":  # precision of the float32 ranking against exact distances
        pick = np.random.default_rng(0).permutation(len(X_val))[:500]
        q = X_val[pick].reshape(500, -1).astype(np.float64)
        T = X_tr.reshape(len(X_tr), -1).astype(np.float64)
        exact = (q * q).sum(1)[:, None] + (T * T).sum(1)[None, :] - 2 * q @ T.T  # exact: integers < 2^53
        want = np.lexsort((np.broadcast_to(np.arange(len(T)), exact.shape), exact), axis=-1)[:, :20]
        dist, got = knn.kneighbors(X_val[pick], k=20)
        out["exact_check"] = {
            "queries": 500, "identical_top20_lists": float(np.mean(np.all(got == want, axis=1))),
            "same_nearest": float(np.mean(got[:, 0] == want[:, 0])),
            "max_abs_sq_dist_error": float(np.max(np.abs(dist ** 2 - np.take_along_axis(exact, want, 1)))),
        }
    return out


def phase_cv(data: str) -> dict:
    from chainrule.classifiers import KNearestNeighbor
    from chainrule.data import kfold

    X_tr, y_tr, X_val, y_val = load_split(data)
    pick = np.random.default_rng(0).permutation(len(X_tr))[:5000]  # the split keeps class order: sample it
    X5, y5 = X_tr[pick], y_tr[pick]
    ks = [1, 3, 5, 8, 10, 12, 15, 20, 50, 100]
    t0 = time.perf_counter()
    folds = {k: [] for k in ks}
    for tr, va in kfold(5000, 5, seed=0):
        scores = KNearestNeighbor().fit(X5[tr], y5[tr]).score_many(X5[va], y5[va], ks)
        for k in ks:
            folds[k].append(scores[k])
    mean = {k: float(np.mean(v)) for k, v in folds.items()}
    best = max(ks, key=lambda k: (mean[k], -k))
    val_acc = KNearestNeighbor(k=best).fit(X5, y5).score(X_val, y_val)
    return {"cv_mean": mean, "best_k": best, "val_acc": val_acc, "time_s": time.perf_counter() - t0,
            "peak_mib": peak_mib()}


def phase_sklearn(metric: str, data: str, n_queries: int) -> dict:
    from sklearn.neighbors import KNeighborsClassifier

    X_tr, y_tr, X_val, y_val = load_split(data)
    pick = np.random.default_rng(0).permutation(len(X_val))[:n_queries]  # the split keeps class order: sample it
    X_tr, X_val, y_val = X_tr.reshape(len(X_tr), -1), X_val[pick].reshape(n_queries, -1), y_val[pick]
    sk = KNeighborsClassifier(n_neighbors=1, algorithm="brute", metric="euclidean" if metric == "l2" else "manhattan")
    sk.fit(X_tr.astype(np.float32), y_tr)
    t0 = time.perf_counter()
    pred = sk.predict(X_val.astype(np.float32))
    s = time.perf_counter() - t0
    return {"metric": metric, "queries": n_queries, "predict_one_k_s": s, "per_10k_s": s * 10_000 / n_queries,
            "acc_k1_subset": float(np.mean(pred == y_val)), "peak_mib": peak_mib()}


def phase_numpy_l1(data: str, n_queries: int) -> dict:
    from chainrule.classifiers.distances import NeighborIndex

    X_tr, _, X_val, _ = load_split(data)
    index = NeighborIndex(X_tr.reshape(len(X_tr), -1), "l1", use_numba=False)
    t0 = time.perf_counter()
    index.query(X_val[:n_queries].reshape(n_queries, -1), 20)
    s = time.perf_counter() - t0
    return {"queries": n_queries, "s": s, "per_10k_s": s * 10_000 / n_queries, "peak_mib": peak_mib()}


# ---- driver ----------------------------------------------------------------------------------------------------------


def run_phase(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"phase {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}"


def write_results(section: str, text: str) -> None:
    path = ROOT / "bench" / "RESULTS_classifiers.md"
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    old = path.read_text() if path.exists() else "# Classifier benchmarks (chainrule.classifiers)\n\n"
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    if start in old and end in old:
        new = old[:old.index(start)] + block + old[old.index(end) + len(end) + 1:]
    else:
        new = old.rstrip() + "\n\n" + block
    path.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the CIFAR-10 image-folder archive")
    parser.add_argument("--quick", action="store_true", help="smaller scikit-learn / NumPy subsets")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS_classifiers.md")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, rest = args.worker[0], args.worker[1:]
        result = {"l2": lambda: phase_chainrule("l2", args.data), "l1": lambda: phase_chainrule("l1", args.data),
                  "cv": lambda: phase_cv(args.data),
                  "sklearn-l2": lambda: phase_sklearn("l2", args.data, int(rest[0])),
                  "sklearn-l1": lambda: phase_sklearn("l1", args.data, int(rest[0])),
                  "numpy-l1": lambda: phase_numpy_l1(args.data, int(rest[0]))}[kind]()
        print(json.dumps(result))
        return

    load_before = os.getloadavg()
    sk_l2_n, sk_l1_n, np_l1_n = (500, 50, 50) if args.quick else (2000, 200, 200)
    results = {}
    for name, phase in [("l2", ["l2"]), ("l1", ["l1"]), ("cv", ["cv"]), ("sklearn-l2", ["sklearn-l2", str(sk_l2_n)]),
                        ("sklearn-l1", ["sklearn-l1", str(sk_l1_n)]), ("numpy-l1", ["numpy-l1", str(np_l1_n)])]:
        print(f"running {name} ...", flush=True)
        results[name] = run_phase(phase)
        print(json.dumps(results[name]), flush=True)
    load_after = os.getloadavg()

    l2, l1, cv, skl2, skl1, npl1 = (results[k] for k in ("l2", "l1", "cv", "sklearn-l2", "sklearn-l1", "numpy-l1"))

    def acc(r, k, split=""):  # JSON turned the int keys into strings
        return r["acc_" + split if split else "acc"][str(k)]

    best_l1 = max(KS, key=lambda k: acc(l1, k))

    lines = [
        "## kNN (bench/bench_knn.py)",
        "",
        f"{datetime.date.today().isoformat()}; {machine()}; kernels: {l2['kernels']}. Load average "
        f"{load_before[0]:.1f} before / {load_after[0]:.1f} after: the 2 cores were shared with other engineers' "
        "jobs, so times are noisy (ratios within this run are the better guide).",
        "",
        "CIFAR-10 JPEG archive, stratified split (seed 0): 40,000 train / 10,000 validation. Time targets are for "
        "10,000 queries x 50,000 train; the last column scales the measured 40,000-train time by 1.25.",
        "",
        "| model | validation accuracy: 40k train / 10k val (45k / 5k) | goal (test, 50k train) | predict time, "
        "10,000 queries x 40,000 train | x1.25 (50k train) | peak RSS |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| kNN L2, k=1 | {acc(l2, 1):.2%} ({acc(l2, 1, '45k'):.2%}) | >= 35.3% | {l2['predict_all_k_s']:.1f} s "
        f"for all k in {KS} (one pass) | {1.25 * l2['predict_all_k_s']:.1f} s (goal <= 25 s) | "
        f"{l2['peak_mib']:.0f} MiB |",
        f"| kNN L1, best k={best_l1} | {acc(l1, best_l1):.2%} ({acc(l1, best_l1, '45k'):.2%}) | >= 39% | "
        f"{l1['predict_all_k_s']:.1f} s for all k | {1.25 * l1['predict_all_k_s']:.1f} s (goal <= 120 s) | "
        f"{l1['peak_mib']:.0f} MiB |",
        f"| kNN, k by 5-fold CV on 5,000 train | {cv['val_acc']:.2%} (k={cv['best_k']}) | ~28.4% (k=15) | "
        f"{cv['time_s']:.1f} s for the whole CV | | {cv['peak_mib']:.0f} MiB |",
        "",
        "Accuracy per k (one distance pass each), 40k / 10k split (45k / 5k split):",
        "",
        "| metric | " + " | ".join(f"k={k}" for k in KS) + " |",
        "| --- |" + " --- |" * len(KS),
        "| L2 | " + " | ".join(f"{acc(l2, k):.2%} ({acc(l2, k, '45k'):.2%})" for k in KS) + " |",
        "| L1 | " + " | ".join(f"{acc(l1, k):.2%} ({acc(l1, k, '45k'):.2%})" for k in KS) + " |",
        "",
        "5-fold CV means: " + ", ".join(f"k={k}: {v:.1%}" for k, v in cv["cv_mean"].items()) + ".",
        "",
        "Against scikit-learn (KNeighborsClassifier, algorithm='brute', float32 input, one k per pass), measured on "
        "a subset of queries and extrapolated linearly to 10,000:",
        "",
        "| | scikit-learn, one k | chainrule, all 5 k | speed-up (per k: x5) |",
        "| --- | --- | --- | --- |",
        f"| L2 ({skl2['queries']} queries) | {skl2['per_10k_s']:.1f} s | {l2['predict_all_k_s']:.1f} s | "
        f"{skl2['per_10k_s'] / l2['predict_all_k_s']:.1f}x ({5 * skl2['per_10k_s'] / l2['predict_all_k_s']:.0f}x) |",
        f"| L1 ({skl1['queries']} queries) | {skl1['per_10k_s']:.0f} s | {l1['predict_all_k_s']:.1f} s | "
        f"{skl1['per_10k_s'] / l1['predict_all_k_s']:.0f}x ({5 * skl1['per_10k_s'] / l1['predict_all_k_s']:.0f}x) |",
        f"| L1, chainrule's NumPy fallback (no numba; {npl1['queries']} queries) | | {npl1['per_10k_s']:.0f} s | "
        f"compiled kernel: {npl1['per_10k_s'] / l1['predict_all_k_s']:.0f}x faster |",
        "",
        f"Load check: scikit-learn's L2 brute force took {1.25 * skl2['per_10k_s']:.0f} s per k here (scaled to 50,000 "
        f"training images) against 59 s in the issue's reference measurement, so this run's machine was "
        f"{1.25 * skl2['per_10k_s'] / 59:.1f}x slower; on that footing chainrule's all-k L2 pass for 50,000 x 10,000 "
        f"is {1.25 * l2['predict_all_k_s'] / (1.25 * skl2['per_10k_s'] / 59):.1f} s (goal <= 25 s).",
        "",
        f"L2 ranking ({l2['kernels']['l2_u8']}) vs exact distances on {l2['exact_check']['queries']} random "
        "queries: identical top-20 lists "
        f"{l2['exact_check']['identical_top20_lists']:.1%}, same nearest neighbour "
        f"{l2['exact_check']['same_nearest']:.1%}, max |squared-distance error| "
        f"{l2['exact_check']['max_abs_sq_dist_error']:g}.",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if not args.no_write:
        write_results("knn", text)


if __name__ == "__main__":
    main()
