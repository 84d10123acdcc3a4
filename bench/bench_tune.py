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

    python bench/bench_tune.py [--data PATH] [--trials 20] [--rounds 3] [--quick] [--no-sklearn] [--no-dask]
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


def bench_knn(X_all: np.ndarray, y_all: np.ndarray, n: int, out: list[str], runs: Path, use_sklearn: bool,
              band_seeds: tuple[int, ...] = (1, 2, 3)) -> None:
    X, y = stratified_sample(X_all, y_all, n, seed=0)
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
    if band_seeds:
        out.append("The same procedure on other stratified 5,000-image samples (one distance pass per fold):\n")
        out.append("| sample seed | best k | 5-fold CV accuracy |\n|---|---|---|")
        for s in band_seeds:
            Xs, ys = stratified_sample(X_all, y_all, len(y), seed=s)
            fs = make_folds(ys, 5, seed=0)
            per_fold = [KNearestNeighbor(k=1).fit(Xs[tr], ys[tr]).score_many(Xs[va], ys[va], KS) for tr, va in fs]
            acc = np.array([np.mean([f[k] for f in per_fold]) for k in KS])
            out.append(f"| {s} | {KS[int(np.argmax(acc))]} | {100 * acc.max():.1f}% |")
        out.append("")
    print("\n".join(out[-12:]), flush=True)


class _NoBlasLimit:
    """The control run: local workers without the per-worker BLAS thread limit (each uses every core)."""

    def __enter__(self):
        self.saved = parallel.blas_threads_per_worker
        parallel.blas_threads_per_worker = lambda n_jobs: parallel.cpu_count()

    def __exit__(self, *exc):
        parallel.blas_threads_per_worker = self.saved


