"""PNG plots of a run (matplotlib, Agg canvas; pyplot's global state is never touched).

Each function draws one figure with labelled axes and a title and saves it to ``path`` (PNG, 100 dpi):

    plot_loss(steps, losses, path)                 per-step loss, raw (faint) and smoothed (bold)
    plot_accuracy(epochs, train_acc, val_acc, path)  train / validation accuracy per epoch
    plot_lr(steps, lrs, path)                      the learning rate at every step
    plot_confusion(cm, classes, path)              confusion matrix (rows: true class, columns: predicted)
    plot_weights(W, image_shape, path, ...)        columns of W (D, K) shown as K images ("one template per class")
    plot_decision_boundary(predict, X, y, path)    predicted class over the plane, for 2-D inputs
    plot_comparison(names, accuracies, path, ...)  accuracy bars of several models (chainrule compare)

Needs matplotlib (``pip install 'chainrule[plots]'``).
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Sequence

import numpy as np

_DPI = 100


def _figure(width: float = 6.4, height: float = 4.0) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'chainrule[plots]'") from e
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> str:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=_DPI)
    return str(path)


def smooth(values: np.ndarray, beta: float | None = None) -> np.ndarray:
    """Bias-corrected exponential moving average (TensorBoard's smoothing); NaNs are skipped.

    ``beta`` defaults to ``1 - 50 / n`` clipped to [0, 0.98]: about 50 effective points across the curve.
    """
    v = np.asarray(values, dtype=np.float64)
    if beta is None:
        beta = float(np.clip(1.0 - 50.0 / max(len(v), 1), 0.0, 0.98))
    out = np.empty_like(v)
    avg, weight = 0.0, 0.0
    for i, x in enumerate(v):  # a scalar recurrence over at most a few 100k steps: cheap
        if math.isfinite(x):
            avg = beta * avg + (1 - beta) * x
            weight = beta * weight + (1 - beta)
        out[i] = avg / weight if weight > 0 else math.nan
    return out


def plot_loss(steps: Sequence[float], losses: Sequence[float], path: str | os.PathLike,
              title: str = "Training loss", epoch_steps: Sequence[int] = ()) -> str:
    """Per-step training loss, raw and smoothed; a log y-axis when the loss spans more than 20x."""
    steps, losses = np.asarray(steps, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    fig = _figure()
    ax = fig.add_subplot()
    if len(steps):
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="per step")
        ax.plot(steps, smooth(losses), color="tab:blue", linewidth=2.0, label="smoothed")
        finite = losses[np.isfinite(losses) & (losses > 0)]
        if len(finite) and finite.max() / max(finite.min(), 1e-12) > 20:
            ax.set_yscale("log")
    for s in epoch_steps:
        ax.axvline(s, color="0.85", linewidth=0.8, zorder=0)
    ax.set_xlabel("step (minibatch update)")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_accuracy(epochs: Sequence[float], train_acc: Sequence[float], val_acc: Sequence[float] | None,
                  path: str | os.PathLike, title: str = "Accuracy per epoch", best_epoch: int | None = None) -> str:
    """Train and validation accuracy (in %) per epoch, with the best validation epoch marked."""
    epochs = np.asarray(epochs, dtype=np.float64)
    fig = _figure()
    ax = fig.add_subplot()
    marker = "o" if len(epochs) <= 30 else None
    ax.plot(epochs, 100 * np.asarray(train_acc, dtype=np.float64), marker=marker, label="train")
    if val_acc is not None and len(val_acc):
        ax.plot(epochs, 100 * np.asarray(val_acc, dtype=np.float64), marker=marker, label="validation")
        if best_epoch:
            ax.axvline(best_epoch, color="tab:green", linestyle=":", linewidth=1.2,
                       label=f"best validation (epoch {best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    if len(epochs) and len(epochs) <= 20:
        ax.set_xticks(epochs)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_lr(steps: Sequence[float], lrs: Sequence[float], path: str | os.PathLike,
            title: str = "Learning-rate schedule") -> str:
    fig = _figure(6.4, 3.4)
    ax = fig.add_subplot()
    ax.plot(np.asarray(steps), np.asarray(lrs), color="tab:orange")
    ax.set_xlabel("step (minibatch update)")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts: row i = true class i, column j = predicted class j."""
    idx = np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: str | os.PathLike,
                   title: str = "Confusion matrix (validation)") -> str:
    """Rows are true classes, columns predictions; colour is the row-normalised rate, cells show counts."""
    cm = np.asarray(cm)
    c = len(classes)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(max(4.5, 0.55 * c + 2.0), 12.0)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("fraction of the true class")
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xticklabels(classes, rotation=45 if max(map(len, classes), default=0) > 2 else 0, ha="right"
                       if max(map(len, classes), default=0) > 2 else "center")
    ax.set_yticklabels(classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title}: accuracy {100 * acc:.1f}%")
    if c <= 20:
        fontsize = 9 if c <= 10 else 7
        for i in range(c):
            for j in range(c):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=fontsize,
                            color="white" if rates[i, j] > 0.5 else "black")
    return _save(fig, path)


