"""Pictures of a search (PNG via matplotlib's Agg canvas; pyplot's global state is never touched).

    plot_scores(result, path)              validation score against each hyperparameter, one panel each;
                                           log x axes for log-scale dimensions, error bars across folds,
                                           diverged / failed trials marked along the bottom
    plot_heatmap(result, x, y, path)       two hyperparameters against each other, coloured by validation
                                           score: CS231n's learning-rate x regularisation picture
    plot_cv_curve(values, fold_scores, path)   CS231n's kNN picture: each fold's accuracy (dots) and the mean
                                           with +-1 std error bars, against k
    save_plots(result, out_dir)            all of those that apply to a search; returns the paths written

Needs matplotlib (``pip install 'chainrule[plots]'``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from chainrule.tune.results import SearchResult, format_value
from chainrule.tune.space import Choice
from chainrule.tune.trial import Trial

__all__ = ["plot_scores", "plot_heatmap", "plot_cv_curve", "save_plots"]

# One figure factory for the whole library: matplotlib's Agg canvas, without touching pyplot's global state.
from chainrule.train.plots import new_figure, save_figure  # noqa: E402


def _scale(result: SearchResult) -> tuple[float, str]:
    if result.config.get("scoring", "accuracy") == "accuracy":
        return 100.0, "validation accuracy (%)"
    return 1.0, f"validation {result.config.get('scoring')}"


def _is_numeric(result: SearchResult, name: str) -> bool:
    values = [t.params.get(name) for t in result.trials]
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _positions(result: SearchResult, name: str) -> tuple[list[float], list[str] | None]:
    """x positions of each trial's value: the value itself, or the index of a categorical value."""
    values = [t.params.get(name) for t in result.trials]
    if _is_numeric(result, name):
        return [float(v) for v in values], None
    dim = result.space[name]
    labels = [format_value(v) for v in (dim.values() if isinstance(dim, Choice) else values)]
    labels = list(dict.fromkeys(labels))
    return [float(labels.index(format_value(v))) for v in values], labels


def _budget_label(result: SearchResult, budget: Any) -> str:
    b = result.config.get("budget") or {}
    return f"{b.get('param', 'budget')}={format_value(budget)}"


def plot_scores(result: SearchResult, path: str | os.PathLike, title: str | None = None) -> str:
    """One panel per hyperparameter: each trial's validation score at its value (see the module docstring)."""
    names = list(result.space)
    scale, ylabel = _scale(result)
    cols = min(len(names), 3)
    rows = int(math.ceil(len(names) / cols))
    fig = new_figure(4.2 * cols + 0.6, 3.6 * rows + 0.4)
    ok = np.array([t.ok for t in result.trials], dtype=bool)
    scores = np.array([scale * t.score if t.ok else np.nan for t in result.trials])
    stds = np.array([scale * (t.std or 0.0) if t.ok else np.nan for t in result.trials])
    budgets = [t.budget for t in result.trials]
    groups = list(dict.fromkeys(budgets))
    floor = np.nanmin(scores) if ok.any() else 0.0
    for j, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, j + 1)
        x, labels = _positions(result, name)
        x = np.asarray(x)
        for g, b in enumerate(groups):
            m = ok & np.array([bb == b for bb in budgets])
            if not m.any():
                continue
            label = _budget_label(result, b) if b is not None else None
            if np.any(stds[m] > 0):
                ax.errorbar(x[m], scores[m], yerr=stds[m], fmt="o", color=f"C{g % 10}", ecolor="0.6",
                            elinewidth=0.8, capsize=2, markersize=5, label=label)
            else:
                ax.scatter(x[m], scores[m], s=28, color=f"C{g % 10}", label=label, zorder=3)
        for status, color in (("diverged", "tab:red"), ("failed", "0.4")):
            m = np.array([t.status == status for t in result.trials])
            if m.any():
                ax.scatter(x[m], np.full(m.sum(), floor), marker="x", s=40, color=color, label=status, zorder=4)
        if labels is not None:
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=30 if max(map(len, labels)) > 4 else 0)
        elif result.space.is_log(name) and np.all(x > 0):
            ax.set_xscale("log")
        ax.set_xlabel(name + (" (log scale)" if labels is None and result.space.is_log(name) else ""))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    fig.suptitle(title or f"{result.config.get('estimator', 'search')}: validation score per hyperparameter "
                 f"({len(result.trials)} trials)")
    return save_figure(fig, path)


