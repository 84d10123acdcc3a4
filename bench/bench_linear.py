"""Linear SVM and Softmax on CIFAR-10 raw pixels and on HOG + colour features: validation accuracy and training
time, against scikit-learn.

    python bench/bench_linear.py                   # the models, engines, scikit-learn (~5 min on 2 cores)
    python bench/bench_linear.py --sweep           # also the small raw-pixel grid the defaults were chosen from
    python bench/bench_linear.py --sweep-hog       # also the grids and HOG variants on the features (~3 min)
    python bench/bench_linear.py --linearsvc       # also scikit-learn's LinearSVC on raw pixels (very slow)

Data: the shared JPEG archive (50,000 images), split by ``chainrule.data.train_val_split`` (stratified, seed 0)
into 45,000 training and 5,000 validation images (the issue's targets are for training on 50,000 and testing on
the official test set; validation and test accuracy agree within about 1.5 points).

Each measurement runs in its own subprocess, so its peak memory (ru_maxrss) is its own:

- ``svm`` / ``softmax``: the estimators with their default hyperparameters (chosen on this validation split with
  ``--sweep``; standardised pixels, SGD momentum 0.9, cosine schedule, batch 256, 1,500 steps = 8.5 epochs).
  Training time is all of ``fit``: validation of X, the standardisation statistics and the SGD loop.
- ``svm-flip`` / ``softmax-flip``: the same with ``augment="flip"`` (a random half of every batch mirrored).
- ``engines``: the same 300 training steps through the fused NumPy loss-and-gradient and through the autograd
  graph; time per step and the largest weight difference.
- ``sklearn-logreg``: LogisticRegression (lbfgs, default C) on the same standardised pixels, max_iter=100.
- ``sklearn-svc`` (only with ``--linearsvc``): LinearSVC on a random 5,000-image subset, max_iter=100. liblinear is
  slow on dense 3,072-feature data: on 10,000 images it ran over 6 minutes, on 5,000 over 5 minutes, without
  finishing, so it is not part of the default run (the issue's LinearSVC reference is for HOG features).
- ``hog-*``: the estimators with ``features="hog_color"`` (HOG of 8x8 cells + a 10-bin hue histogram: 154 features
  of each 32x32 image, standardised) on the images, with their defaults and with the recipes ``--sweep-hog`` found.
  fit() is split into its SGD loop (``train_time_``) and the rest (features of the 45,000 images, standardisation);
  predicting the 5,000 validation images includes their features.
- ``sklearn-hog``: scikit-learn's LinearSVC (default C=1, squared hinge, one-vs-rest, liblinear) and
  LogisticRegression (lbfgs, max_iter=1000) on the same features (``chainrule.features.HogColorFeatures``),
  standardised by StandardScaler; the training time is the solver's alone.
- ``sweep-hog`` (only with ``--sweep-hog``): the features are extracted once (train and validation, and the variants:
  CS231n's HOG that drops gradients pointing left, cells of 6 and 4 pixels) and the estimators are fitted on the
  cached feature matrices (``features=None``: the same standardisation and SGD as ``features="hog_color"``).

Results go to stdout and into the "Linear" section of bench/RESULTS_classifiers.md. The 2 cores are shared with
other work while this runs: times are noisy; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from bench_knn import DEFAULT_DATA, machine, peak_mib, write_results  # noqa: E402


def load_split(data: str):
    from chainrule.data import load_image_folder, train_val_split

    ds = load_image_folder(data)
    X_tr, y_tr, X_val, y_val = train_val_split(ds.X_train, ds.y_train, 5_000, seed=0)
    return np.ascontiguousarray(X_tr), y_tr, np.ascontiguousarray(X_val), y_val


def fit_and_score(name: str, params: dict, X_tr, y_tr, X_val, y_val):
    """Fit chainrule's LinearSVM or SoftmaxClassifier (random_state=0) and score it: (model, val, fit_s, predict_s)."""
    from chainrule.classifiers import LinearSVM, SoftmaxClassifier

    cls = {"svm": LinearSVM, "softmax": SoftmaxClassifier}[name]
    model = cls(random_state=0, **params)
    t0 = time.perf_counter()
    model.fit(X_tr, y_tr)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    val = model.score(X_val, y_val)
    return model, val, fit_s, time.perf_counter() - t0


def phase_model(name: str, data: str, params: dict) -> dict:
    X_tr, y_tr, X_val, y_val = load_split(data)
    model, val, fit_s, predict_s = fit_and_score(name, params, X_tr, y_tr, X_val, y_val)
    return {"model": repr(model), "val_acc": val, "train_acc_5k": model.score(X_tr[:5000], y_tr[:5000]),
            "fit_s": fit_s, "predict_5k_s": predict_s, "iterations": model.n_iter_,
            "final_loss": float(model.loss_history_[-100:].mean()), "peak_mib": peak_mib()}


