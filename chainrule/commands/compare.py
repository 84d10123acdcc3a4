"""``chainrule compare``: the lectures' classifiers side by side on one dataset, in one report.

    chainrule compare                      # the offline default (digits), about a minute on 2 cores
    chainrule compare --data cifar10:../shared/data/cifar10-train-jpeg.tar.gz --epochs 10

Rows: the "random search over W" baseline of lecture 3 (the best of N random linear classifiers by training
loss), kNN (k chosen on validation among 1, 3, 5, 10, 20: ``chainrule train --select-k``), a linear SVM, a
softmax classifier and an MLP: each ``chainrule.classifiers`` estimator with its defaults (and the few flags
below), trained by ``chainrule train``'s ``train_run`` on the same train / validation split. Each model gets a
full run folder under the comparison folder (without step checkpoints: a comparison is not resumed); the top-level
report.html compares accuracy, training time and prediction time.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.utils.atomic import atomic_open

from chainrule.commands import config as cfgmod
from chainrule.commands.common import UsageError, data_spec, log_context, say, split_data, usage_errors

logger = logging.getLogger("chainrule")

MODELS = cfgmod.MODELS
SELECT_K = [1, 3, 5, 10, 20]
LABELS = {"random": "random search over W", "knn": "k-nearest neighbour", "svm": "linear SVM",
          "softmax": "softmax classifier", "mlp": "MLP (two-layer net)"}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("compare", parents=[common], help="train kNN, SVM, softmax and MLP; one comparison report",
                       description="Train and compare the random-search baseline, kNN, a linear SVM, a softmax "
                                   "classifier and an MLP on one dataset with sensible defaults; write one run "
                                   "folder per model and a report comparing them.")
    p.add_argument("--data", help="dataset spec (default: digits, offline)")
    p.add_argument("--models", default=",".join(MODELS),
                   help=f"which models, comma-separated (default: {','.join(MODELS)})")
    p.add_argument("--epochs", default=None, help="epochs of the SVM, softmax and MLP (default: each estimator's: "
                   "1,500 steps for the linear models, 50 epochs for the MLP)")
    p.add_argument("--hidden", default=None, help="hidden_sizes of the MLP (default: 100)")
    p.add_argument("--features", default=None, help="features of every model but kNN: none (raw pixels, the "
                   "default) or hog_color")
    p.add_argument("--val-size", default=None, help="validation fraction or count (default: 0.1)")
    p.add_argument("--seed", default=None, help="random_state of every model and the split's seed (default: 0)")
    p.add_argument("--random-tries", type=int, default=1000,
                   help="random weight matrices tried by the random-search baseline (default: 1000; 0: skip it)")
    p.add_argument("--out", metavar="DIR", help="folder (default: runs/compare-<data>-<timestamp>)")
    p.set_defaults(func=run)


def random_search(X_train: np.ndarray, y_train: np.ndarray, num_classes: int, tries: int, seed: int,
                  max_samples: int = 2000, chunk: int = 50) -> tuple[np.ndarray, float]:
    """Lecture 3's strategy #1: draw ``tries`` random W (D+1, C) (bias row last), keep the one with the lowest
    multiclass SVM loss on (a subsample of) the training set. Returns (W, its loss)."""
    rng = np.random.default_rng(seed)
    if len(X_train) > max_samples:
        pick = np.sort(rng.choice(len(X_train), size=max_samples, replace=False))
        X_train, y_train = X_train[pick], y_train[pick]
    n, d = X_train.shape
    Xb = np.hstack([X_train, np.ones((n, 1), dtype=X_train.dtype)])
    rows = np.arange(n)
    best_w, best_loss = None, np.inf
    scale = 1.0 / np.sqrt(d + 1)
    for start in range(0, tries, chunk):
        m = min(chunk, tries - start)
        W = (rng.standard_normal((d + 1, m * num_classes)) * scale).astype(np.float32)
        S = (Xb @ W).reshape(n, m, num_classes)                      # scores of every candidate
        correct = S[rows, :, y_train][:, :, None]                     # (n, m, 1)
        losses = np.maximum(0.0, S - correct + 1.0).sum(axis=2).mean(axis=0) - 1.0  # minus the j = y term
        j = int(np.argmin(losses))
        if losses[j] < best_loss:
            best_loss = float(losses[j])
            best_w = W.reshape(d + 1, m, num_classes)[:, j, :].copy()
    return best_w, best_loss


def run(args: argparse.Namespace) -> int:
    import chainrule
    from chainrule.train import RunFolder
    from chainrule.train.history import write_json
    from chainrule.train.plots import plot_comparison
    from chainrule.train.runfolder import default_run_name

    from chainrule.commands.train import train_run

    models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise UsageError(f"--models must list some of {', '.join(MODELS)}; got {args.models!r}")
    if args.random_tries < 0:
        raise UsageError(f"--random-tries must be >= 0, got {args.random_tries}")
    spec = data_spec(args.data)
    try:
        seed = 0 if args.seed is None else int(args.seed)
    except ValueError:
        raise UsageError(f"--seed must be an integer, got {args.seed!r}") from None
    shared = {k: (v, f"--{k.replace('_', '-')}") for k, v in (("data", spec), ("val_size", args.val_size))
              if v is not None}
    configs = {}
    for m in models:
        layer = {**shared, "model": (m, "--models")}
        if m == "knn":
            layer.update(select_k=(SELECT_K, "compare's k candidates"), split_seed=(seed, "--seed"))
        else:
            layer["random_state"] = (seed, "--seed")
            for key, value in (("epochs", args.epochs), ("features", args.features)):
                if value is not None:
                    layer[key] = (value, f"--{key}")
        if m == "mlp" and args.hidden is not None:
            layer["hidden_sizes"] = (args.hidden, "--hidden")
        configs[m] = cfgmod.resolve(layer)
    out = Path(args.out) if args.out else Path("runs") / default_run_name("compare", spec)
    if out.exists() and any(out.iterdir()):
        _refuse_existing(out)
    t_start = time.perf_counter()
    data = split_data(spec, configs[models[0]]["val_size"], seed, configs[models[0]].get("image_size"))
    logger.info("comparing %s on %s: %d training / %d validation samples", ", ".join(models), data.name,
                len(data.X_train), len(data.X_val))
    lock = _create_locked(out)  # one writer: a second compare into the same --out is refused naming this pid
    try:
        rows: list[dict[str, Any]] = []
        results: dict[str, Any] = {}
        if args.random_tries:
            with log_context(LABELS["random"]):
                rows.append(_random_row(args.features, data, args.random_tries, seed))
        from chainrule.progress import Progress

        with Progress(len(models), "compare", "models", enabled=not args.quiet, delay=0.0, log_every=0,
                      rate=False) as bar:
            for m in models:
                bar.desc = f"compare: {LABELS[m]}"
                bar.set(bar.n)  # (redraw with the new name)
                # Each model's messages say which model they are about; its per-epoch lines only with --verbose.
                with log_context(LABELS[m], quiet_info=True):
                    result = train_run(configs[m], RunFolder(out / m), progress=not args.quiet, data=data,
                                       checkpoints=False)
                bar.update()
                results[m] = result
                s = result.summary
                row = {"model": LABELS[m], "key": m, "val_acc": s["val_acc"], "train_time_s": s["train_time_s"],
                       "predict_time_s": s["predict_time_s"], "predict_samples_per_s": s.get("predict_samples_per_s"),
                       "parameters": s.get("num_parameters"),
                       "notes": (f"k={s['knn_k']} ({s['metric']}), chosen on validation" if m == "knn" else
                                 f"{s['epochs_completed']} epochs, {s['steps']} steps"),
                       "report": f"{m}/report.html"}
                rows.append(row)
                timing = (f"predict {row['predict_time_s']:.2f} s" if m == "knn" else f"{row['train_time_s']:.2f} s")
                logger.debug("%s: %.2f%% validation accuracy (%s, %s)", LABELS[m], 100 * row["val_acc"], row["notes"],
                             timing)
        wall = time.perf_counter() - t_start
        plots_dir = out / "plots"
        bars = plots_dir / "comparison.png"
        plot_comparison([r["model"] for r in rows], [r["val_acc"] for r in rows], bars,
                        train_times=[r["train_time_s"] for r in rows],
                        title=f"Validation accuracy on {spec} ({len(data.X_val)} samples)")
        columns = ["model", "val_acc", "train_time_s", "predict_time_s", "predict_samples_per_s", "parameters", "notes"]
        with atomic_open(out / "comparison.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        write_json(out / "summary.json", {"data": spec, "dataset": data.name, "num_train": len(data.X_train),
                                          "num_val": len(data.X_val), "rows": rows, "wall_time_s": wall,
                                          "chainrule_version": chainrule.__version__})
        _write_report(out, spec, data, rows, results, bars, wall)
        say(f"{'model':<24} {'val acc':>8} {'train s':>8} {'predict s':>9}")
        for r in rows:
            say(f"{r['model']:<24} {100 * r['val_acc']:7.2f}% {r['train_time_s']:8.2f} {r['predict_time_s']:9.3f}")
        say(f"{len(rows)} models on {spec} in {wall:.1f} s; report: {out / 'report.html'}")
    finally:
        lock.release()
    return 0


def _create_locked(out: Path) -> Any:
    """Create ``out`` exclusively and locked (``chainrule.utils.locking``), as run folders are: of two comparisons
    started into one folder, one gets it; the other is refused naming the holder's pid (or, if the folder is not
    locked, because it exists and is not empty)."""
    from chainrule.utils.locking import create_locked_folder

    try:
        return create_locked_folder(out, subdirs=("plots",))
    except FileExistsError:
        _refuse_existing(out)


def _refuse_existing(out: Path) -> None:
    """Refuse an existing, non-empty ``out``: FolderInUseError naming the pid of a comparison writing it, else a
    usage error."""
    from chainrule.utils.locking import LOCK_NAME, FolderLock

    if (out / LOCK_NAME).is_file():
        with FolderLock(out):  # raises FolderInUseError while a comparison holds it
            pass
    raise UsageError(f"{out} exists and is not empty; choose another --out")


def _random_row(features: str | None, data: Any, tries: int, seed: int) -> dict[str, Any]:
    """The random-search baseline on the linear models' inputs: the same features, standardised."""
    from chainrule.classifiers._inputs import compute_features, fit_preprocessor, make_features, preprocess

    with usage_errors("--features: "):
        steps = make_features(None if features in (None, "none") else features, 8)
        shape = data.X_train.shape[1:]
        F_train = compute_features(steps, data.X_train.reshape(len(data.X_train), -1), shape)
        F_val = compute_features(steps, data.X_val.reshape(len(data.X_val), -1), shape)
    prep = fit_preprocessor(F_train, "standardize")
    X_train, X_val = preprocess(prep, F_train), preprocess(prep, F_val)
    t0 = time.perf_counter()
    W, loss = random_search(X_train, data.y_train, len(data.classes), tries, seed)
    train_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    y_pred = (X_val @ W[:-1] + W[-1]).argmax(axis=1)
    predict_time = time.perf_counter() - t0
    acc = float(np.mean(y_pred == data.y_val))
    logger.debug("%.2f%% validation accuracy (the best of %d random W by training SVM loss: %.3f)", 100 * acc, tries,
                 loss)
    return {"model": LABELS["random"], "key": "random", "val_acc": acc, "train_time_s": train_time,
            "predict_time_s": predict_time,
            "predict_samples_per_s": len(X_val) / predict_time if predict_time > 0 else None,
            "parameters": int(W.size), "notes": f"best of {tries} by training SVM loss ({loss:.3f})", "report": None}


