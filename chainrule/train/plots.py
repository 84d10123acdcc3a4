"""PNG plots of a run (matplotlib, Agg canvas; pyplot's global state is never touched).

Each function draws one figure with labelled axes and a title and saves it to ``path`` (PNG, 100 dpi):

    plot_loss(steps, losses, path)                 per-step loss, raw (faint) and smoothed (bold)
    plot_accuracy(epochs, train_acc, val_acc, path)  train / validation accuracy per epoch
    plot_lr(steps, lrs, path)                      the learning rate at every step
    plot_confusion(cm, classes, path)              confusion matrix (rows: true class, columns: predicted)
    plot_per_class(accuracies, path)               accuracy of each class as bars
    plot_examples(images, y_true, y_pred, classes, path)  a grid of images with true / predicted labels,
                                                   mistakes first
    plot_weights(W, image_shape, path, ...)        columns of W (D, K) shown as K images ("one template per class")
    plot_update_ratios(epochs, ratios, path)       the update/weight ratio of each parameter per epoch (log scale)
    plot_decision_boundary(predict, X, y, path)    predicted class over the plane, for 2-D inputs
    plot_comparison(names, accuracies, path, ...)  accuracy bars of several models (chainrule compare)

Text from data (class names) is drawn literally: ``$`` never switches matplotlib into math mode.

Needs matplotlib (``pip install 'chainrule[plots]'``).
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Sequence

import numpy as np

_DPI = 100


def new_figure(width: float = 6.4, height: float = 4.0) -> Any:
    """A matplotlib Figure of ``width`` x ``height`` inches on the Agg canvas (no display needed)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'chainrule[plots]'") from e
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _plain(text: Any) -> str:
    """``text`` as matplotlib should draw it literally (a "$" would start mathtext, which can even fail)."""
    return str(text).replace("$", r"\$")


def save_figure(fig: Any, path: str | os.PathLike) -> str:
    """Write ``fig`` as a PNG to ``path``, atomically; returns the path."""
    from chainrule.utils.atomic import atomic_open

    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=_DPI)
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
    fig = new_figure()
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
    return save_figure(fig, path)


def plot_accuracy(epochs: Sequence[float], train_acc: Sequence[float], val_acc: Sequence[float] | None,
                  path: str | os.PathLike, title: str = "Accuracy per epoch", best_epoch: int | None = None) -> str:
    """Train and validation accuracy (in %) per epoch, with the best validation epoch marked."""
    epochs = np.asarray(epochs, dtype=np.float64)
    fig = new_figure()
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
    return save_figure(fig, path)