def phase_engines(data: str) -> dict:
    from chainrule.classifiers import SoftmaxClassifier

    X_tr, y_tr, _, _ = load_split(data)
    out = {}
    weights = {}
    for engine in ("numpy", "autograd"):
        model = SoftmaxClassifier(iterations=300, engine=engine, random_state=0)
        model.fit(X_tr[::4500], y_tr[::4500])  # warm up (the split keeps class order: take a spread)
        t0 = time.perf_counter()
        model.fit(X_tr, y_tr)
        out[f"{engine}_fit_s"] = time.perf_counter() - t0
        weights[engine] = model.W_
    # Per-step time, without the preprocessing: time 300 more steps minus a 1-step fit.
    for engine in ("numpy", "autograd"):
        t = []
        for iters in (1, 301):
            model = SoftmaxClassifier(iterations=iters, engine=engine, random_state=0, preprocessing=None)
            t0 = time.perf_counter()
            model.fit(X_tr, y_tr)
            t.append(time.perf_counter() - t0)
        out[f"{engine}_ms_per_step"] = (t[1] - t[0]) / 300 * 1e3
    out["max_weight_diff"] = float(np.max(np.abs(weights["numpy"] - weights["autograd"])))
    out["max_weight"] = float(np.max(np.abs(weights["numpy"])))
    return out


def phase_sklearn(kind: str, data: str) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    X_tr, y_tr, X_val, y_val = load_split(data)
    X_tr = X_tr.reshape(len(X_tr), -1).astype(np.float32)
    X_val = X_val.reshape(len(X_val), -1).astype(np.float32)
    if kind == "svc":  # liblinear's dual coordinate descent on all 45,000 x 3,072 takes far too long here
        pick = np.random.default_rng(0).permutation(len(X_tr))[:5_000]  # the split keeps class order: sample
        X_tr, y_tr = X_tr[pick], y_tr[pick]
    t0 = time.perf_counter()
    scaler = StandardScaler().fit(X_tr)
    model = LogisticRegression(max_iter=100) if kind == "logreg" else LinearSVC(max_iter=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(X_tr), y_tr)
    fit_s = time.perf_counter() - t0
    return {"model": repr(model), "train_size": len(X_tr), "fit_s": fit_s,
            "val_acc": float(model.score(scaler.transform(X_val), y_val)), "peak_mib": peak_mib()}


def phase_hog(name: str, data: str, params: dict) -> dict:
    X_tr, y_tr, X_val, y_val = load_split(data)
    model, val, fit_s, predict_s = fit_and_score(name, {"features": "hog_color", **params}, X_tr, y_tr, X_val, y_val)
    return {"model": repr(model), "val_acc": val, "fit_s": fit_s, "train_s": model.train_time_,
            "inputs_s": model.fit_time_ - model.train_time_, "predict_5k_s": predict_s, "iterations": model.n_iter_,
            "n_inputs": int(model.W_.shape[0]), "peak_mib": peak_mib()}


def phase_sklearn_hog(data: str) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from chainrule.features import HogColorFeatures

    X_tr, y_tr, X_val, y_val = load_split(data)
    t0 = time.perf_counter()
    F_tr = HogColorFeatures().transform(X_tr)
    features_s = time.perf_counter() - t0
    F_val = HogColorFeatures().transform(X_val)
    scaler = StandardScaler().fit(F_tr)
    F_tr, F_val = scaler.transform(F_tr), scaler.transform(F_val)
    out = {"features_45k_s": features_s, "n_features": int(F_tr.shape[1])}
    for key, model in (("svc", LinearSVC()), ("logreg", LogisticRegression(max_iter=1000))):
        t0 = time.perf_counter()
        model.fit(F_tr, y_tr)
        fit_s = time.perf_counter() - t0
        out[key] = {"model": repr(model), "fit_s": fit_s, "val_acc": float(model.score(F_val, y_val)),
                    "n_iter": int(np.max(model.n_iter_))}
    out["peak_mib"] = peak_mib()
    return out