def bench_softmax(X: np.ndarray, y: np.ndarray, n_trials: int, rounds: int, out: list[str], use_dask: bool) -> None:
    out.append(f"## B. Random search: {n_trials} softmax trials on {len(y):,} training images (holdout 20%)\n")
    space = {"lr": loguniform(1e-4, 3e-1), "reg": loguniform(1e-4, 1e1)}
    kwargs = dict(strategy="random", n_trials=n_trials, seed=0, validation="holdout", val_size=0.2,
                  fixed={"epochs": 4, "batch_size": 200})
    SoftmaxClassifier(epochs=1).fit(X[::20], y[::20])  # warm-up: imports and first-touch allocations
    configs = [("local, 1 worker (its BLAS: 2 threads)", dict(n_jobs=1), None),
               ("local, 2 workers (BLAS: 1 thread each)", dict(n_jobs=2), None),
               ("local, 2 workers, BLAS limit removed (2 threads each: 4 on 2 cores)", dict(n_jobs=2), _NoBlasLimit)]
    cluster = None
    if use_dask:
        import distributed

        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                           dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0")
        configs.append(("Dask LocalCluster, 2 worker processes x 1 thread (cluster already started)",
                        dict(backend="dask", scheduler=cluster.scheduler_address), None))
    times: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    busy: dict[str, list[float]] = {name: [] for name, _, _ in configs}  # summed fit + score time of the trials
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in configs}  # summed CPU time of the trials
    reference = None
    try:
        for r in range(rounds):
            for name, kw, context in (configs if r % 2 == 0 else configs[::-1]):  # alternate the order
                t0 = time.perf_counter()
                if context is None:
                    result = search(SoftmaxClassifier, space, X, y, plots=False, **kwargs, **kw)
                else:
                    with context():
                        result = search(SoftmaxClassifier, space, X, y, plots=False, **kwargs, **kw)
                times[name].append(time.perf_counter() - t0)
                busy[name].append(sum(t.fit_time + t.score_time for t in result.trials))
                cpu[name].append(sum(t.cpu_time for t in result.trials))
                print(f"round {r + 1}: {name}: {times[name][-1]:.1f} s (trials busy {busy[name][-1]:.1f} s, load "
                      f"{os.getloadavg()[0]:.1f})", flush=True)
                if reference is None:
                    reference = result
                assert summary(result) == summary(reference), f"{name}: different trials than the first run"
    finally:
        if cluster is not None:
            cluster.close()
    best, counts = reference.best, reference.counts
    out.append(f"Best of {n_trials}: lr={best.params['lr']:.3g}, reg={best.params['reg']:.3g} -> "
               f"**{100 * best.score:.1f}%** validation accuracy ({counts['ok']} ok, {counts['diverged']} diverged, "
               f"{counts['failed']} failed). Every run returned identical trials (checked). {rounds} rounds, the "
               "order of the runs alternating between rounds; times are medians.\n")
    one = configs[0][0]
    out.append("| run | wall time (median) | speed-up vs 1 worker (median) | per-round speed-ups | concurrency | "
               "on-CPU fraction | CPU s per trial |\n|---|---|---|---|---|---|---|")
    med = {}
    for name, _, _ in configs:
        ratios = [a / b for a, b in zip(times[one], times[name])]
        med[name] = (np.median([b / t for b, t in zip(busy[name], times[name])]),
                     np.median([c / b for c, b in zip(cpu[name], busy[name])]), np.median(cpu[name]) / n_trials)
        out.append(f"| {name} | {np.median(times[name]):.1f} s | {np.median(ratios):.2f}x | "
                   f"{', '.join(f'{q:.2f}' for q in ratios)} | {med[name][0]:.2f} | {med[name][1]:.2f} | "
                   f"{med[name][2]:.2f} |")
    two = configs[1][0]
    speedup = np.median([a / b for a, b in zip(times[one], times[two])])
    out.append(f"\nSpeed-up of 2 local workers over 1: **{speedup:.2f}x** on this machine as it was during the run.\n")
    out.append(
        "How to read it: *concurrency* is the trials' summed wall time over the search's wall time (how many ran at "
        "once: 2 means both workers were always busy); *on-CPU fraction* is the trials' CPU time over their wall "
        "time (1: a core of their own; 0.5: runnable but waiting half of the time); *CPU s per trial* is the CPU "
        "time one trial needed. Two workers beat one when the machine has a second core to give and a trial costs "
        "about as much CPU next to another one as alone.\n")
    out.append(
        f"In this run the trials of 2 workers were on a CPU {100 * med[two][1]:.0f}% of their time against "
        f"{100 * med[one][1]:.0f}% for the single worker, and a trial needed {med[two][2] / med[one][2]:.1f}x the "
        f"CPU time when two ran at once ({med[two][2]:.2f} s against {med[one][2]:.2f} s).")
    if speedup < 1.3:
        why = []
        if med[two][1] < 0.75:  # each of the two workers had less than three quarters of a core
            why.append("while other jobs ran, this search's processes got little more than one core between them "
                       "(Linux's autogroup scheduling shares the cores between busy sessions, not between "
                       "processes)")
        if med[one][1] > 1.2:
            why.append(f"the single worker already used both cores through its 2 BLAS threads (on-CPU "
                       f"{100 * med[one][1]:.0f}%), so there was little idle CPU for a second worker to take")
        if med[two][2] > 1.2 * med[one][2]:
            why.append("two trials side by side slowed each other down, most likely because the minibatch gathers "
                       "of this small model are memory-bound and the two vCPUs share memory bandwidth and the L3 "
                       "cache")
        if why:
            out.append("So the second worker bought little here: " + "; and ".join(why) + ".")
    out.append("The run with the BLAS limit removed (2 workers x 2 BLAS threads on 2 cores) is the control for the "
               "limit itself.")
    out.append("")
    out.append("Top 5 trials:\n\n```\n" + reference.table(top=5) + "\n```\n")
    print("\n".join(out[-16:]), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 training archive (image-folder .tar.gz)")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds of the softmax search runs")
    ap.add_argument("--knn-samples", type=int, default=5000)
    ap.add_argument("--softmax-samples", type=int, default=10000)
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script runs")
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_tune.md"))
    args = ap.parse_args()
    if args.quick:
        args.knn_samples, args.softmax_samples, args.trials, args.rounds = 1000, 2000, 6, 2

    ds = get_dataset(f"cifar10:{args.data}")
    load1 = os.getloadavg()
    out = ["# Hyperparameter search benchmarks (chainrule.tune)\n",
           f"{dt.date.today()}, {platform.machine()} {platform.processor() or ''} with {os.cpu_count()} cores, "
           f"no GPU, Python {platform.python_version()}, NumPy {np.__version__}. Produced by "
           f"`python bench/bench_tune.py` on the shared CIFAR-10 training archive (JPEG q75). Load average "
           f"{load1[0]:.1f} at the start" + (": **the CPU was shared with other jobs while this ran**, so absolute "
                                              "times are noisy; compare the ratios within one run.\n"
                                              if load1[0] > 0.5 else " (the machine was otherwise idle).\n")]
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        bench_knn(ds.X_train, ds.y_train, args.knn_samples, out, runs, not args.no_sklearn)
        bench_softmax(*stratified_sample(ds.X_train, ds.y_train, args.softmax_samples, seed=1), args.trials,
                      args.rounds, out, not args.no_dask)
    load2 = os.getloadavg()
    out.append(f"Load average (1 min) at the start: {load1[0]:.1f}; at the end: {load2[0]:.1f} (2 cores).\n")
    if not args.quick:
        Path(args.out).write_text("\n".join(out) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