def plot_lr(steps: Sequence[float], lrs: Sequence[float], path: str | os.PathLike,
            title: str = "Learning-rate schedule") -> str:
    fig = new_figure(6.4, 3.4)
    ax = fig.add_subplot()
    ax.plot(np.asarray(steps), np.asarray(lrs), color="tab:orange")
    ax.set_xlabel("step (minibatch update)")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: str | os.PathLike,
                   title: str = "Confusion matrix (validation)") -> str:
    """Rows are true classes, columns predictions; colour is the row-normalised rate, cells show counts."""
    cm = np.asarray(cm)
    c = len(classes)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(max(4.5, 0.55 * c + 2.0), 12.0)
    fig = new_figure(size + 1.0, size)
    ax = fig.add_subplot()
    im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("fraction of the true class")
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    long = max(map(len, map(str, classes)), default=0) > 2
    ax.set_xticklabels([_plain(c) for c in classes], rotation=45 if long else 0, ha="right" if long else "center")
    ax.set_yticklabels([_plain(c) for c in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(_plain(f"{title}: accuracy {100 * acc:.1f}%"))
    if c <= 20:
        fontsize = 9 if c <= 10 else 7
        for i in range(c):
            for j in range(c):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=fontsize,
                            color="white" if rates[i, j] > 0.5 else "black")
    return save_figure(fig, path)


def _image_grid(tiles: np.ndarray, path: str | os.PathLike, title: str, cols: int, tile_inches: float,
                above: Sequence[str] | None = None, below: Sequence[str] | None = None,
                colors: Sequence[str] | None = None, frames: Sequence[str | None] | None = None) -> str:
    """Draw tiles (k, h, w, 3) with values in [0, 1] as one mosaic in a single axes (one image, not k subplots:
    fast), with optional text above / below each tile (in ``colors``) and coloured ``frames``."""
    from matplotlib.patches import Rectangle

    k, h, w = tiles.shape[:3]
    rows = max(int(math.ceil(k / cols)), 1)
    text_rows = (above is not None) + (below is not None)
    gap_y = max(h // 4, 1) + int(math.ceil(0.45 * h)) * text_rows
    gap_x = max(w // 4, 1)
    mosaic = np.ones((rows * (h + gap_y), cols * (w + gap_x), 3))
    top = int(math.ceil(0.45 * h)) if above is not None else 0
    for i in range(k):
        r, c = divmod(i, cols)
        y0, x0 = r * (h + gap_y) + top, c * (w + gap_x)
        mosaic[y0:y0 + h, x0:x0 + w] = tiles[i]
    width = min(tile_inches * cols * (1 + gap_x / w), 12.0)
    height = width * mosaic.shape[0] / mosaic.shape[1]
    title_in = 0.45
    fig = new_figure(width + 0.2, height + title_in)
    ax = fig.add_axes((0.1 / (width + 0.2), 0.0, width / (width + 0.2), height / (height + title_in)))
    ax.imshow(mosaic, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    size = 8 if cols > 8 else 9
    for i in range(k):
        r, c = divmod(i, cols)
        y0, x0 = r * (h + gap_y) + top, c * (w + gap_x)
        color = colors[i] if colors is not None else "0.2"
        if above is not None:
            ax.text(x0 + w / 2 - 0.5, y0 - 1, _plain(above[i])[:18], ha="center", va="bottom", fontsize=size,
                    color=color)
        if below is not None:
            ax.text(x0 + w / 2 - 0.5, y0 + h, _plain(below[i])[:18], ha="center", va="top", fontsize=size,
                    color=color)
        if frames is not None and frames[i]:
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), w, h, fill=False, edgecolor=frames[i], linewidth=2.0))
    fig.suptitle(_plain(title), fontsize=10, y=1.0 - 0.08 / (height + title_in), va="top")
    fig.savefig(path, format="png", dpi=_DPI)
    return str(path)


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3]


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
    imgs = W[:, :k].T.reshape(k, h, w, ch)
    lo = imgs.min(axis=(1, 2, 3), keepdims=True)
    span = imgs.max(axis=(1, 2, 3), keepdims=True) - lo
    imgs = np.where(span > 0, (imgs - lo) / np.where(span > 0, span, 1.0), 0.0)
    labels = [str(t) for t in titles[:k]] + [""] * (k - len(titles[:k])) if titles is not None else None
    return _image_grid(_rgb(imgs), path, title, cols, 1.1, above=labels)


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
    fig = new_figure(5.6, 5.0)
    ax = fig.add_subplot()
    ax.contourf(gx, gy, z, levels=np.arange(num_classes + 1) - 0.5, cmap=cmap, alpha=0.3)
    for c in range(num_classes):
        m = np.asarray(y) == c
        label = classes[c] if classes is not None and c < len(classes) else str(c)
        ax.scatter(X[m, 0], X[m, 1], s=14, color=colors[c], edgecolors="black", linewidths=0.3,
                   label=_plain(f"class {label}"))
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, path)


def plot_comparison(names: Sequence[str], accuracies: Sequence[float], path: str | os.PathLike,
                    train_times: Sequence[float] | None = None, title: str = "Validation accuracy by model") -> str:
    """Horizontal bars of accuracy (%) per model, annotated with the value (and training time)."""
    acc = 100 * np.asarray(accuracies, dtype=np.float64)
    fig = new_figure(7.0, 0.55 * len(names) + 1.6)
    ax = fig.add_subplot()
    pos = np.arange(len(names))[::-1]
    ax.barh(pos, acc, color=[f"C{i % 10}" for i in range(len(names))])
    ax.set_yticks(pos)
    ax.set_yticklabels([_plain(n) for n in names])
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
    return save_figure(fig, path)