def plot_weights(W: np.ndarray, image_shape: Sequence[int], path: str | os.PathLike,
                 titles: Sequence[str] | None = None, title: str = "Learned weights",
                 max_images: int = 64) -> str:
    """Show the columns of W (D, K) (D = H*W*C) as K images, each rescaled to its own min..max.

    For a linear classifier these are the C class templates; for an MLP, the first layer's hidden units.
    """
    W = np.asarray(W, dtype=np.float64)
    h, w, ch = (list(image_shape) + [1])[:3] if len(image_shape) == 2 else list(image_shape)
    if W.shape[0] != h * w * ch:
        raise ValueError(f"plot_weights: W has {W.shape[0]} rows but images of shape {tuple(image_shape)} have "
                         f"{h * w * ch} pixels")
    k = min(W.shape[1], max_images)
    cols = k if k <= 10 else int(math.ceil(math.sqrt(k)))
    rows = int(math.ceil(k / cols))
    fig = _figure(min(1.4 * cols, 12.0), min(1.4 * rows, 12.0) + 0.5)
    for i in range(k):
        ax = fig.add_subplot(rows, cols, i + 1)
        img = W[:, i].reshape(h, w, ch)
        lo, hi = img.min(), img.max()
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        if ch == 1:
            ax.imshow(img[:, :, 0], cmap="gray", interpolation="nearest")
        else:
            ax.imshow(img[:, :, :3], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None and i < len(titles):
            ax.set_title(str(titles[i]), fontsize=9)
    fig.suptitle(title)
    return _save(fig, path)


def plot_decision_boundary(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray,
                           path: str | os.PathLike, classes: Sequence[str] | None = None,
                           title: str = "Decision boundary", resolution: int = 300) -> str:
    """Colour the plane by ``predict(points (M, 2)) -> labels (M,)``; overlay the samples X (N, 2) by label y."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2-D inputs (N, 2), got shape {X.shape}")
    pad = 0.1 * max(np.ptp(X[:, 0]), np.ptp(X[:, 1]), 1e-3)
    xs = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, resolution)
    ys = np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    z = np.asarray(predict(grid)).reshape(gx.shape)
    num_classes = int(max(z.max(), np.max(y))) + 1
    from matplotlib.colors import ListedColormap

    colors = [f"C{i % 10}" for i in range(num_classes)]
    cmap = ListedColormap(colors)
    fig = _figure(5.6, 5.0)
    ax = fig.add_subplot()
    ax.contourf(gx, gy, z, levels=np.arange(num_classes + 1) - 0.5, cmap=cmap, alpha=0.3)
    for c in range(num_classes):
        m = np.asarray(y) == c
        label = classes[c] if classes is not None and c < len(classes) else str(c)
        ax.scatter(X[m, 0], X[m, 1], s=14, color=colors[c], edgecolors="black", linewidths=0.3,
                   label=f"class {label}")
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_comparison(names: Sequence[str], accuracies: Sequence[float], path: str | os.PathLike,
                    train_times: Sequence[float] | None = None, title: str = "Validation accuracy by model") -> str:
    """Horizontal bars of accuracy (%) per model, annotated with the value (and training time)."""
    acc = 100 * np.asarray(accuracies, dtype=np.float64)
    fig = _figure(7.0, 0.55 * len(names) + 1.6)
    ax = fig.add_subplot()
    pos = np.arange(len(names))[::-1]
    ax.barh(pos, acc, color=[f"C{i % 10}" for i in range(len(names))])
    ax.set_yticks(pos)
    ax.set_yticklabels(names)
    for i, (p, a) in enumerate(zip(pos, acc)):
        note = f"{a:.1f}%"
        if train_times is not None:
            note += f"  ({train_times[i]:.2g} s train)"
        ax.text(min(a + 1, 101), p, note, va="center", fontsize=9)
    ax.set_xlim(0, 125)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
