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
from chainrule.commands import params as P
from chainrule.commands.common import UsageError, data_spec, log_context, say, split_data, usage_errors

logger = logging.getLogger("chainrule")

SELECT_K = [1, 3, 5, 10, 20]
RANDOM_LABEL = "random search over W"


def _label(model: str) -> str:
    from chainrule.classifiers import get_spec

    return get_spec(model).label


def _default_models() -> list[str]:
    """The models compare trains when --models is not given: the registered ones whose spec says ``in_compare``."""
    from chainrule.classifiers import get_spec

    return [m for m in P.model_names() if get_spec(m).in_compare]


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    models = P.model_names()
    p = sub.add_parser("compare", parents=[common], help=f"train {', '.join(models)}; one comparison report",
                       description="Train and compare the random-search baseline and the registered models ("
                                   + ", ".join(_label(m) for m in models) + ") on one dataset with sensible "
                                   "defaults; write one run folder per model and a report comparing them.")
    p.add_argument("--data", help="dataset spec (default: digits, offline)")
    p.add_argument("--models", default=None,
                   help=f"which models, comma-separated, of {','.join(models)} (default: those of "
                        f"{','.join(_default_models())} that can train on the data)")
    p.add_argument("--epochs", default=None, help="epochs of the SVM, softmax and MLP (default: each estimator's: "
                   "1,500 steps for the linear models, 50 epochs for the MLP)")
    p.add_argument("--hidden", default=None, help="hidden_sizes of the MLP (default: 100)")
    p.add_argument("--features", default=None, help="features of every model that takes them (not kNN): none (raw "
                   "pixels, the default) or hog_color")
    p.add_argument("--val-size", default=None, help="validation fraction or count (default: 0.1)")
    p.add_argument("--seed", default=None, help="random_state of every model and the split's seed (default: 0)")
    p.add_argument("--random-tries", type=int, default=1000,
                   help="random weight matrices tried by the random-search baseline (default: 1000; 0: skip it)")
    p.add_argument("--out", metavar="DIR", help="folder (default: runs/compare-<data>-<timestamp>)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import chainrule
    from chainrule.train import RunFolder
    from chainrule.train.history import write_json
    from chainrule.train.plots import plot_comparison
    from chainrule.train.runfolder import default_run_name

    from chainrule.runs import train_run

    known = P.model_names()
    models = [m.strip().lower() for m in (args.models or ",".join(_default_models())).split(",") if m.strip()]
    unknown = [m for m in models if m not in known]
    if unknown or not models:
        raise UsageError(f"--models must list some of {', '.join(known)}; got {args.models!r}")
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
        own = P.signature(m)
        if cfgmod.can_select_k(m):
            layer["select_k"] = (SELECT_K, "compare's k candidates")
        if "random_state" in own:
            layer["random_state"] = (seed, "--seed")
        else:
            layer["split_seed"] = (seed, "--seed")
        # compare's few flags set the parameter of that name in every model that has it
        for key, value, flag in (("epochs", args.epochs, "--epochs"), ("features", args.features, "--features"),
                                 ("hidden_sizes", args.hidden, "--hidden")):
            if value is not None and key in own:
                layer[key] = (value, flag)
        configs[m] = cfgmod.resolve(layer)
    out = Path(args.out) if args.out else Path("runs") / default_run_name("compare", spec)
    if out.exists() and any(out.iterdir()):
        _refuse_existing(out)
    t_start = time.perf_counter()
    data = split_data(spec, configs[models[0]]["val_size"], seed, configs[models[0]].get("image_size"))
    if not args.models:  # the default, every registered model: those that cannot train on these samples are left out
        models = _fitting(models, configs, data)
    logger.info("comparing %s on %s: %d training / %d validation samples", ", ".join(models), data.name,
                len(data.X_train), len(data.X_val))
    lock = _create_locked(out)  # one writer: a second compare into the same --out is refused naming this pid
    try:
        rows: list[dict[str, Any]] = []
        results: dict[str, Any] = {}
        if args.random_tries:
            with log_context(RANDOM_LABEL):
                rows.append(_random_row(args.features, data, args.random_tries, seed))
        from chainrule.progress import Progress

        with Progress(len(models), "compare", "models", enabled=not args.quiet, delay=0.0, log_every=0,
                      rate=False) as bar:
            for m in models:
                bar.desc = f"compare: {_label(m)}"
                bar.set(bar.n)  # (redraw with the new name)
                # Each model's messages say which model they are about; its per-epoch lines only with --verbose.
                with log_context(_label(m), quiet_info=True):
                    result = train_run(configs[m], RunFolder(out / m), progress=not args.quiet, data=data,
                                       checkpoints=False)
                bar.update()
                results[m] = result
                s = result.summary
                row = {"model": _label(m), "key": m, "val_acc": s["val_acc"], "train_time_s": s["train_time_s"],
                       "predict_time_s": s["predict_time_s"], "predict_samples_per_s": s.get("predict_samples_per_s"),
                       "parameters": s.get("num_parameters"),
                       "notes": (f"{s['description']}, k chosen on validation" if s.get("val_acc_by_k") else
                                 f"{s['epochs_completed']} epochs, {s['steps']} steps" if s["training_curve"] else
                                 s["description"]),
                       "report": f"{m}/report.html"}
                rows.append(row)
                timing = (f"{row['train_time_s']:.2f} s" if s["training_curve"] else
                          f"predict {row['predict_time_s']:.2f} s")
                logger.debug("%s: %.2f%% validation accuracy (%s, %s)", _label(m), 100 * row["val_acc"], row["notes"],
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
    """The random-search baseline (``chainrule.classifiers.RandomSearchClassifier``) on the linear models' inputs:
    the same features, standardised."""
    from chainrule.classifiers.random_search import RandomSearchClassifier

    est = RandomSearchClassifier(tries=tries, features=None if features in (None, "none") else features,
                                 random_state=seed)
    with usage_errors("--features: "):
        t0 = time.perf_counter()
        est.fit(data.X_train, data.y_train)
        train_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    y_pred = est.predict(data.X_val)
    predict_time = time.perf_counter() - t0
    acc = float(np.mean(y_pred == data.y_val))
    logger.debug("%.2f%% validation accuracy (the best of %d random W by training SVM loss: %.3f)", 100 * acc, tries,
                 est.best_loss_)
    return {"model": RANDOM_LABEL, "key": "random", "val_acc": acc, "train_time_s": train_time,
            "predict_time_s": predict_time,
            "predict_samples_per_s": len(data.X_val) / predict_time if predict_time > 0 else None,
            "parameters": est.n_parameters(), "notes": f"best of {tries} by training SVM loss ({est.best_loss_:.3f})",
            "report": None}


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
    for key in results:  # each model's learned weights as images, and its training curves
        for png, caption in (("weights.png", "learned weights"), ("accuracy.png", "accuracy per epoch"),
                             ("loss.png", "training loss")):
            if (out / key / "plots" / png).is_file():
                plots.append((f"{_label(key)}: {caption}", out / key / "plots" / png))
    fitted = [r for r in rows if r.get("key") in results]
    if fitted:
        best = max(fitted, key=lambda r: r["val_acc"])
        plots.append((f"Confusion matrix of the best model ({best['model']})", out / best["key"] / "plots" /
                      "confusion.png"))
    for key in results:
        p = out / key / "plots" / "decision_boundary.png"
        if p.is_file():
            plots.append((f"{_label(key)}: decision boundary", p))
    top = max(rows, key=lambda r: r["val_acc"])
    headline = [("best validation accuracy", f"{100 * top['val_acc']:.2f}%"), ("best model", top["model"]),
                ("training / validation samples", f"{len(data.X_train):,} / {len(data.X_val):,}"),
                ("total time", f"{wall:.3g} s")]
    write_report(out / "report.html", f"chainrule compare: {spec}",
                 subtitle=", ".join(r["model"] for r in rows) + " on the same split", sections=sections, plots=plots, headline=headline)


def _fitting(models: list[str], configs: dict[str, Any], data: Any) -> list[str]:
    """The models whose estimator, as configured, can train on ``data``'s samples: each one with a training loop
    takes one ``partial_fit`` step on two training samples first (a conv net whose blocks pool 8 x 8 digits below one
    pixel cannot); a model left out is named, with the estimator's reason."""
    import warnings

    X, y, classes = data.X_train[:2], data.y_train[:2], np.unique(data.y_train)
    kept = []
    for m in models:
        est = P.build(m, cfgmod.params_of(configs[m]))
        if est.has_training_curve and hasattr(est, "partial_fit"):
            try:
                with log_context(_label(m), quiet_info=True), np.errstate(all="ignore"), \
                        warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.partial_fit(X, y, classes=classes)
            except Exception as e:  # whatever the estimator refuses, in its own words
                logger.info("leaving out the %s: it cannot train on these samples (%s); --models %s shows the error",
                            _label(m), " ".join(str(e).split()), m)
                continue
        kept.append(m)
    return kept
