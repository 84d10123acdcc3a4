"""Hyperparameter search on CIFAR-10: kNN k-selection by 5-fold cross-validation, and a random search of softmax
classifiers run with 1 and 2 local workers (and on a 2-worker Dask LocalCluster). Writes bench/RESULTS_tune.md.

A. kNN, L2, k in {1, 3, 5, 8, 10, 12, 15, 20, 50, 100} by 5-fold CV on 5,000 training images (a stratified sample,
   seed 0), CS231n assignment 1's procedure; reference on this machine: k=15, 28.4%.
   - ``chainrule.tune.search`` (grid, validation=5, 2 workers): one fit and one distance pass per (k, fold);
   - the same folds with one distance pass per fold (``KNearestNeighbor.score_many``), which must give exactly the
     same accuracies (checked);
   - scikit-learn's ``GridSearchCV(KNeighborsClassifier(algorithm="brute"))`` on the same folds (the peer).
   Also writes bench/tune_knn_cv.png (accuracy vs k with error bars across folds).
B. Random search, 20 trials, ``SoftmaxClassifier`` (lr and reg log-uniform, 4 epochs) on 10,000 training images,
   holdout 20%: 1 worker (2 BLAS threads), 2 workers (1 BLAS thread each), 2 workers with the BLAS limit removed
   (each worker's BLAS uses every core: oversubscribed, the control), and a Dask LocalCluster with 2 worker processes
   x 1 thread. All runs must return identical trials (checked).

Timings on a shared machine are noisy (other engineers' jobs run on the same 2 cores); the load average is
recorded before and after, and the ratios from one run are what to compare.

    python bench/bench_tune.py [--data PATH] [--trials 20] [--quick] [--no-sklearn] [--no-dask]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from chainrule.classifiers import KNearestNeighbor, SoftmaxClassifier  # noqa: E402
from chainrule.data import get_dataset, train_val_indices  # noqa: E402
from chainrule.tune import loguniform, make_folds, search  # noqa: E402
from chainrule.tune import parallel  # noqa: E402
from chainrule.tune.plots import plot_cv_curve  # noqa: E402

DEFAULT_DATA = "/work/shared/data/cifar10-train-jpeg.tar.gz"
KS = [1, 3, 5, 8, 10, 12, 15, 20, 50, 100]


def stratified_sample(X: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    idx = train_val_indices(y, n, seed=seed)[1]
    return X[idx], y[idx]


def summary(result) -> list:
    return [(t.trial, t.params, t.status, t.score, t.scores) for t in result.trials]


def bench_knn(X: np.ndarray, y: np.ndarray, out: list[str], runs: Path, use_sklearn: bool) -> None:
    out.append(f"## A. kNN (L2): k by 5-fold cross-validation on {len(y):,} training images\n")
    t0 = time.perf_counter()
    result = search(KNearestNeighbor, {"k": KS}, X, y, strategy="grid", validation=5, seed=0, n_jobs=2,
                    run_dir=runs / "knn", plots=False)
    t_search = time.perf_counter() - t0
    by_k = {t.params["k"]: t for t in result.trials}
    best = result.best

    folds = make_folds(y, 5, seed=0)
    t0 = time.perf_counter()
    per_fold = [KNearestNeighbor(k=1).fit(X[tr], y[tr]).score_many(X[va], y[va], KS) for tr, va in folds]
    t_onepass = time.perf_counter() - t0
    for k in KS:
        np.testing.assert_allclose(by_k[k].scores, [f[k] for f in per_fold], err_msg=f"k={k}")

    sk_line = ""
    if use_sklearn:
        from sklearn.model_selection import GridSearchCV
        from sklearn.neighbors import KNeighborsClassifier

        Xf = X.reshape(len(X), -1).astype(np.float32)
        t0 = time.perf_counter()
        gs = GridSearchCV(KNeighborsClassifier(algorithm="brute"), {"n_neighbors": KS}, cv=folds, n_jobs=2,
                          refit=False).fit(Xf, y)
        t_sk = time.perf_counter() - t0
        sk_means = gs.cv_results_["mean_test_score"]
        sk_best = KS[int(np.argmax(sk_means))]
        sk_line = (f"| scikit-learn GridSearchCV, KNeighborsClassifier(algorithm='brute'), 2 jobs | {t_sk:.1f} s | "
                   f"{t_sk / t_search:.2f}x | k={sk_best}, {100 * sk_means.max():.1f}% |\n")

    plot_cv_curve(KS, [by_k[k].scores for k in KS], ROOT / "bench" / "tune_knn_cv.png", xlabel="k",
                  title=f"kNN (L2) on {len(y):,} CIFAR-10 training images: 5-fold cross-validation")
    out.append(f"Best: **k={best.params['k']}, {100 * best.score:.1f}% ± {100 * best.std:.1f}** (mean ± std over "
               "the 5 folds; reference on this machine: k=15, 28.4%).\n")
    out.append("| k | " + " | ".join(str(k) for k in KS) + " |")
    out.append("|---|" + "---|" * len(KS))
    out.append("| mean accuracy (%) | " + " | ".join(f"{100 * by_k[k].score:.1f}" for k in KS) + " |")
    out.append("| std across folds | " + " | ".join(f"{100 * by_k[k].std:.1f}" for k in KS) + " |\n")
    out.append("| how | time | vs tune.search | result |\n|---|---|---|---|")
    out.append(f"| `chainrule.tune.search`, grid over k, 5 folds, 2 workers ({len(KS) * 5} fits) | {t_search:.1f} s "
               f"| 1.00x | k={best.params['k']}, {100 * best.score:.1f}% |")
    out.append(f"| one distance pass per fold, all k at once (`KNearestNeighbor.score_many`), 1 process | "
               f"{t_onepass:.1f} s | {t_onepass / t_search:.2f}x | identical accuracies (checked) |")
    if sk_line:
        out.append(sk_line.rstrip())
    out.append("\n![accuracy vs k](tune_knn_cv.png)\n")
    print("\n".join(out[-12:]), flush=True)


def bench_softmax(X: np.ndarray, y: np.ndarray, n_trials: int, out: list[str], runs: Path, use_dask: bool) -> None:
    out.append(f"## B. Random search: {n_trials} softmax trials on {len(y):,} training images (holdout 20%)\n")
    space = {"lr": loguniform(1e-4, 3e-1), "reg": loguniform(1e-4, 1e1)}
    kwargs = dict(strategy="random", n_trials=n_trials, seed=0, validation="holdout", val_size=0.2,
                  fixed={"epochs": 4, "batch_size": 200})
    rows, reference = [], None

    def timed(name: str, **kw) -> float:
        nonlocal reference
        t0 = time.perf_counter()
        result = search(SoftmaxClassifier, space, X, y, plots=False, **kwargs, **kw)
        elapsed = time.perf_counter() - t0
        if reference is None:
            reference = result
        else:
            assert summary(result) == summary(reference), f"{name}: different trials than the 1-worker run"
        rows.append((name, elapsed))
        print(f"{name}: {elapsed:.1f} s", flush=True)
        return elapsed

    t1 = timed("local, 1 worker (BLAS: 2 threads)", n_jobs=1, run_dir=runs / "softmax")
    t2 = timed("local, 2 workers (BLAS: 1 thread each)", n_jobs=2)
    saved = parallel.blas_threads_per_worker
    parallel.blas_threads_per_worker = lambda n_jobs: parallel.cpu_count()  # the control: no per-worker limit
    try:
        timed("local, 2 workers, BLAS limit removed (2 threads each: 4 on 2 cores)", n_jobs=2)
    finally:
        parallel.blas_threads_per_worker = saved
    if use_dask:
        import distributed

        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as c:
            timed("Dask LocalCluster, 2 worker processes x 1 thread", backend="dask", scheduler=c.scheduler_address)
    best, counts = reference.best, reference.counts
    out.append(f"Best of {n_trials}: lr={best.params['lr']:.3g}, reg={best.params['reg']:.3g} -> "
               f"**{100 * best.score:.1f}%** validation accuracy ({counts['ok']} ok, {counts['diverged']} diverged, "
               f"{counts['failed']} failed). Every run below returned identical trials (checked).\n")
    out.append("| run | wall time | speed-up vs 1 worker |\n|---|---|---|")
    for name, elapsed in rows:
        out.append(f"| {name} | {elapsed:.1f} s | {t1 / elapsed:.2f}x |")
    out.append(f"\nSpeed-up with 2 workers: **{t1 / t2:.2f}x**.\n")
    out.append("Top 5 trials:\n\n```\n" + reference.table(top=5) + "\n```\n")
    print("\n".join(out[-14:]), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 training archive (image-folder .tar.gz)")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--knn-samples", type=int, default=5000)
    ap.add_argument("--softmax-samples", type=int, default=10000)
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script runs")
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_tune.md"))
    args = ap.parse_args()
    if args.quick:
        args.knn_samples, args.softmax_samples, args.trials = 1000, 2000, 6

    ds = get_dataset(f"cifar10:{args.data}")
    load1 = os.getloadavg()
    out = [f"# Hyperparameter search benchmarks (chainrule.tune)\n",
           f"{dt.date.today()}, {platform.machine()} {platform.processor() or ''} with {os.cpu_count()} cores, "
           f"no GPU, Python {platform.python_version()}, NumPy {np.__version__}. Produced by "
           f"`python bench/bench_tune.py` on the shared CIFAR-10 training archive (JPEG q75). **The CPU was shared "
           f"with other engineers' jobs while this ran** (load average {load1[0]:.1f} at the start): absolute "
           f"times are noisy; compare the ratios within one run.\n"]
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        bench_knn(*stratified_sample(ds.X_train, ds.y_train, args.knn_samples), out, runs, not args.no_sklearn)
        bench_softmax(*stratified_sample(ds.X_train, ds.y_train, args.softmax_samples, seed=1), args.trials, out,
                      runs, not args.no_dask)
    load2 = os.getloadavg()
    out.append(f"Load average (1 min) at the start: {load1[0]:.1f}; at the end: {load2[0]:.1f} (2 cores).\n")
    if not args.quick:
        Path(args.out).write_text("\n".join(out) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
