"""What a finished (or stopped) run writes besides checkpoints and metrics: plots, summary.json, report.html."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from chainrule.train import plots
from chainrule.train.history import History
from chainrule.train.report import html_table, key_value_table, write_report
from chainrule.train.runfolder import RunFolder

logger = logging.getLogger("chainrule")


def per_class_accuracy(cm: np.ndarray, classes: Sequence[str]) -> dict[str, float | None]:
    totals = cm.sum(axis=1)
    return {str(c): (float(cm[i, i] / totals[i]) if totals[i] else None) for i, c in enumerate(classes)}


def confusion_text(cm: np.ndarray, classes: Sequence[str]) -> str:
    """The confusion matrix as aligned text (rows: true class, columns: predicted)."""
    names = [str(c) for c in classes]
    width = max(max(map(len, names)), len(str(int(cm.max()))) if cm.size else 1, 4)
    head = " " * (width + 2) + " ".join(f"{n[:width]:>{width}}" for n in names) + "   <- predicted"
    rows = [f"{names[i][:width]:>{width}}  " + " ".join(f"{int(v):>{width}}" for v in cm[i])
            for i in range(len(names))]
    return "\n".join([head, *rows])


def history_plots(run: RunFolder, history: History, best_epoch: int | None) -> list[tuple[str, Path]]:
    """Loss curve, accuracy per epoch and learning-rate schedule from a trainer's history."""
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
    return out


def model_plots(run: RunFolder, pipe: Any, X_val_raw: np.ndarray, y_val: np.ndarray, y_pred: np.ndarray,
                X_train_raw: np.ndarray | None = None, y_train: np.ndarray | None = None,
                title_suffix: str = "") -> list[tuple[str, Path]]:
    """Confusion matrix, learned weights as images (raw-pixel nn models), decision boundary (2-D inputs)."""
    out = []
    classes = pipe.classes
    cm = plots.confusion_matrix(y_val, y_pred, len(classes))
    p = run.plots_dir / "confusion.png"
    plots.plot_confusion(cm, classes, p, title="Confusion matrix (validation)" + title_suffix)
    out.append(("Confusion matrix on the validation split", p))
    if (not pipe.is_knn and pipe.input["kind"] == "image" and pipe.config["features"] == "raw"):
        W = pipe.model[0].weight.data  # (D, units): first layer
        linear = not pipe.config["hidden"]
        p = run.plots_dir / "weights.png"
        plots.plot_weights(W, pipe.input["shape"], p, titles=list(classes) if linear else None,
                           title="Learned weights: one template per class" if linear
                           else f"First-layer weights ({min(W.shape[1], 64)} of {W.shape[1]} hidden units)")
        out.append(("Learned weights shown as images", p))
    if pipe.input["kind"] == "vector" and pipe.input["shape"] == [2]:
        X = X_train_raw if X_train_raw is not None else X_val_raw
        y = y_train if y_train is not None else y_val
        p = run.plots_dir / "decision_boundary.png"
        c = pipe.config
        hidden = ",".join(map(str, c["hidden"])) or "none"
        desc = f"kNN, k={pipe.knn_k}" if pipe.is_knn else f"{c['model']}, hidden {hidden}, reg {c['reg']:g}"
        plots.plot_decision_boundary(pipe.predict, X, y, p, classes=classes, title=f"Decision boundary ({desc})")
        out.append(("Decision boundary over the input plane (training points)", p))
    return out


def write_run_report(run: RunFolder, summary: Mapping[str, Any], config: Mapping[str, Any],
                     figures: Sequence[tuple[str, Path]], history: History | None = None,
                     extra_sections: Sequence[tuple[str, str]] = ()) -> Path:
    keys = ("model", "data", "dataset", "num_train", "num_val", "num_features", "num_parameters", "epochs_completed",
            "steps", "best_epoch", "best_val_acc", "val_acc", "final_train_acc", "final_val_acc", "knn_k",
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
            sections.append(("Diagnostics (last epoch; update/weight ratio ~1e-3 is healthy)",
                             html_table(diag["parameters"], ["name", "shape", "weight_norm", "grad_norm",
                                                             "update_ratio"])
                             + (html_table(diag["activations"]) if diag.get("activations") else "")))
    sections.append(("Configuration", key_value_table(
        {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in config.items()})))
    name = Path(run.path).name
    return write_report(run.report_path, f"chainrule run {name}", subtitle=f"{summary.get('model')} on "
                        f"{summary.get('data')}", sections=sections, plots=figures)