def plot_heatmap(result: SearchResult, x: str, y: str, path: str | os.PathLike, title: str | None = None,
                 trials: Sequence[Trial] | None = None) -> str:
    """Validation score over two numeric hyperparameters: a grid of cells when the trials form a grid, else
    one coloured square per trial (CS231n's lr x reg picture); log axes for log-scale dimensions."""
    trials = [t for t in (trials if trials is not None else result.trials) if t.ok]
    scale, label = _scale(result)
    xs = np.array([float(t.params[x]) for t in trials])
    ys = np.array([float(t.params[y]) for t in trials])
    zs = np.array([scale * t.score for t in trials])  # type: ignore[operator]
    fig = new_figure(6.4, 5.0)
    ax = fig.add_subplot()
    ux, uy = sorted(set(xs.tolist())), sorted(set(ys.tolist()))
    is_grid = len(trials) == len(ux) * len(uy) and len(set(zip(xs.tolist(), ys.tolist()))) == len(trials)
    if is_grid and len(ux) * len(uy) <= 400:
        grid = np.full((len(uy), len(ux)), np.nan)
        for xv, yv, z in zip(xs, ys, zs):
            grid[uy.index(yv), ux.index(xv)] = z
        im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(ux)))
        ax.set_xticklabels([format_value(v) for v in ux], rotation=30)
        ax.set_yticks(range(len(uy)))
        ax.set_yticklabels([format_value(v) for v in uy])
        if grid.size <= 64:
            mid = np.nanmean(grid)
            for (i, j), z in np.ndenumerate(grid):
                if np.isfinite(z):
                    ax.text(j, i, f"{z:.1f}", ha="center", va="center", fontsize=8,
                            color="black" if z > mid else "white")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
    else:
        im = ax.scatter(xs, ys, c=zs, s=90, marker="s", cmap="viridis", edgecolors="0.3", linewidths=0.4)
        if result.space.is_log(x) and np.all(xs > 0):
            ax.set_xscale("log")
        if result.space.is_log(y) and np.all(ys > 0):
            ax.set_yscale("log")
        ax.set_xlabel(x + (" (log scale)" if result.space.is_log(x) else ""))
        ax.set_ylabel(y + (" (log scale)" if result.space.is_log(y) else ""))
        if len(zs):
            best = int(np.argmax(zs))
            ax.scatter([xs[best]], [ys[best]], s=260, facecolors="none", edgecolors="red", linewidths=1.5,
                       label=f"best: {zs[best]:.1f}")
            ax.legend(loc="best", fontsize=8)
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label(label)
    ax.set_title(title or f"{label} over {x} x {y}")
    return save_figure(fig, path)


def plot_cv_curve(values: Sequence[Any], fold_scores: Sequence[Sequence[float]], path: str | os.PathLike,
                  xlabel: str = "k", title: str | None = None, ylabel: str = "cross-validation accuracy (%)",
                  scale: float = 100.0, log: bool = False) -> str:
    """Each fold's score at each value (dots) and the mean with +-1 std error bars (CS231n's kNN figure)."""
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    means, stds = [], []
    for v, scores in zip(values, fold_scores):
        s = scale * np.asarray(scores, dtype=np.float64)
        ax.scatter([v] * len(s), s, s=14, color="0.55", zorder=2)
        means.append(s.mean())
        stds.append(s.std())
    ax.errorbar(values, means, yerr=stds, color="tab:blue", marker="o", capsize=3, zorder=3,
                label="mean over folds, \u00b11 std")
    best = int(np.argmax(means))
    ax.scatter([values[best]], [means[best]], s=160, facecolors="none", edgecolors="red", linewidths=1.5, zorder=4,
               label=f"best: {xlabel}={format_value(values[best])}, {means[best]:.1f}")
    if log:
        ax.set_xscale("log")
    elif all(isinstance(v, (int, np.integer)) for v in values):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"Cross-validation on {xlabel} ({len(fold_scores[0])} folds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return save_figure(fig, path)


def save_plots(result: SearchResult, out_dir: str | os.PathLike) -> list[str]:
    """Write every plot that applies to ``result`` into ``out_dir``: scores.png always; heatmap.png for two
    numeric hyperparameters; cv_<name>.png for a one-parameter k-fold search. Returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not any(t.ok for t in result.trials):
        return []
    paths = [plot_scores(result, out / "scores.png")]
    names = list(result.space)
    numeric = [n for n in names if _is_numeric(result, n)]
    if len(names) == 2 and len(numeric) == 2:
        rung0 = [t for t in result.trials if t.rung == 0]
        note = f" ({_budget_label(result, rung0[0].budget)})" if rung0 and rung0[0].budget is not None else ""
        paths.append(plot_heatmap(result, numeric[0], numeric[1], out / "heatmap.png", trials=rung0,
                                  title=f"{_scale(result)[1]} over {numeric[0]} x {numeric[1]}{note}"))
    cv = [t for t in result.final_trials if t.ok and len(t.scores) > 1]
    if len(names) == 1 and numeric and len(cv) >= 2:
        name = names[0]
        cv.sort(key=lambda t: t.params[name])
        scale, label = _scale(result)
        paths.append(plot_cv_curve([t.params[name] for t in cv], [t.scores for t in cv], out / f"cv_{name}.png",
                                   xlabel=name, ylabel=label.replace("validation", "cross-validation"), scale=scale,
                                   log=result.space.is_log(name)))
    return paths