def plot_per_class(accuracies: dict[str, float | None] | Sequence[tuple[str, float | None]],
                   path: str | os.PathLike, title: str = "Accuracy per class (validation)",
                   overall: float | None = None) -> str:
    """Horizontal bars of each class's accuracy (%), with the ``overall`` accuracy (a fraction) as a dashed line;
    classes without samples say so."""
    items = list(accuracies.items()) if isinstance(accuracies, dict) else list(accuracies)
    names = [_plain(k) for k, _ in items]
    values = np.array([np.nan if v is None else 100 * float(v) for _, v in items], dtype=np.float64)
    fig = new_figure(6.4, min(0.32 * len(items) + 1.4, 14.0))
    ax = fig.add_subplot()
    pos = np.arange(len(items))[::-1]
    below = overall is not None and np.isfinite(values) & (values < 100 * overall)
    colors = ["tab:orange" if below is not False and below[i] else "tab:blue" for i in range(len(items))]
    ax.barh(pos, np.nan_to_num(values), color=colors)
    ax.set_yticks(pos)
    ax.set_yticklabels(names, fontsize=9 if len(items) <= 20 else 7)
    if len(items) <= 40:
        for p, v in zip(pos, values):
            ax.text(min(v + 1, 101) if np.isfinite(v) else 1, p, f"{v:.1f}%" if np.isfinite(v) else "no samples",
                    va="center", fontsize=8)
    ax.set_xlabel("accuracy (%)")
    if overall is not None:
        ax.axvline(100 * overall, color="0.3", linestyle="--", linewidth=1.0)
        ax.set_xlabel(f"accuracy (%); dashed: overall {100 * overall:.1f}%, classes below it in orange")
    ax.set_xlim(0, 112)
    ax.set_xticks(range(0, 101, 20))
    ax.set_title(_plain(title))
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def example_order(y_true: np.ndarray, y_pred: np.ndarray, max_images: int, seed: int = 0) -> np.ndarray:
    """Indices of up to ``max_images`` samples to show: mistakes first (at most one in two of the grid when there
    are correct ones too, so both kinds are seen), each group drawn at random with ``seed``, then correct ones."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    wrong = rng.permutation(np.flatnonzero(y_true != y_pred))
    right = rng.permutation(np.flatnonzero(y_true == y_pred))
    n_wrong = min(len(wrong), max_images if not len(right) else max(max_images // 2, max_images - len(right)))
    n_right = min(len(right), max_images - n_wrong)
    return np.concatenate([wrong[:n_wrong], right[:n_right]]).astype(np.int64)


def plot_examples(images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str],
                  path: str | os.PathLike, max_images: int = 40, max_value: float | None = None,
                  title: str = "Validation images: true / predicted label (mistakes first, in red)",
                  seed: int = 0) -> str:
    """A grid of images (N, H, W, C) (C = 1 or 3) with "true / predicted" under each; mistakes first, in red.

    Values are shown on 0..``max_value`` (default: 255 for uint8, else the largest value of the images shown).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"plot_examples needs images (N, H, W, 1 or 3), got shape {images.shape}")
    order = example_order(y_true, y_pred, max_images, seed)
    shown = images[order].astype(np.float64)
    top = max_value if max_value is not None else (255.0 if images.dtype == np.uint8 else
                                                   float(shown.max()) if shown.size else 1.0)
    tiles = _rgb(np.clip(shown / (top if top > 0 else 1.0), 0.0, 1.0))
    wrong = [int(y_true[i]) != int(y_pred[i]) for i in order]
    labels = [f"{classes[int(y_true[i])]} / {classes[int(y_pred[i])]}" if bad else f"{classes[int(y_true[i])]}"
              for i, bad in zip(order, wrong)]
    return _image_grid(tiles, path, title, min(10, max(len(order), 1)), 1.2, below=labels,
                       colors=["tab:red" if bad else "0.25" for bad in wrong],
                       frames=["tab:red" if bad else None for bad in wrong])


def plot_update_ratios(epochs: Sequence[float], ratios: dict[str, Sequence[float | None]], path: str | os.PathLike,
                       title: str = "Update/weight ratio per epoch (mean over the epoch's steps)") -> str:
    """One line per parameter (log y-axis) with the healthy ~1e-3 marked and the warning thresholds shaded."""
    from chainrule.train.diagnostics import HEALTHY_UPDATE_RATIO, TOO_HIGH_UPDATE_RATIO, TOO_LOW_UPDATE_RATIO

    fig = new_figure(6.4, 3.8)
    ax = fig.add_subplot()
    x = np.asarray(epochs, dtype=np.float64)
    seen = [HEALTHY_UPDATE_RATIO]
    for i, (name, values) in enumerate(ratios.items()):
        v = np.array([np.nan if r is None or r <= 0 else r for r in values], dtype=np.float64)
        if np.isfinite(v).any():
            seen.extend(v[np.isfinite(v)].tolist())
            ax.plot(x, v, marker="o" if len(x) <= 30 else None, markersize=3, label=_plain(name), color=f"C{i % 10}")
    ax.set_yscale("log")
    lo, hi = min(seen) / 3, max(seen) * 3
    ax.axhline(HEALTHY_UPDATE_RATIO, color="tab:green", linestyle="--", linewidth=1.0, label="~1e-3 (healthy)")
    ax.axhspan(TOO_HIGH_UPDATE_RATIO, max(hi, TOO_HIGH_UPDATE_RATIO), color="tab:red", alpha=0.08,
               label="warned: learning rate too high?")
    ax.axhspan(min(lo, TOO_LOW_UPDATE_RATIO), TOO_LOW_UPDATE_RATIO, color="tab:blue", alpha=0.08)
    ax.set_ylim(lo, hi)
    if len(x) and len(x) <= 20:
        ax.set_xticks(x)
    ax.set_xlabel("epoch")
    ax.set_ylabel("||dW|| / ||W|| per step")
    ax.set_title(_plain(title), fontsize=10)
    ax.grid(alpha=0.3, which="both")
    if len(ratios) <= 12:
        ax.legend(loc="best", fontsize=7)
    return save_figure(fig, path)


def plot_k_selection(accs: dict[str, float], path: str | os.PathLike, description: str) -> str:
    """Validation accuracy for each k tried ({"1": acc, "3": acc, ...}) of a model that chose its k on the
    validation split; ``description`` names the model in the title."""
    ks = sorted(int(k) for k in accs)
    fig = new_figure(6.0, 3.6)
    ax = fig.add_subplot()
    ax.plot(ks, [100 * accs[str(k)] for k in ks], marker="o")
    ax.set_xlabel("k (number of neighbours)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(_plain(f"{description}: choosing k on the validation split"))
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