HOG_GRID = {
    "svm": {"lr": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2), "reg": (0.0, 1e-3, 1e-2, 0.1, 1.0)},
    "softmax": {"lr": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1), "reg": (0.0, 1e-4, 1e-3, 1e-2, 0.1)},
}
HOG_ITERATIONS = (1500, 6000)
HOG_VARIANTS = {  # name: (description, hog keyword arguments)
    "default": ("chainrule's HOG, 8x8 cells (all gradient directions)", {}),
    "cs231n": ("CS231n's HOG, 8x8 cells (drops gradients with gx < 0)", {"cs231n_compat": True}),
    "cell6": ("chainrule's HOG, 6x6 cells", {"cell": 6}),
    "cell4": ("chainrule's HOG, 4x4 cells", {"cell": 4}),
}
HOG_VARIANT_RUNS = [("svm", {}), ("softmax", {}), ("softmax", {"lr": 1e-2})]


def phase_sweep_hog(data: str) -> dict:
    from chainrule.classifiers import LinearSVM, SoftmaxClassifier
    from chainrule.features import color_histogram_hsv, hog

    X_tr, y_tr, X_val, y_val = load_split(data)
    classes = {"svm": LinearSVM, "softmax": SoftmaxClassifier}
    color_tr, color_val = color_histogram_hsv(X_tr), color_histogram_hsv(X_val)
    feats = {}
    for variant, (_, kwargs) in HOG_VARIANTS.items():  # extracted once; every fit below reuses them
        t0 = time.perf_counter()
        feats[variant] = (np.hstack([hog(X_tr, **kwargs), color_tr]), np.hstack([hog(X_val, **kwargs), color_val]))
        print(f"{variant}: {feats[variant][0].shape[1]} features, {time.perf_counter() - t0:.1f} s", file=sys.stderr,
              flush=True)
    F_tr, F_val = feats["default"]
    grid = []
    for name, axes in HOG_GRID.items():
        for iterations in HOG_ITERATIONS:
            for lr in axes["lr"]:
                for reg in axes["reg"]:
                    model = classes[name](lr=lr, reg=reg, iterations=iterations, random_state=0).fit(F_tr, y_tr)
                    grid.append({"model": name, "lr": lr, "reg": reg, "iterations": iterations,
                                 "val_acc": model.score(F_val, y_val), "train_s": model.train_time_})
                    print(json.dumps(grid[-1]), file=sys.stderr, flush=True)
    variants = []
    for variant, (F_tr, F_val) in feats.items():
        for name, params in HOG_VARIANT_RUNS:
            model = classes[name](random_state=0, **params).fit(F_tr, y_tr)
            variants.append({"variant": variant, "model": name, "params": params, "n_features": int(F_tr.shape[1]),
                             "val_acc": model.score(F_val, y_val)})
            print(json.dumps(variants[-1]), file=sys.stderr, flush=True)
    return {"grid": grid, "variants": variants}


SWEEP = {
    "svm": [dict(lr=lr, reg=reg, epochs=ep) for lr in (1e-4, 3e-4, 1e-3) for reg in (1e-3, 0.1, 1.0)
            for ep in (4, 8.5)],
    "softmax": [dict(lr=lr, reg=reg, epochs=ep) for lr in (1e-3, 3e-3, 1e-2) for reg in (1e-4, 1e-3, 0.01)
                for ep in (4, 8.5)],
}


def phase_sweep(name: str, data: str) -> dict:
    from chainrule.classifiers import LinearSVM, SoftmaxClassifier

    X_tr, y_tr, X_val, y_val = load_split(data)
    cls = {"svm": LinearSVM, "softmax": SoftmaxClassifier}[name]
    rows = []
    for params in SWEEP[name]:
        model = cls(random_state=0, **params).fit(X_tr, y_tr)
        rows.append({**params, "val_acc": model.score(X_val, y_val), "fit_s": model.fit_time_})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return {"rows": rows}


HOG_RUNS = [  # (model, tag, hyperparameters besides features="hog_color"): the defaults, then the recipes
    ("svm", "", {}),
    ("softmax", "", {}),
    ("softmax", "lr", {"lr": 1e-2}),
    ("svm", "cell4-flip", {"hog_cell": 4, "augment": "flip"}),
    ("softmax", "cell4-flip", {"hog_cell": 4, "augment": "flip", "lr": 1e-2}),
]