def _write_report(out: Path, spec: str, data: Any, rows: list[dict[str, Any]], results: dict[str, Any], bars: Path,
                  wall: float) -> None:
    import html

    from chainrule.train.report import html_table, write_report

    table_rows = [{"model": r["model"], "validation accuracy (%)": round(100 * r["val_acc"], 2),
                   "train time (s)": r["train_time_s"], "predict time (s)": r["predict_time_s"],
                   "predict samples/s": r["predict_samples_per_s"], "parameters": r["parameters"],
                   "notes": r["notes"]} for r in rows]
    links = "".join(f'<li><a href="{html.escape(r["report"])}">{html.escape(r["model"])}: run report</a></li>'
                    for r in rows if r.get("report"))
    sections = [("Results", html_table(table_rows)
                 + f"<p>{len(data.X_train)} training and {len(data.X_val)} validation samples of "
                   f"{html.escape(data.name)}; total time {wall:.1f} s. Random search draws W ~ N(0, 1/D) and "
                   "keeps the lowest training SVM loss (lecture 3's strategy #1).</p>"),
                ("Runs", f"<ul>{links}</ul>")]
    plots = [("Validation accuracy by model (training time in brackets)", bars)]
    for key, caption, png in (("softmax", "Softmax classifier: learned templates", "weights.png"),
                              ("svm", "Linear SVM: learned templates", "weights.png"),
                              ("mlp", "MLP: accuracy per epoch", "accuracy.png"),
                              ("mlp", "MLP: training loss", "loss.png")):
        if key in results:
            plots.append((caption, out / key / "plots" / png))
    fitted = [r for r in rows if r.get("key") in results]
    if fitted:
        best = max(fitted, key=lambda r: r["val_acc"])
        plots.append((f"Confusion matrix of the best model ({best['model']})", out / best["key"] / "plots" /
                      "confusion.png"))
    for key in results:
        p = out / key / "plots" / "decision_boundary.png"
        if p.is_file():
            plots.append((f"{LABELS[key]}: decision boundary", p))
    top = max(rows, key=lambda r: r["val_acc"])
    headline = [("best validation accuracy", f"{100 * top['val_acc']:.2f}%"), ("best model", top["model"]),
                ("training / validation samples", f"{len(data.X_train):,} / {len(data.X_val):,}"),
                ("total time", f"{wall:.3g} s")]
    write_report(out / "report.html", f"chainrule compare: {spec}", subtitle="random search, kNN, linear SVM, "
                 "softmax and MLP on the same split", sections=sections, plots=plots, headline=headline)
