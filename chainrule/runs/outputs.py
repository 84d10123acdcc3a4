"""What a finished (or stopped) run writes besides checkpoints and metrics: plots, summary.json, report.html."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from chainrule.train import confusion_matrix, per_class_accuracy, plots
from chainrule.train.history import History
from chainrule.train.report import html_table, key_value_table, write_report
from chainrule.train.runfolder import RunFolder

logger = logging.getLogger("chainrule")


def confusion_text(cm: np.ndarray, classes: Sequence[str]) -> str:
    """The confusion matrix as aligned text (rows: true class, columns: predicted)."""
    names = [str(c) for c in classes]
    width = max(max(map(len, names)), len(str(int(cm.max()))) if cm.size else 1, 4)
    head = " " * (width + 2) + " ".join(f"{n[:width]:>{width}}" for n in names) + "   <- predicted"
    rows = [f"{names[i][:width]:>{width}}  " + " ".join(f"{int(v):>{width}}" for v in cm[i])
            for i in range(len(names))]
    return "\n".join([head, *rows])


def history_plots(run: RunFolder, history: History, best_epoch: int | None) -> list[tuple[str, Path]]:
    """Loss curve, accuracy per epoch, learning-rate schedule and (with diagnostics) the update/weight ratios per
    epoch, from a trainer's history."""
    out = []
    if history.num_steps:
        steps = history.column("step")
        epoch_ends = [int(e["step"]) for e in history.epochs]
        p = run.plots_dir / "loss.png"
        plots.plot_loss(steps, history.column("loss"), p, epoch_steps=epoch_ends)
        out.append(("Training loss per step (faint) and smoothed", p))
        p = run.plots_dir / "lr.png"
        plots.plot_lr(steps, history.column("lr"), p)
        out.append(("Learning rate per step", p))
    if history.epochs:
        epochs = history.epoch_column("epoch")
        val = history.epoch_column("val_acc")
        p = run.plots_dir / "accuracy.png"
        plots.plot_accuracy(epochs, history.epoch_column("train_acc"), val if np.isfinite(val).any() else None, p,
                            best_epoch=best_epoch)
        out.append(("Train and validation accuracy per epoch", p))
        ratios = _update_ratios(history)
        if ratios:
            p = run.plots_dir / "update_ratio.png"
            plots.plot_update_ratios([e["epoch"] for e in history.epochs], ratios, p)
            out.append(("Update/weight ratio of each weight matrix per epoch (~1e-3 is healthy)", p))
    return out


def _update_ratios(history: History) -> dict[str, list[float | None]]:
    """{parameter name: update ratio per epoch} for the weight matrices (2-D parameters) of a diagnosed run."""
    ratios: dict[str, list[float | None]] = {}
    for i, e in enumerate(history.epochs):
        for row in (e.get("diagnostics") or {}).get("parameters", []):
            if len(row.get("shape", [])) >= 2:
                ratios.setdefault(row["name"], [None] * len(history.epochs))[i] = row.get("update_ratio")
    return {k: v for k, v in ratios.items() if any(r is not None and r > 0 for r in v)}


def _templates(trained: Any) -> tuple[np.ndarray, list[str] | None, str] | None:
    """The learned weights that can be drawn as images: (W (D, K), titles, title), or None.

    A linear model's rows of W are its class templates; an MLP's first layer holds one image-sized weight vector
    per hidden unit. Only raw-pixel image models have weights that look like images
    (``chainrule.runs.Trained.first_layer_weights``).
    """
    weights = trained.first_layer_weights() if trained.input["kind"] == "image" else None
    if weights is None:
        return None
    W, linear = weights  # (D, units): the first layer
    if linear:
        return W, [str(c) for c in trained.classes], "Learned weights: one template per class"
    if trained.weight_image_shape() != tuple(trained.input["shape"]):
        return W, None, f"First-layer filters ({min(W.shape[1], 64)} of {W.shape[1]})"
    return W, None, f"First-layer weights ({min(W.shape[1], 64)} of {W.shape[1]} hidden units)"


def model_plots(run: RunFolder, trained: Any, X_val_raw: np.ndarray, y_val: np.ndarray, y_pred: np.ndarray,
                X_train_raw: np.ndarray | None = None, y_train: np.ndarray | None = None,
                title_suffix: str = "") -> list[tuple[str, Path]]:
    """Confusion matrix, accuracy per class, validation images with their labels (image data), learned weights
    as images (raw-pixel models), decision boundary (2-D inputs); ``trained`` is a
    ``chainrule.runs.Trained``."""
    out = []
    classes = trained.classes
    cm = confusion_matrix(y_val, y_pred, len(classes))
    p = run.plots_dir / "confusion.png"
    plots.plot_confusion(cm, classes, p, title="Confusion matrix (validation)" + title_suffix)
    out.append(("Confusion matrix on the validation split (rows: true class)", p))
    p = run.plots_dir / "per_class.png"
    plots.plot_per_class(per_class_accuracy(cm, classes), p, title="Accuracy per class (validation)" + title_suffix,
                         overall=float(np.trace(cm) / max(cm.sum(), 1)))
    out.append(("Validation accuracy of each class", p))
    if trained.input["kind"] == "image" and np.asarray(X_val_raw).ndim == 4 and len(y_val):
        p = run.plots_dir / "examples.png"
        wrong = int(np.sum(np.asarray(y_val) != np.asarray(y_pred)))
        plots.plot_examples(X_val_raw, y_val, y_pred, classes, p, max_value=trained.input.get("max_value"))
        out.append((f"Validation images, true / predicted label: {wrong} of {len(y_val)} misclassified, mistakes "
                    "shown first (red)", p))
    templates = _templates(trained)
    if templates is not None:
        W, titles, title = templates
        p = run.plots_dir / "weights.png"
        plots.plot_weights(W, trained.weight_image_shape(), p, titles=titles, title=title)
        out.append(("Learned weights shown as images" + (" (class templates)" if titles else
                                                         " (first layer)"), p))
    maps = _activation_maps(trained, X_val_raw)
    if maps is not None:
        from chainrule.train.activation_plots import plot_activation_maps

        images, layers, names = maps
        p = run.plots_dir / "activations.png"
        plot_activation_maps(images, layers, p, names=names, max_value=trained.input.get("max_value"))
        out.append(("A few validation images and their activation maps after each block (first channels)", p))
    if trained.input["kind"] == "vector" and trained.input["shape"] == [2]:
        X = X_train_raw if X_train_raw is not None else X_val_raw
        y = y_train if y_train is not None else y_val
        p = run.plots_dir / "decision_boundary.png"
        plots.plot_decision_boundary(trained.predict, X, y, p, classes=classes,
                                     title=f"Decision boundary ({trained.describe()})")
        out.append(("Decision boundary over the input plane (training points)", p))
    return out