def hog_lines(results: dict) -> list[str]:
    """The markdown of the HOG + colour runs (and of the HOG sweep, when it ran)."""
    rows = [results[key] for key in results if key.startswith("hog-")]
    if not rows:
        return []
    lines = [
        "", "### HOG + colour features (`features=\"hog_color\"`)", "",
        "Goal (the issue, test accuracy): linear SVM on HOG + colour features >= 48% (CS231n's reference 48.1%, "
        "scikit-learn's LinearSVC 48.3%). fit = features of the 45,000 training images and standardisation, then "
        "the SGD loop; predicting the 5,000 validation images includes their features.",
        "",
        "| model | inputs | validation accuracy | fit: features + standardise | fit: SGD | predict 5k | peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| `{r['model']}` | {r['n_inputs']} | {r['val_acc']:.2%} | {r['inputs_s']:.1f} s | "
                     f"{r['train_s']:.1f} s ({r['iterations']} steps) | {r['predict_5k_s']:.1f} s | "
                     f"{r['peak_mib']:.0f} MiB |")
    sk = results.get("sklearn-hog")
    if sk is not None:
        for key in ("svc", "logreg"):
            r = sk[key]
            lines.append(f"| scikit-learn `{r['model']}` ({r['n_iter']} iterations) | {sk['n_features']} | "
                         f"{r['val_acc']:.2%} | {sk['features_45k_s']:.1f} s (chainrule's features) | "
                         f"{r['fit_s']:.1f} s | | {sk['peak_mib']:.0f} MiB |")
        ours = {r["model"]: r for r in rows}
        svm = ours.get("LinearSVM(features='hog_color', random_state=0)")
        soft = ours.get("SoftmaxClassifier(features='hog_color', lr=0.01, random_state=0)")
        if svm and soft:
            lines += ["", f"Training time on the same 154 standardised features, same run: scikit-learn's LinearSVC "
                      f"{sk['svc']['fit_s']:.1f} s / chainrule's LinearSVM {svm['train_s']:.2f} s = "
                      f"{sk['svc']['fit_s'] / svm['train_s']:.0f}x; LogisticRegression {sk['logreg']['fit_s']:.1f} s / "
                      f"SoftmaxClassifier {soft['train_s']:.2f} s = {sk['logreg']['fit_s'] / soft['train_s']:.0f}x."]
    sweep = results.get("sweep-hog")
    if sweep is None:
        return lines
    for name in HOG_GRID:
        for iterations in HOG_ITERATIONS:
            cells = [r for r in sweep["grid"] if r["model"] == name and r["iterations"] == iterations]
            regs = HOG_GRID[name]["reg"]
            lines += ["", f"Validation grid, {name}, HOG + colour (8x8 cells, 154 features), {iterations:,} steps of "
                      "batch 256 (SGD momentum 0.9, cosine, random_state=0); rows lr, columns reg:", "",
                      "| lr \\ reg | " + " | ".join(f"{g:g}" for g in regs) + " |",
                      "| --- |" + " --- |" * len(regs)]
            for lr in HOG_GRID[name]["lr"]:
                accs = {r["reg"]: r["val_acc"] for r in cells if r["lr"] == lr}
                lines.append(f"| {lr:g} | " + " | ".join(f"{accs[g]:.2%}" for g in regs) + " |")
    runs = [(name, params) for name, params in HOG_VARIANT_RUNS]
    lines += ["", "HOG variants (each + the 10-bin hue histogram), default hyperparameters unless shown:", "",
              "| features | count | " + " | ".join(f"{n} {json.dumps(p) if p else 'defaults'}" for n, p in runs)
              + " |", "| --- | --- |" + " --- |" * len(runs)]
    for variant, (description, _) in HOG_VARIANTS.items():
        cells = [r for r in sweep["variants"] if r["variant"] == variant]
        accs = [next(r["val_acc"] for r in cells if r["model"] == n and r["params"] == p) for n, p in runs]
        lines.append(f"| {description} | {cells[0]['n_features']} | " + " | ".join(f"{a:.2%}" for a in accs) + " |")
    return lines


def run_phase(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"phase {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the CIFAR-10 image-folder archive")
    parser.add_argument("--sweep", action="store_true", help="also run the validation grid for the defaults")
    parser.add_argument("--sweep-hog", action="store_true",
                        help="also run the validation grids and HOG variants on HOG + colour features")
    parser.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn comparison")
    parser.add_argument("--linearsvc", action="store_true",
                        help="also time scikit-learn's LinearSVC on 5,000 images (slow: over 5 minutes here)")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS_classifiers.md")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, rest = args.worker[0], args.worker[1:]
        if kind in ("svm", "softmax"):
            result = phase_model(kind, args.data, json.loads(rest[0]) if rest else {})
        elif kind == "engines":
            result = phase_engines(args.data)
        elif kind in ("hog-svm", "hog-softmax"):
            result = phase_hog(kind.split("-", 1)[1], args.data, json.loads(rest[0]) if rest else {})
        elif kind == "sklearn-hog":
            result = phase_sklearn_hog(args.data)
        elif kind == "sweep-hog":
            result = phase_sweep_hog(args.data)
        elif kind.startswith("sklearn-"):
            result = phase_sklearn(kind.split("-", 1)[1], args.data)
        else:
            result = phase_sweep(kind.split("-", 1)[1], args.data)
        print(json.dumps(result))
        return

    load_before = os.getloadavg()
    flip = json.dumps({"augment": "flip"})
    phases = [("svm", ["svm"]), ("softmax", ["softmax"]), ("svm-flip", ["svm", flip]),
              ("softmax-flip", ["softmax", flip]), ("engines", ["engines"])]
    phases += [(f"hog-{name}{'-' + tag if tag else ''}", [f"hog-{name}", json.dumps(params)])
               for name, tag, params in HOG_RUNS]
    if not args.no_sklearn:
        phases += [("sklearn-logreg", ["sklearn-logreg"]), ("sklearn-hog", ["sklearn-hog"])]
    if args.linearsvc:
        phases += [("sklearn-svc", ["sklearn-svc"])]
    if args.sweep:
        phases += [("sweep-svm", ["sweep-svm"]), ("sweep-softmax", ["sweep-softmax"])]
    if args.sweep_hog:
        phases += [("sweep-hog", ["sweep-hog"])]
    results = {}
    for name, phase in phases:
        print(f"running {name} ...", flush=True)
        results[name] = run_phase(phase)
        print(json.dumps(results[name]), flush=True)
    load_after = os.getloadavg()

    svm, soft, eng = results["svm"], results["softmax"], results["engines"]
    lines = [
        "## Linear classifiers: raw pixels and HOG + colour features (bench/bench_linear.py)",
        "",
        f"{datetime.date.today().isoformat()}; {machine()}. Load average {load_before[0]:.1f} before / "
        f"{load_after[0]:.1f} after: the 2 cores were shared with other engineers' jobs, so times are noisy.",
        "",
        "CIFAR-10 JPEG archive, stratified split (seed 0): 45,000 train / 5,000 validation. Training time is all "
        "of fit() (input checks, standardisation, SGD).",
        "",
        "| model | validation accuracy | goal (test) | training time | goal | peak RSS |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| `{svm['model']}` | {svm['val_acc']:.2%} | >= 39% | {svm['fit_s']:.1f} s ({svm['iterations']} steps) | "
        f"<= 15 s | {svm['peak_mib']:.0f} MiB |",
        f"| `{soft['model']}` | {soft['val_acc']:.2%} | >= 41% | {soft['fit_s']:.1f} s ({soft['iterations']} steps) "
        f"| <= 20 s | {soft['peak_mib']:.0f} MiB |",
    ]
    for key, goal in (("svm-flip", "| >= 39% |"), ("softmax-flip", "| >= 41% |")):
        r = results[key]
        lines.append(f"| `{r['model']}` | {r['val_acc']:.2%} {goal} {r['fit_s']:.1f} s ({r['iterations']} steps) | "
                     f"{'<= 15 s' if key.startswith('svm') else '<= 20 s'} | {r['peak_mib']:.0f} MiB |")
    for key in ("sklearn-logreg", "sklearn-svc"):
        if key in results:
            r = results[key]
            lines.append(f"| scikit-learn `{r['model']}` on {r['train_size']:,} train | {r['val_acc']:.2%} | | "
                         f"{r['fit_s']:.1f} s | | {r['peak_mib']:.0f} MiB |")
    lines += [
        "",
        f"Engines (Softmax, 300 steps of batch 256): fused NumPy loss-and-gradient {eng['numpy_ms_per_step']:.2f} "
        f"ms/step, autograd graph {eng['autograd_ms_per_step']:.2f} ms/step "
        f"({eng['autograd_ms_per_step'] / eng['numpy_ms_per_step']:.2f}x); largest weight difference after 300 "
        f"steps {eng['max_weight_diff']:.1e} (weights up to {eng['max_weight']:.2f}).",
    ]
    for name in ("svm", "softmax"):
        key = f"sweep-{name}"
        if key in results:
            lines += ["", f"Validation grid for {name} (random_state=0, batch 256, SGD momentum 0.9, cosine):", "",
                      "| lr | reg | epochs | validation accuracy | fit time |", "| --- | --- | --- | --- | --- |"]
            lines += [f"| {r['lr']:g} | {r['reg']:g} | {r['epochs']:g} | {r['val_acc']:.2%} | {r['fit_s']:.1f} s |"
                      for r in results[key]["rows"]]
    lines += hog_lines(results)
    text = "\n".join(lines)
    print("\n" + text)
    if not args.no_write:
        write_results("linear", text)


if __name__ == "__main__":
    main()