def _activation_maps(trained: Any, X_val_raw: np.ndarray, n: int = 4
                     ) -> tuple[np.ndarray, list[np.ndarray], list[str]] | None:
    """(images (n, H, W, C), maps per block, block names) for the first ``n`` validation images of a model that
    shows its activation maps (the estimator's ``activation_maps``, a conv net's), else None."""
    est = trained.estimator
    X = np.asarray(X_val_raw)
    if not hasattr(est, "activation_maps") or trained.input["kind"] != "image" or X.ndim != 4 or not len(X):
        return None
    layers = est.activation_maps(X[:n])
    names = [f"block {i}" for i in range(1, len(layers) + 1)]
    if getattr(est.model_, "whiten", None) is not None:
        names = ["whitening"] + names[:-1]
    return X[:n], layers, names


# The report's pictures in reading order (by file name; others follow in the order given).
_FIGURE_ORDER = ("accuracy", "loss", "confusion", "per_class", "examples", "weights", "activations", "knn_k",
                 "decision_boundary", "update_ratio", "lr")


def order_figures(figures: Sequence[tuple[str, Path]]) -> list[tuple[str, Path]]:
    rank = {name: i for i, name in enumerate(_FIGURE_ORDER)}
    return [f for _, f in sorted(enumerate(figures), key=lambda t: (rank.get(Path(t[1][1]).stem, len(rank)), t[0]))]


def _headline(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The few numbers a reader looks for first, as (label, value) pairs."""
    out = []
    if summary.get("val_acc") is not None:
        out.append(("validation accuracy", f"{100 * summary['val_acc']:.2f}%"))
    if summary.get("best_epoch"):
        out.append(("best epoch", f"{summary['best_epoch']} of {summary.get('epochs_completed')}"))
    if summary.get("knn_k"):
        out.append(("k (chosen on validation)" if summary.get("val_acc_by_k") else "k", str(summary["knn_k"])))
    if summary.get("num_train") is not None:
        out.append(("training / validation samples", f"{summary['num_train']:,} / {summary.get('num_val', 0):,}"))
    if summary.get("train_time_s") is not None:
        out.append(("training time", f"{summary['train_time_s']:.3g} s"))
    if summary.get("num_parameters"):
        out.append(("parameters", f"{summary['num_parameters']:,}"))
    return out


def write_run_report(run: RunFolder, summary: Mapping[str, Any], config: Mapping[str, Any],
                     figures: Sequence[tuple[str, Path]], history: History | None = None,
                     extra_sections: Sequence[tuple[str, str]] = ()) -> Path:
    """``report.html``: the headline numbers, then every picture (curves, confusion matrix, per-class accuracy,
    example images, learned templates, ...), then the tables (summary, per class, epochs, diagnostics, config)."""
    keys = ("model", "description", "data", "dataset", "num_train", "num_val", "num_features", "num_parameters", "epochs_completed",
            "steps", "best_epoch", "best_val_acc", "model_epoch", "val_acc", "final_train_acc", "final_val_acc",
            "knn_k",
            "train_time_s", "train_samples_per_s", "predict_time_s", "predict_samples_per_s", "wall_time_s",
            "stop_reason")
    sections = [("Summary", key_value_table({k: summary.get(k) for k in keys}))]
    sections.extend(extra_sections)
    per_class = summary.get("per_class_val_acc") or {}
    if per_class:
        sections.append(("Validation accuracy per class",
                         html_table([{"class": k, "accuracy": v} for k, v in per_class.items()])))
    if history is not None and history.epochs:
        cols = ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time_s", "samples_per_s"]
        rows = [{c: e.get(c) for c in cols} for e in history.epochs[-30:]]
        title = "Epochs" + (f" (last 30 of {len(history.epochs)})" if len(history.epochs) > 30 else "")
        sections.append((title, html_table(rows, cols)))
        diag = history.epochs[-1].get("diagnostics")
        if diag:
            sections.append((f"Diagnostics (epoch {history.epochs[-1]['epoch']}: update/weight ratio is the mean "
                             "over the epoch's steps, ~1e-3 is healthy)",
                             html_table(diag["parameters"], ["name", "shape", "weight_norm", "grad_norm",
                                                             "update_ratio", "update_ratio_max", "steps_measured"])
                             + (html_table(diag["activations"]) if diag.get("activations") else "")))
    sections.append(("Configuration", key_value_table(
        {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in config.items()})))
    name = Path(run.path).name
    return write_report(run.report_path, f"chainrule run {name}", subtitle=f"{summary.get('model')} on "
                        f"{summary.get('data')}", sections=sections, plots=order_figures(figures),
                        headline=_headline(summary))
